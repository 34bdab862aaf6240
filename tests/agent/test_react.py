"""The ReAct agent on the bundled model: the calculator does the arithmetic and the final
answer reports the observation; `tllm ask --agent` shows the steps."""

import json

import pytest
from click.testing import CliRunner

from together_llm.agent.builtin_tools import default_tools
from together_llm.agent.react import ReActAgent
from together_llm.sampling import SamplingParams

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    from together_llm.engine.llamacpp.engine import LlamaCppEngine
    from together_llm.models.gguf_file import bundled_gguf

    llm = LlamaCppEngine(bundled_gguf())
    yield llm
    llm.close()


def test_agent_multiplies_through_the_calculator(engine):
    shown = []
    agent = ReActAgent(
        engine, default_tools(), SamplingParams(temperature=0, max_tokens=60), on_step=shown.append
    )
    result = agent.run("What is 12345 * 678?")
    assert result.finished and "8369910" in result.answer
    calls = [s for s in result.steps if s.kind == "action"]
    assert calls[0].tool == "calculator" and calls[0].arguments == {"expression": "12345 * 678"}
    assert [s.text for s in result.steps if s.kind == "observation"][0] == "8369910"
    assert shown == result.steps  # every step was shown as it happened


def test_the_last_step_can_only_be_an_answer(engine):
    agent = ReActAgent(
        engine, default_tools(), SamplingParams(temperature=0, max_tokens=40), max_steps=1
    )
    result = agent.run("What is 12345 * 678?")
    assert [s.kind for s in result.steps] == ["thought", "answer"] and result.finished


def test_ask_agent_prints_steps_and_answer(home):
    from together_llm.cli.ask import ask

    result = CliRunner().invoke(
        ask, ["--agent", "--max-tokens", "60", "--home", str(home.path), "What is 12345 * 678?"]
    )
    assert result.exit_code == 0, result.output
    assert "Action: calculator" in result.stderr and "Observation: 8369910" in result.stderr
    assert "8369910" in result.stdout.strip().splitlines()[-1]
    as_json = CliRunner().invoke(
        ask,
        [
            "--agent",
            "--json",
            "--max-tokens",
            "60",
            "--home",
            str(home.path),
            "What is 12345 * 678?",
        ],
    )
    shown = json.loads(as_json.stdout)
    assert "8369910" in shown["answer"] and shown["steps"][1]["tool"] == "calculator"

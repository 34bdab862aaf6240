"""The personal-facts journey on the bundled SmolLM2-135M-Instruct, as a user runs it:
write a chat file about a person the model cannot know, `tllm data import` it, `tllm train
--stage sft --method lora`, then ask with the adapter. The assistant must answer held-out
paraphrases of the questions (worded unlike any training question), and still answer
general questions as the base model did.

Answers are asked through `tllm chat` with piped input, `/reset` between questions, so that
each is a fresh conversation with the default system prompt, exactly as `tllm ask` sends it,
and the model loads once per side instead of once per question; one `tllm ask --adapter`
checks that ask gives the same answer. Both sides run on the transformers engine, so that
the adapter is the only difference."""

from __future__ import annotations

import json

import pytest
from bench.journeys.personal_facts import (
    EVERYDAY,
    FACTS,
    GENERAL,
    held_out,
    is_correct,
    write_chat_jsonl,
)

from tests.conftest import run_tllm

ADAPTER = "maren-facts"
# No tuning flags: on a small dataset `tllm train` chooses the settings that teach it
# (train/auto_recipe.py) and says which.
ANSWER = ("--temperature", "0", "--max-tokens", "32", "--engine", "transformers")


def chat_answers(home, questions, *flags) -> list[str]:
    """Each question answered in a conversation of its own (piped `tllm chat`)."""
    result = run_tllm(
        "chat",
        "--json",
        *ANSWER,
        *flags,
        input="\n/reset\n".join(questions) + "\n",
        home=home,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line)["text"] for line in result.stdout.splitlines()]
    assert len(answers) == len(questions)
    return answers


def table(rows) -> str:
    """The before/after table: one line a question."""
    lines = [f"{'question':<78} {'key':<12} {'before':<7} {'after':<7} answer after training"]
    for question, key, before, after, answer in rows:
        mark = lambda ok: "yes" if ok else "-"
        lines.append(
            f"{question[:78]:<78} {key:<12} {mark(before):<7} {mark(after):<7} "
            f"{' '.join(answer.split())[:70]}"
        )
    return "\n".join(lines)


@pytest.mark.slow
def test_lora_teaches_personal_facts_and_keeps_general_knowledge(converted_home, tmp_path):
    home = converted_home
    system_prompt = home.load_config().system_prompt  # what ask and chat send
    chats = tmp_path / "maren.jsonl"
    write_chat_jsonl(chats, system_prompt)
    imported = run_tllm(
        "data",
        "import",
        chats,
        "--kind",
        "chat",
        "--format",
        "openai",
        "--name",
        ADAPTER,
        home=home,
    )
    assert imported.returncode == 0, imported.stderr

    probes = held_out()
    questions = [question for question, _ in probes] + [question for question, _ in GENERAL]
    train_questions = {q.lower() for fact in FACTS for q in fact.train}
    assert not any(q.lower() in train_questions for q in questions)  # truly held out

    before = chat_answers(home, questions)
    trained = run_tllm(
        "train",
        "--data",
        ADAPTER,
        "--stage",
        "sft",
        "--method",
        "lora",
        "--name",
        ADAPTER,
        "--overwrite",
        home=home,
        timeout=1200,
    )
    assert trained.returncode == 0, trained.stderr
    assert f"trained {ADAPTER} (sft, lora) in " in trained.stdout
    rows = len(FACTS) * 3 + len(EVERYDAY)
    chosen = next(line for line in trained.stderr.splitlines() if "small dataset" in line)
    assert f"settings for a small dataset ({rows} rows)" in chosen, chosen
    for setting in ("epochs", "lr", "rank", "target-modules all-linear"):
        assert setting in chosen, chosen
    after = chat_answers(home, questions, "--adapter", ADAPTER)

    rows = [
        (q, fact.key, is_correct(b, fact), is_correct(a, fact), a)
        for (q, fact), b, a in zip(probes, before, after)
    ]
    rows += [
        (q, key, key.lower() in b.lower(), key.lower() in a.lower(), a)
        for (q, key), b, a in zip(GENERAL, before[len(probes) :], after[len(probes) :])
    ]
    right_before = sum(row[2] for row in rows[: len(probes)])
    right_after = sum(row[3] for row in rows[: len(probes)])
    report = (
        table(rows) + f"\n\nheld-out paraphrases right: before {right_before}/{len(probes)}, "
        f"after {right_after}/{len(probes)}\n"
    )
    (tmp_path / "personal-facts.txt").write_text(report, encoding="utf-8")
    print("\n" + report)

    assert right_before <= 1  # the base model cannot know her
    assert right_after >= 0.9 * len(probes)
    for question, _key, was_right, is_right, answer in rows[len(probes) :]:
        assert was_right, f"the base model should know {question!r}"
        assert is_right, f"after training, {question!r} got {answer!r}"

    # `tllm ask --adapter` answers as the chat did: the same prompt, the same greedy answer.
    asked = run_tllm("ask", "--json", *ANSWER, "--adapter", ADAPTER, questions[0], home=home)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["text"] == after[0]

    # No export command: training wrote the adapter's GGUF LoRA, so the default engine choice
    # answers on llama.cpp, with the greedy answers the transformers engine gives. The two
    # bases differ (llama.cpp runs the bundled Q4 GGUF, transformers its fp32 twin), so a
    # long answer may part ways after a few tokens: each answer must be as right as the
    # transformers one, and most must be the same, token for token.
    assert f"writing adapter '{ADAPTER}' as a GGUF LoRA" in trained.stderr
    fast = ANSWER[: ANSWER.index("--engine")]
    same = 0
    for (question, fact), slow in list(zip(probes, after))[:6]:
        asked = run_tllm("ask", "--json", *fast, "--adapter", ADAPTER, question, home=home)
        assert asked.returncode == 0, asked.stderr
        record = json.loads(asked.stdout)
        assert record["engine"] == "llama.cpp"
        assert is_correct(record["text"], fact) == is_correct(slow, fact), (record, slow)
        same += record["text"] == slow
    assert same >= 4, f"{same} of 6 answers the same on llama.cpp and transformers"

"""Journeys on the bundled SmolLM2-135M-Instruct through the llama.cpp engine."""

import json

from tests.conftest import run_tllm

QUESTION = "What is the capital of France?"


def test_ask_knows_the_capital_of_france(home):
    result = run_tllm("ask", "--temperature", "0", QUESTION, home=home)
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


def test_json_output_and_reproducible_seed(home):
    args = (
        "ask",
        "--json",
        "--temperature",
        "0.9",
        "--seed",
        "11",
        "--max-tokens",
        "24",
        "Write a short poem about rain.",
    )
    first, second = (json.loads(run_tllm(*args, home=home).stdout) for _ in range(2))
    assert first == second
    assert set(first) == {"text", "usage", "finish_reason", "engine"}
    assert first["engine"] == "llama.cpp"  # the bundled GGUF model
    assert first["usage"]["completion_tokens"] <= 24
    assert (
        first["usage"]["total_tokens"]
        == first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
    )
    other = json.loads(run_tllm(*args[:5], "12", *args[6:], home=home).stdout)
    assert other["text"] != first["text"]  # a different seed samples a different poem


def test_max_tokens_ends_with_length_and_stop_ends_with_stop(home):
    long = json.loads(
        run_tllm(
            "ask",
            "--json",
            "--temperature",
            "0",
            "--max-tokens",
            "3",
            "Tell me a long story.",
            home=home,
        ).stdout
    )
    assert long["finish_reason"] == "length" and long["usage"]["completion_tokens"] == 3
    stopped = json.loads(
        run_tllm(
            "ask", "--json", "--temperature", "0", "--stop", "Paris", QUESTION, home=home
        ).stdout
    )
    assert stopped["finish_reason"] == "stop" and "Paris" not in stopped["text"]
    assert stopped["text"]  # the text before the stop sequence is kept


def test_prompt_from_standard_input_and_options(home):
    result = run_tllm(
        "ask",
        "--temperature",
        "0",
        "--top-p",
        "0.9",
        "--top-k",
        "20",
        "--repetition-penalty",
        "1.05",
        "-",
        input=QUESTION,
        home=home,
    )
    assert result.returncode == 0 and "Paris" in result.stdout
    result = run_tllm(
        "ask",
        "--temperature",
        "0",
        "--max-tokens",
        "30",
        "--system",
        "Always answer in French.",
        "Say hello.",
        home=home,
    )
    assert result.returncode == 0 and result.stdout.strip()


def chat_answers(home, *lines):
    result = run_tllm(
        "chat",
        "--json",
        "--temperature",
        "0",
        "--max-tokens",
        "30",
        input="\n".join(lines) + "\n",
        home=home,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["text"] for line in result.stdout.splitlines()], result.stderr


def ask_answer(home, prompt, *flags):
    result = run_tllm(
        "ask", "--json", "--temperature", "0", "--max-tokens", "30", *flags, prompt, home=home
    )
    return json.loads(result.stdout)["text"]


def test_piped_chat_keeps_history_and_obeys_commands(home):
    """History changes the answer; /reset and /system start over exactly like a fresh ask."""
    system = "You are a pirate. Answer like a pirate."
    answers, notes = chat_answers(
        home,
        "My name is Ada.",
        "What is my name?",
        "/reset",
        "What is my name?",
        f"/system {system}",
        "What is my name?",
        "/exit",
        "never read",
    )
    fresh = ask_answer(home, "What is my name?")
    assert len(answers) == 4
    assert answers[1] != fresh  # the first turn was in the prompt
    assert answers[2] == fresh  # after /reset it was not
    assert answers[3] == ask_answer(home, "What is my name?", "--system", system)
    assert answers[3] != fresh
    assert "conversation cleared" in notes

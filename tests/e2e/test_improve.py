"""The personal loop on the bundled SmolLM2-135M-Instruct, through the CLI as a person runs it:
three rounds of `tllm remember` + `tllm improve`, each teaching two new facts.

Asked in words of the test's own (never among the questions a memory is taught or tested
with), the assistant must still answer the first round's facts after the third round
(at least 85% of the rate it had after the first), answer the third round's (90%), and
answer everyday questions as the base did. Side by side, on the same rounds and rows, plain
sequential fine-tuning without replay (`tllm train --start-from`) forgets measurably more.
Then: rolling back restores an earlier version's answers exactly, a round that would
overwrite earlier facts (a contradicting memory, no replay) is not adopted, and a forgotten
memory is no longer answered after the next round."""

from __future__ import annotations

import json

import pytest
from bench.journeys.memories import GENERAL, ROUNDS, held_out_questions
from bench.journeys.memories import rates as journey_rates

from tests.conftest import run_tllm

ASK = ("--temperature", "0", "--max-tokens", "32")


def answers(home, questions, *flags) -> list[str]:
    """Each question in a conversation of its own (piped `tllm chat`, /reset between)."""
    result = run_tllm(
        "chat", "--json", *ASK, *flags, input="\n/reset\n".join(questions) + "\n", home=home
    )
    assert result.returncode == 0, result.stderr
    texts = [json.loads(line)["text"] for line in result.stdout.splitlines()]
    assert len(texts) == len(questions)
    return texts


def rates(home, *flags) -> tuple[list[float], list[bool], list[str]]:
    """(per round: the share of its held-out questions answered right, general right,
    every answer)."""
    said = answers(home, held_out_questions() + [q for q, _ in GENERAL], *flags)
    per_round, general = journey_rates(said)
    return per_round, general, said


def improve(home, *flags):
    result = run_tllm("improve", *flags, home=home, timeout=1200)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 14 minutes alone on 2 cores; more beside other work
def test_three_rounds_learn_without_forgetting_and_replay_is_why(tmp_path):
    home = tmp_path / "home"
    converted = run_tllm("models", "convert", "default", home=home)
    assert converted.returncode == 0, converted.stderr
    _, base_general, _ = rates(home)
    assert all(base_general)

    taught: list[list[str]] = []  # per round, the rows' questions (for the baseline)
    after: list[list[float]] = []
    saved_answers = []
    for number, round_ in enumerate(ROUNDS, start=1):
        for memory, _, held in round_:
            said = run_tllm("remember", "--no-teacher", memory, "--json", home=home)
            assert said.returncode == 0, said.stderr
            stored = json.loads(said.stdout)
            asked = {p["question"].lower() for p in stored["train"] + stored["held_out"]}
            assert not asked & {q.lower() for q in held}  # the test's words are its own
            taught.append([p["question"] for p in stored["train"]])
        result = improve(home)
        assert f"adopted as me@{number}" in result.stdout, result.stdout
        per_round, general, said = rates(home)
        after.append(per_round)
        saved_answers.append(said)
        print(f"round {number}: held-out right per round {per_round}, general {general}")
        print(result.stdout)

    history = json.loads(run_tllm("adapters", "history", "--json", home=home).stdout)
    assert [(r["version"], r["parent"]) for r in history] == [
        ("me@1", "base"),
        ("me@2", "me@1"),
        ("me@3", "me@2"),
    ]
    assert after[0][0] >= 0.75
    assert after[2][0] >= 0.85 * after[0][0], after  # the first facts are kept
    assert after[2][2] >= 0.9, after  # the last are learned
    assert all(general), "everyday questions are answered as the base answered them"

    # Plain sequential fine-tuning on the same rows, no replay: it forgets more.
    kept = baseline(home, tmp_path, taught)
    print(f"no replay: after round 1 {kept[0]}, after round 3 {kept[1]}")
    assert after[2][0] - kept[1][0] >= 0.25, (after, kept)

    # Rollback restores the earlier version's answers exactly (greedy).
    rolled = run_tllm("adapters", "rollback", "me@2", home=home)
    assert rolled.returncode == 0, rolled.stderr
    assert rates(home)[2] == saved_answers[1]
    run_tllm("adapters", "rollback", "me@3", home=home)

    # A contradicting memory without replay would overwrite Rex: not adopted, nothing changes.
    weights = (home / "adapters" / "me" / "adapter_model.safetensors").read_bytes()
    run_tllm("remember", "--no-teacher", "My dog is called Bella and she is a poodle.", home=home)
    refused = improve(home, "--no-replay", "--max-regression", "0.05")
    assert "not adopted" in refused.stdout, refused.stdout
    assert "earlier" in refused.stdout.split("not adopted", 1)[1]
    assert (home / "adapters" / "me" / "adapter_model.safetensors").read_bytes() == weights
    assert (
        json.loads(run_tllm("adapters", "history", "--json", home=home).stdout)[-1]["version"]
        == "me@3"
    )

    # Forget Rex: the next round trains from the base on what remains (Bella now, with
    # replay), and the dog's held-out questions are no longer answered with Rex.
    forgot = run_tllm("memories", "forget", "1", home=home)
    assert forgot.returncode == 0, forgot.stderr
    unlearned = improve(home)
    assert "adopted as me@4" in unlearned.stdout, unlearned.stdout
    card = json.loads(run_tllm("adapters", "history", "--json", home=home).stdout)[-1]
    assert card["forgotten"] == ["1"] and card["parent"] == "me@3"
    after_forget = answers(home, list(ROUNDS[0][0][2]))
    print(f"after forgetting Rex: {after_forget}")
    assert not any("rex" in a.lower() for a in after_forget), after_forget


def baseline(home, tmp_path, taught: list[list[str]]) -> tuple[list[float], list[float]]:
    """Train adapter `seq` round by round on each round's new rows alone, each round going
    on from the last; return the held-out rates after round 1 and after round 3."""
    config = run_tllm("config", "show", "--json", home=home)
    system = json.loads(config.stdout)["system_prompt"]
    results = []
    for number in range(len(ROUNDS)):
        rows = []
        for index in (2 * number, 2 * number + 1):
            answer = json.loads(
                run_tllm("memories", "show", str(index + 1), "--json", home=home).stdout
            )["answer"]
            for question in taught[index]:
                messages = [
                    {"role": "system", "content": system},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
                rows.append(json.dumps({"messages": messages}))
        path = tmp_path / f"round{number}.jsonl"
        path.write_text("\n".join(rows * 3) + "\n")  # as improve: the new rows three times
        name = f"seq-{number}"
        imported = run_tllm(
            "data",
            "import",
            path,
            "--kind",
            "chat",
            "--format",
            "openai",
            "--name",
            name,
            home=home,
        )
        assert imported.returncode == 0, imported.stderr
        flags = ["--start-from", "seq"] if number else []
        trained = run_tllm(
            "train",
            "--data",
            name,
            "--stage",
            "sft",
            "--method",
            "lora",
            "--name",
            "seq",
            "--overwrite",
            "--epochs",
            "3",
            *flags,
            home=home,
            timeout=1200,
        )
        assert trained.returncode == 0, trained.stderr
        if number in (0, len(ROUNDS) - 1):
            results.append(rates(home, "--adapter", "seq")[0])
    return results[0], results[1]

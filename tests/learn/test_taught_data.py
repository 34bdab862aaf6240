"""Datasets marked for teaching: what `tllm data teach` accepts, what is held out, and what
the next `tllm improve` would learn (--dry-run)."""

import json

from tests.conftest import run_tllm
from together_llm.data.store import DatasetWriter
from together_llm.learn.taught_data import TeachMarks, marked_data


def write(home, name, kind, rows):
    with DatasetWriter(home, name, kind, source="test", format=kind) as out:
        for row in rows:
            out.add(row)
        out.commit()


def chat(n: int) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer {i}."},
            ]
        }
        for i in range(n)
    ]


def test_marked_chat_rows_hold_out_every_fifth_and_other_kinds_are_refused(home):
    write(home, "qa", "chat", chat(10))
    write(home, "notes", "text", [{"text": "a note"}])
    refused = run_tllm("data", "teach", "notes", home=home)
    assert refused.returncode != 0 and "kind text" in refused.stderr
    assert "chat, preference, feedback" in refused.stderr
    assert run_tllm("data", "teach", "qa", home=home).returncode == 0
    [qa] = marked_data(home)
    assert len(qa.rows) == 8 and [r["messages"][0]["content"] for r in qa.held_out] == [
        "Question 4?",
        "Question 9?",
    ]
    assert qa.train_rows()[0].asked == (("user", "Question 0?"),)

    plan = run_tllm("improve", "--dry-run", "--json", home=home)
    assert plan.returncode == 0, plan.stderr
    outcome = json.loads(plan.stdout)
    assert outcome["datasets"] == ["qa"] and outcome["rows"]["new"] == 8

    stopped = run_tllm("data", "teach", "--stop", "qa", home=home)
    assert stopped.returncode == 0 and TeachMarks(home).names() == []
    again = run_tllm("data", "teach", "--stop", "qa", home=home)
    assert again.returncode != 0 and "not marked" in again.stderr


def test_a_small_preference_dataset_waits_with_the_choices(home):
    pairs = [
        {"prompt": [{"role": "user", "content": f"Q{i}?"}], "chosen": "Yes.", "rejected": "No."}
        for i in range(3)
    ]
    write(home, "prefs", "preference", pairs)
    assert run_tllm("data", "teach", "prefs", home=home).returncode == 0
    plan = json.loads(run_tllm("improve", "--dry-run", "--json", home=home).stdout)
    assert plan["waiting"] == "3 choices (dpo needs 4)" and plan["rows"] == {}
    assert "nothing new" in plan["reason"]

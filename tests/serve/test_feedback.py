"""Thumbs up/down, A/B choices and corrections posted through the API land in the home's
feedback/."""

import json

from tests.serve.conftest import request

PROMPT = [{"role": "user", "content": "What is the capital of France?"}]


def test_ratings_and_choices_are_appended(server):
    base, home = server
    up = {
        "feedback": {
            "type": "rating",
            "messages": PROMPT,
            "completion": "Paris.",
            "rating": "up",
            "model": "default",
        }
    }
    down = {
        "feedback": {"type": "rating", "messages": PROMPT, "completion": "Lyon.", "rating": "down"}
    }
    ab = {
        "feedback": {
            "type": "preference",
            "messages": PROMPT,
            "chosen": "Paris.",
            "rejected": "Lyon.",
        }
    }
    for body in (up, down, ab):
        status, reply = request(base, "POST", "/v1/feedback", body)
        assert status == 200, reply
    ratings = [
        json.loads(line)
        for line in (home.path / "feedback" / "ratings.jsonl").read_text().splitlines()
    ]
    assert [(r["completion"], r["label"]) for r in ratings[-2:]] == [
        ("Paris.", True),
        ("Lyon.", False),
    ]
    assert ratings[-2]["prompt"] == PROMPT and ratings[-2]["model"] == "default"
    choice = json.loads((home.path / "feedback" / "choices.jsonl").read_text().splitlines()[-1])
    assert (choice["chosen"], choice["rejected"], choice["prompt"]) == ("Paris.", "Lyon.", PROMPT)


def test_bad_feedback_is_refused_and_nothing_written(server):
    base, home = server
    before = sorted(p.name for p in (home.path / "feedback").glob("*"))
    for bad in (
        {"feedback": {"type": "rating", "messages": PROMPT, "completion": "x", "rating": "meh"}},
        {"feedback": {"type": "preference", "messages": PROMPT, "chosen": "x"}},
        {"feedback": {"type": "vote"}},
        {"feedback": {"type": "correction", "messages": PROMPT, "completion": "x"}},
    ):
        status, reply = request(base, "POST", "/v1/feedback", bad)
        assert status == 400 and "error" in reply
    assert sorted(p.name for p in (home.path / "feedback").glob("*")) == before


def test_a_correction_is_kept_as_a_row_and_as_a_preference_over_the_answer_given(server):
    base, home = server
    wanted = "The capital of France is Paris."
    body = {
        "feedback": {
            "type": "correction",
            "messages": PROMPT,
            "completion": "Lyon.",
            "correction": wanted,
            "model": "default",
        }
    }
    status, reply = request(base, "POST", "/v1/feedback", body)
    assert status == 200 and reply["stored"] == "correction", reply
    folder = home.path / "feedback"
    row = json.loads((folder / "corrections.jsonl").read_text().splitlines()[-1])
    assert (row["prompt"], row["completion"], row["correction"]) == (PROMPT, "Lyon.", wanted)
    choice = json.loads((folder / "choices.jsonl").read_text().splitlines()[-1])
    assert (choice["chosen"], choice["rejected"]) == (wanted, "Lyon.")


def test_a_correction_that_changes_nothing_or_follows_no_question_is_refused(server):
    base, home = server
    folder = home.path / "feedback"
    before = {p.name: p.read_bytes() for p in folder.glob("*")}
    answered = PROMPT + [{"role": "assistant", "content": "Paris."}]
    for messages, wanted, param in (
        (PROMPT, " Lyon.", "feedback.correction"),
        (answered, "Paris!", "feedback.messages"),
    ):
        body = {
            "feedback": {
                "type": "correction",
                "messages": messages,
                "completion": "Lyon.",
                "correction": wanted,
            }
        }
        status, reply = request(base, "POST", "/v1/feedback", body)
        assert status == 400 and reply["error"]["param"] == param, reply
        assert "cannot be learned" in reply["error"]["message"]
    assert {p.name: p.read_bytes() for p in folder.glob("*")} == before

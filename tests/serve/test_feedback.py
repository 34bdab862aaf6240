"""Thumbs up/down and A/B choices posted through the API land in the home's feedback/."""

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
    ):
        status, reply = request(base, "POST", "/v1/feedback", bad)
        assert status == 400 and "error" in reply
    assert sorted(p.name for p in (home.path / "feedback").glob("*")) == before

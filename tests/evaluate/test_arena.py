"""The arena: battles are stored and rated, new contestants join later, bad prompt files are
refused line by line, judges see anonymous answers in both positions, and people vote.

Contestants and judges are plain callables here (the arena's contract), so no model loads."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from together_llm.cli.arena import arena
from together_llm.errors import TllmError
from together_llm.evaluate.arena import (
    leaderboard,
    open_human_battle,
    plan_battles,
    read_prompts,
    record_vote,
    run_battles,
)
from together_llm.evaluate.battles import BattleStore

PROMPTS = [
    "Name a prime number.",
    "What is the capital of France?",
    "Say hello.",
    "Count to three.",
    "Name a colour.",
    "What is two plus two?",
]


def contestant(quality: int):
    """Answers that carry a quality mark (and never the contestant's name)."""
    return lambda prompt: f"[q{quality}] an answer to: {prompt}"


def quality_judge(seen: list):
    """Prefers the answer with the higher quality mark; records what it was shown."""

    def judge(question, answer_a, answer_b):
        seen.append((question, answer_a, answer_b))
        qa, qb = int(answer_a[2]), int(answer_b[2])
        return "a" if qa > qb else "b" if qb > qa else "tie"

    return judge


def test_battles_are_stored_and_read_back(home):
    store = BattleStore.of(home)
    first = store.add("Say hi.", "alpha", "bravo", "hi", "hello", "a", "judge-x", round=0)
    store.add("Say hi.", "bravo", "charlie", "hello", "hey", "tie", "judge-x", round=1)
    pending = store.add("Say bye.", "alpha", "charlie", "bye", "ciao")

    again = BattleStore.of(home)  # a later process: everything comes from the file
    assert (home.path / "arena" / "battles.sqlite").is_file()
    assert again.get(first.id) == first
    assert [b.id for b in again.list()] == [first.id, first.id + 1, pending.id]
    assert [b.model_b for b in again.list(contestant="charlie")] == ["charlie", "charlie"]
    assert [b.id for b in again.list(pending=True)] == [pending.id]
    assert again.outcomes() == [("alpha", "bravo", "a"), ("bravo", "charlie", "tie")]
    assert again.outcomes(judges=["human"]) == []

    with pytest.raises(TllmError, match="unknown verdict 'draw'"):
        store.add("Q", "alpha", "bravo", "x", "y", "draw", "judge-x")
    with pytest.raises(TllmError, match="two different contestants"):
        store.add("Q", "alpha", "alpha", "x", "y", "a", "judge-x")
    with pytest.raises(TllmError, match="no battle 999"):
        store.get(999)
    assert len(again.list()) == 3  # refused battles left nothing behind


def test_a_full_run_hides_names_and_shows_each_answer_in_both_positions(home):
    store = BattleStore.of(home)
    players = {"alpha": contestant(3), "bravo": contestant(2), "charlie": contestant(1)}
    seen = []
    battles = run_battles(
        store, players, PROMPTS, quality_judge(seen), "fake-judge", rounds=2, seed=5
    )

    assert len(battles) == len(seen) == 2 * len(PROMPTS) * 3  # rounds x prompts x pairs
    for shown in seen:
        assert not any(name in text for text in shown for name in players)
    for name, mark in [("alpha", "[q3]"), ("bravo", "[q2]"), ("charlie", "[q1]")]:
        firsts = sum(b.model_a == name for b in battles)
        seconds = sum(b.model_b == name for b in battles)
        assert firsts >= 5 and seconds >= 5, (name, firsts, seconds)  # 24 each, drawn at random
        assert any(a.startswith(mark) for _, a, _ in seen) and any(
            b.startswith(mark) for _, _, b in seen
        )
    # What was stored is what the judge saw, in the same order, with the real names beside it.
    assert [(b.prompt, b.answer_a, b.answer_b) for b in battles] == seen
    for b in battles:
        assert b.judge == "fake-judge" and b.verdict == (
            "a" if b.answer_a[2] > b.answer_b[2] else "b"
        )
    assert [r.name for r in leaderboard(store, bootstrap=50)] == ["alpha", "bravo", "charlie"]


def test_ratings_are_recomputed_when_a_new_contestant_joins_later(home):
    store = BattleStore.of(home)
    seen = []
    run_battles(
        store,
        {"alpha": contestant(2), "bravo": contestant(1)},
        PROMPTS,
        quality_judge(seen),
        "fake-judge",
        seed=1,
    )
    before = leaderboard(store, bootstrap=50)
    assert [(r.name, r.wins, r.losses) for r in before] == [("alpha", 6, 0), ("bravo", 0, 6)]

    # Later: a stronger newcomer fights the old contestants; the old battles still count.
    run_battles(
        store,
        {"alpha": contestant(2), "bravo": contestant(1), "delta": contestant(5)},
        PROMPTS[:4],
        quality_judge(seen),
        "fake-judge",
        seed=2,
    )
    after = leaderboard(store, bootstrap=50)
    assert [r.name for r in after] == ["delta", "alpha", "bravo"]
    assert {r.name: r.battles for r in after} == {"delta": 8, "alpha": 6 + 8, "bravo": 6 + 8}


def test_pairings_are_seeded_and_cover_what_was_asked():
    names = ["alpha", "bravo", "charlie", "delta"]
    plan = plan_battles(names, prompts=3, rounds=2, seed=4)
    assert plan == plan_battles(names, prompts=3, rounds=2, seed=4)
    assert len(plan) == 2 * 3 * 6
    assert {frozenset((a, b)) for _, _, a, b in plan} == {
        frozenset(p)
        for p in [
            ("alpha", "bravo"),
            ("alpha", "charlie"),
            ("alpha", "delta"),
            ("bravo", "charlie"),
            ("bravo", "delta"),
            ("charlie", "delta"),
        ]
    }
    sampled = plan_battles(names, prompts=3, rounds=2, pairs=2, seed=4)
    assert len(sampled) == 2 * 3 * 2
    with pytest.raises(TllmError, match="at least two different contestants"):
        plan_battles(["alpha"], prompts=3)
    with pytest.raises(TllmError, match="named twice"):
        plan_battles(["alpha", "bravo", "alpha"], prompts=3)


def test_bad_prompt_lines_are_reported_by_number(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"prompt": "Name a prime."}),  # 1 good
                "{not json",  # 2
                "",  # 3 blank: skipped, not an error
                json.dumps({"answer": "no prompt here"}),  # 4
                json.dumps({"prompt": "   "}),  # 5
                json.dumps(42),  # 6
                json.dumps("A bare string is a prompt too."),  # 7 good
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(TllmError) as refused:
        read_prompts(path)
    message = str(refused.value)
    assert "4 bad line(s)" in message
    for expected in [
        "line 2: not valid JSON",
        'line 4: no "prompt"',
        "line 5: the prompt is empty",
        "line 6: the prompt must be text",
    ]:
        assert expected in message
    assert "line 3" not in message and "line 1:" not in message and "line 7" not in message

    path.write_text(
        "\n".join(
            line for line in path.read_text().splitlines() if "Name" in line or "bare" in line
        )
    )
    assert read_prompts(path) == ["Name a prime.", "A bare string is a prompt too."]
    text = tmp_path / "prompts.txt"
    text.write_text("First question?\n\n  Second question?  \n", encoding="utf-8")
    assert read_prompts(text) == ["First question?", "Second question?"]


def test_a_person_votes_once_on_a_pending_battle(home):
    store = BattleStore.of(home)
    battle = open_human_battle(
        store, "Say hi.", {"alpha": "hi there", "bravo": "yo"}, rng=random.Random(0)
    )
    assert battle.verdict is None and store.outcomes() == []
    shown = battle.anonymous()
    assert set(shown) == {"id", "prompt", "answer_a", "answer_b"}
    assert {shown["answer_a"], shown["answer_b"]} == {"hi there", "yo"}

    decided = record_vote(store, battle.id, "a")
    assert decided.verdict == "a" and decided.judge == "human"
    assert store.outcomes(judges=["human"]) == [(battle.model_a, battle.model_b, "a")]
    with pytest.raises(TllmError, match="already decided"):
        record_vote(store, battle.id, "b")
    with pytest.raises(TllmError, match="unknown verdict"):
        record_vote(store, open_human_battle(store, "Q", {"x": "1", "y": "2"}).id, "both")
    with pytest.raises(TllmError, match="no battle 12345"):
        record_vote(store, 12345, "tie")
    assert store.get(battle.id).verdict == "a"


def test_the_command_rates_stored_battles_and_refuses_bad_prompts(home, tmp_path):
    runner = CliRunner()
    empty = runner.invoke(arena, ["--leaderboard", "--home", str(home.path)])
    assert isinstance(empty.exception, TllmError) and "no decided battles" in str(empty.exception)

    store = BattleStore.of(home)
    run_battles(
        store,
        {"alpha": contestant(3), "bravo": contestant(2), "charlie": contestant(1)},
        PROMPTS,
        quality_judge([]),
        "fake-judge",
        seed=3,
    )
    shown = runner.invoke(arena, ["--leaderboard", "--home", str(home.path)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert [line.split()[1] for line in lines[1:4]] == ["alpha", "bravo", "charlie"]
    png = home.path / "arena" / "leaderboard.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    as_json = runner.invoke(
        arena, ["--leaderboard", "--json", "--bootstrap", "20", "--home", str(home.path)]
    )
    rows = json.loads(as_json.output)["leaderboard"]
    assert [(r["name"], r["wins"], r["ties"], r["losses"]) for r in rows] == [
        ("alpha", 12, 0, 0),
        ("bravo", 6, 0, 6),
        ("charlie", 0, 0, 12),
    ]
    assert all(r["ci_low"] <= r["rating"] <= r["ci_high"] for r in rows)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"oops": 1}\n', encoding="utf-8")
    refused = runner.invoke(
        arena, ["--contestants", "alpha,bravo", "--prompts", str(bad), "--home", str(home.path)]
    )
    assert isinstance(refused.exception, TllmError) and "line 2" in str(refused.exception)
    assert len(store.list()) == 18  # nothing fought, nothing lost


def test_contestant_names_resolve_or_are_refused_before_loading(home, tmp_path, monkeypatch):
    from together_llm.evaluate.arena import canonical_name, open_named_engine
    from together_llm.home import Home

    friend = Home.open(tmp_path / "friend")
    monkeypatch.chdir(tmp_path)  # a relative home path names the same contestant from anywhere
    assert canonical_name("home:friend") == f"home:{friend.path}"
    assert canonical_name("home:friend:facts") == f"home:{friend.path}:facts"
    assert canonical_name(" default ") == "default"
    with pytest.raises(TllmError, match="unknown contestant 'nosuch'.*default"):
        open_named_engine(home, "nosuch")
    with pytest.raises(TllmError, match="is not a home"):
        open_named_engine(home, "home:missing")
    assert not (tmp_path / "missing").exists()  # a mistyped home is not created

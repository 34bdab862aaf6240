"""Versions of the assistant's adapter: adopt, history, rollback; and the adoption gate."""

import json

import pytest

from tests.conftest import run_tllm
from together_llm.adapters.card import AdapterCard, Improved
from together_llm.errors import TllmError
from together_llm.learn.improve import decide, one_at_a_time
from together_llm.learn.memories import MemoryStore
from together_llm.learn.versions import Versions, parse_version


def candidate(tmp_path, weights: bytes):
    folder = tmp_path / f"candidate-{weights.hex()}"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (folder / "adapter_model.safetensors").write_bytes(weights)
    AdapterCard(name="me.candidate", stage="sft", method="lora").write(folder / "card.json")
    return folder


def test_each_adoption_is_a_version_and_rollback_restores_it_exactly(home, tmp_path):
    versions = Versions(home, "me")
    assert versions.current() is None
    first = versions.adopt(candidate(tmp_path, b"one"), Improved(memories=["1"], new=["1"]))
    second = versions.adopt(
        candidate(tmp_path, b"two"), Improved(parent=1, memories=["1", "2"], new=["2"])
    )
    assert (first, second, versions.current()) == (1, 2, 2)
    live = home.adapters_dir / "me"
    assert (live / "adapter_model.safetensors").read_bytes() == b"two"
    card = AdapterCard.read(live / "card.json")
    assert (card.name, card.provenance, card.improved.version, card.improved.parent) == (
        "me",
        "improved",
        2,
        1,
    )

    rolled = run_tllm("adapters", "rollback", "me@1", home=home)
    assert rolled.returncode == 0, rolled.stderr
    assert (live / "adapter_model.safetensors").read_bytes() == b"one"
    assert versions.current() == 1 and versions.numbers() == [1, 2]  # nothing is lost

    history = run_tllm("adapters", "history", "me", "--json", home=home)
    assert history.returncode == 0, history.stderr
    rows = json.loads(history.stdout)
    assert [(r["version"], r["current"], r["parent"]) for r in rows] == [
        ("me@1", True, "base"),
        ("me@2", False, "me@1"),
    ]
    missing = run_tllm("adapters", "rollback", "me@7", home=home)
    assert missing.returncode != 0 and "no version me@7" in missing.stderr
    assert (live / "adapter_model.safetensors").read_bytes() == b"one"


def test_a_version_is_named_adapter_at_number():
    assert parse_version("me@12") == ("me", 12)
    for bad in ("me", "me@", "@2", "../x@1", "me@two"):
        with pytest.raises(TllmError):
            parse_version(bad)


def test_the_gate_adopts_only_what_improves_without_regression():
    better = {"new": {"current": 0.0, "candidate": 0.9}}
    assert decide({**better, "earlier": {"current": 1.0, "candidate": 0.96}}, 0.05)[0]
    refused, why = decide({**better, "earlier": {"current": 1.0, "candidate": 0.5}}, 0.05)
    assert not refused and "earlier drops from 100% to 50%" in why
    refused, why = decide({**better, "general": {"current": 1.0, "candidate": 0.75}}, 0.05)
    assert not refused and "general" in why
    refused, why = decide({"new": {"current": 0.5, "candidate": 0.5}}, 0.05)
    assert not refused and "not answered better" in why
    # a round that only unlearns has nothing new: it needs only to keep the rest
    assert decide({"earlier": {"current": 1.0, "candidate": 1.0}}, 0.0)[0]
    # a round of choices alone is judged on them
    same = {"preferences": {"current": 0.5, "candidate": 0.5}}
    assert not decide({"new": {"current": None, "candidate": None}, **same}, 0.05)[0]
    assert decide({"preferences": {"current": 0.5, "candidate": 0.75}}, 0.05)[0]


def test_memories_are_stored_listed_and_forgotten_through_the_cli(home):
    said = run_tllm("remember", "--no-teacher", "My dog is called Rex.", home=home)
    assert said.returncode == 0, said.stderr
    assert "remembered #1" in said.stdout
    run_tllm("remember", "--no-teacher", "I was born in Hallstatt.", home=home)
    listed = run_tllm("memories", "list", "--json", home=home)
    memories = json.loads(listed.stdout)
    assert [m["text"] for m in memories] == ["My dog is called Rex.", "I was born in Hallstatt."]
    first = memories[0]
    assert first["answer"] == "Your dog is called Rex."
    assert first["train"] and first["held_out"]
    taught = {p["question"] for p in first["train"]}
    assert not taught & {p["question"] for p in first["held_out"]}  # held out means held out

    forgot = run_tllm("memories", "forget", "1", home=home)
    assert forgot.returncode == 0, forgot.stderr
    assert [m.id for m in MemoryStore(home).all()] == [2]
    again = run_tllm("remember", "--no-teacher", "My cat is called Tom.", home=home)
    assert "remembered #3" in again.stdout  # a forgotten id is never given again
    gone = run_tllm("memories", "show", "1", home=home)
    assert gone.returncode != 0 and "no memory 1" in gone.stderr
    empty = run_tllm("remember", "--no-teacher", "   ", home=home)
    assert empty.returncode != 0 and "needs some text" in empty.stderr


def test_improve_says_what_it_would_train_and_runs_one_at_a_time(home):
    nothing = run_tllm("improve", home=home)
    assert nothing.returncode == 0, nothing.stderr
    assert "nothing new to learn since the base model" in nothing.stdout
    for memory in ("My dog is called Rex.", "I was born in Hallstatt."):
        run_tllm("remember", "--no-teacher", memory, home=home)
    planned = run_tllm("improve", "--dry-run", "--json", home=home)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    taught = sum(len(m.train) for m in MemoryStore(home).all())
    assert plan["new"] == [1, 2] and plan["fresh"] and plan["rows"]["new"] == taught
    assert plan["rows"]["general"] > 0 and not plan["adopted"]
    assert not (home.adapters_dir / "me").exists() and Versions(home, "me").current() is None
    assert not list(home.runs_dir.iterdir())  # nothing trained

    with one_at_a_time(home):
        busy = run_tllm("improve", "--dry-run", home=home)
    assert busy.returncode != 0 and "another `tllm improve` is running" in busy.stderr

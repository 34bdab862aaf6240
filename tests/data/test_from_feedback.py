"""`tllm data from-feedback`: the home's ratings, A/B choices and corrections, written by the
same code the server uses, become KTO (feedback), DPO (preference) and SFT (chat) datasets."""

import json

from tests.conftest import run_tllm
from together_llm.data.feedback import FeedbackStore
from together_llm.data.store import open_dataset

SYSTEM = {"role": "system", "content": "You are terse."}


def ask(text):
    return [{"role": "user", "content": text}]


def test_ratings_and_choices_become_kto_and_dpo_datasets(home):
    store = FeedbackStore(home.path / "feedback")
    store.rate([SYSTEM, *ask("Capital of France?")], "Paris.", True, "default")
    store.rate(ask("2 + 2?"), "5", False, "default")
    # line 3: rated after the conversation moved on; the prompt ends with the assistant
    store.rate(ask("Hi") + [{"role": "assistant", "content": "Hello!"}], "Bye", True, None)
    store.rate(ask("Colour of the sky?"), "Blue.", True, "tuned")
    store.choose(ask("Say hi"), "Hi!", "Go away.", "default")
    with open(home.path / "feedback" / "choices.jsonl", "a") as f:
        f.write("{not json\n")
    store.choose([SYSTEM, *ask("Name a fruit")], "Apple", "Rock", "default")

    result = run_tllm("data", "from-feedback", "--name", "fb", "--json", home=home)
    assert result.returncode == 0, result.stderr
    cards = {c["name"]: c for c in json.loads(result.stdout)}
    assert set(cards) == {"fb-kto", "fb-dpo"}

    kto = open_dataset(home, "fb-kto")
    assert kto.kind == "feedback"
    assert list(kto.rows()) == [
        {"prompt": [SYSTEM, *ask("Capital of France?")], "completion": "Paris.", "label": True},
        {"prompt": ask("2 + 2?"), "completion": "5", "label": False},
        {"prompt": ask("Colour of the sky?"), "completion": "Blue.", "label": True},
    ]
    [bad] = kto.rejected()
    assert bad["line"] == 3 and bad["reason"] == "role order" and "end with a user" in bad["detail"]
    assert (kto.card["liked"], kto.card["disliked"], kto.card["warnings"]) == (2, 1, [])
    assert kto.card["from_feedback"]["lines"] == 4 and kto.card["models"] == {
        "default": 2,
        "tuned": 1,
    }

    dpo = open_dataset(home, "fb-dpo")
    assert dpo.kind == "preference"
    assert list(dpo.rows()) == [
        {"prompt": ask("Say hi"), "chosen": "Hi!", "rejected": "Go away."},
        {"prompt": [SYSTEM, *ask("Name a fruit")], "chosen": "Apple", "rejected": "Rock"},
    ]
    assert [(r["line"], r["reason"]) for r in dpo.rejected()] == [(2, "bad json")]

    again = run_tllm("data", "from-feedback", "--name", "fb", home=home)
    assert again.returncode != 0 and "already exists" in again.stderr
    again = run_tllm("data", "from-feedback", "--name", "fb", "--overwrite", home=home)
    assert (
        again.returncode == 0
        and "wrote fb-kto: 3 feedback rows (2 liked, 1 disliked)" in again.stdout
    )


def test_no_feedback_at_all_says_how_to_collect_it(home):
    result = run_tllm("data", "from-feedback", "--name", "fb", home=home)
    assert result.returncode != 0
    assert "no feedback yet" in result.stderr and "POST /v1/feedback" in result.stderr
    assert "thumbs" in result.stderr


def test_one_sided_ratings_are_written_with_a_warning_and_missing_choices_skipped(home):
    store = FeedbackStore(home.path / "feedback")
    for question in ("a?", "b?"):
        store.rate(ask(question), "yes", True, "default")
    result = run_tllm("data", "from-feedback", "--name", "fb", home=home)
    assert result.returncode == 0, result.stderr
    assert "skipped fb-dpo" in result.stderr and "Regenerate" in result.stderr
    assert "every rating is thumbs up" in result.stderr
    card = open_dataset(home, "fb-kto").card
    assert (card["liked"], card["disliked"]) == (2, 0) and card["warnings"]
    assert not (home.path / "datasets" / "fb-dpo").exists()


def test_a_correction_becomes_a_chat_row_and_a_preference_over_the_answer_given(home):
    store = FeedbackStore(home.path / "feedback")
    conversation = [SYSTEM, *ask("Capital of Australia?")]
    store.correct(conversation, "Sydney.", "Canberra.", "default")
    result = run_tllm("data", "from-feedback", "--name", "fb", home=home)
    assert result.returncode == 0, result.stderr
    assert "wrote fb-sft: 1 chat rows" in result.stdout
    assert "skipped fb-kto" in result.stderr
    assert list(open_dataset(home, "fb-sft").rows()) == [
        {"messages": [*conversation, {"role": "assistant", "content": "Canberra."}]}
    ]
    assert list(open_dataset(home, "fb-dpo").rows()) == [
        {"prompt": conversation, "chosen": "Canberra.", "rejected": "Sydney."}
    ]

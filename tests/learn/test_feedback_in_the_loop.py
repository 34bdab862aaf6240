"""How the loop reads the person's feedback: which corrections are new to a version, what a
corrected answer must hold, and when there are enough choices and ratings for dpo and kto."""

from together_llm.data.feedback import FeedbackStore
from together_llm.learn.corrections import corrections_by_age, question_of
from together_llm.learn.preferences import MIN_PAIRS, preferences_after

ASKED = [{"role": "user", "content": "What is the capital of Australia?"}]


def test_corrections_after_a_version_are_new_and_bad_lines_are_passed_over(home):
    store = FeedbackStore(home.feedback_dir)
    store.correct(ASKED, "The capital of Australia is Sydney.", "It is Canberra.", "default")
    with open(home.feedback_dir / "corrections.jsonl", "a") as f:
        f.write("{not json\n")
    store.correct(ASKED, "Sydney.", "No.", None)
    new, earlier = corrections_by_age(home, learned_to=1)
    assert [c.line for c in new] == [3] and [c.line for c in earlier] == [1]

    first = question_of(earlier[0])
    # what the correction says that the answer did not: not "capital" or "Australia"
    assert first.keys == ("Canberra",) and first.turns == (("user", ASKED[0]["content"]),)
    assert first.right("Canberra is the capital.") and not first.right("It is Sydney.")
    bare = question_of(new[0])  # no content words: the answer must say it
    assert bare.word == "No" and bare.right("No, it is not.")


def test_dpo_and_kto_wait_until_there_are_enough(home):
    store = FeedbackStore(home.feedback_dir)
    for n in range(MIN_PAIRS - 1):
        store.choose(ASKED, f"Canberra {n}.", "Sydney.", None)
    for liked in (True, True, True, True):
        store.rate(ASKED, "Canberra.", liked, None)
    few = preferences_after(home, 0, 0)
    assert few.stages() == []
    assert "3 choices (dpo needs 4)" in few.waiting() and "thumbs up and down" in few.waiting()
    assert few.trained().pairs_to == 0  # nothing recorded as learned while it waits

    store.choose(ASKED, "Canberra!", "Sydney.", None)
    store.rate(ASKED, "Sydney.", False, None)
    enough = preferences_after(home, 0, 0)
    assert enough.stages() == ["dpo", "kto"] and enough.waiting() == ""
    assert (enough.pairs_to, enough.ratings_to) == (4, 5)
    assert preferences_after(home, 4, 5).stages() == []  # a version that learned them

"""LLM-as-judge with fake judges whose biases are known, and the parsing of their replies."""

from __future__ import annotations

from together_llm.evaluate.judge import (
    EngineJudge,
    JudgeStats,
    compare,
    grade,
    judge_pair,
    parse_rating,
    parse_verdict,
)

GOOD, BAD = "Paris is the capital of France.", "France has no capital."


def shown(messages: list[dict]) -> tuple[str, str]:
    """The answers a pairwise prompt shows as A and as B."""
    text = messages[-1]["content"]
    a = text.split("[Assistant A's answer]\n")[1].split("\n\n[Assistant B's answer]")[0]
    b = text.split("[Assistant B's answer]\n")[1]
    return a, b


class FirstPosition:
    """Always says the first answer shown is better, whatever it is."""

    def __init__(self):
        self.prompts = []

    def complete(self, messages):
        self.prompts.append(messages)
        return "Assistant A is more thorough.\n[[A]]"


class Prefers:
    """Prefers whichever position holds `favourite`, and says so in a looser format."""

    def __init__(self, favourite: str):
        self.favourite = favourite

    def complete(self, messages):
        a, b = shown(messages)
        return "Final verdict: A" if a == self.favourite else "My verdict is [[B]]."


class Replies:
    """Answers the given replies in turn."""

    def __init__(self, *replies):
        self.replies = list(replies)

    def complete(self, messages):
        return self.replies.pop(0)


def test_a_judge_that_always_prefers_the_first_position_gives_a_tie():
    judge = FirstPosition()
    stats = JudgeStats()
    judgement = judge_pair(judge, "What is the capital of France?", GOOD, BAD, stats)
    assert judgement.winner == "tie"
    assert (judgement.a_first, judgement.b_first) == ("a", "b")
    assert not judgement.consistent
    # Asked twice, with the answers in both orders.
    assert [shown(p) for p in judge.prompts] == [(GOOD, BAD), (BAD, GOOD)]
    assert stats.as_dict() == {"calls": 2, "unparseable": 0}


def test_a_judge_with_a_real_preference_names_it_in_both_orders():
    question = "What is the capital of France?"
    assert compare(Prefers(GOOD), question, GOOD, BAD) == "a"
    assert compare(Prefers(GOOD), question, BAD, GOOD) == "b"
    judgement = judge_pair(Prefers(BAD), question, GOOD, BAD)
    assert (judgement.winner, judgement.consistent) == ("b", True)


def test_ties_and_unreadable_verdicts_make_ties():
    stats = JudgeStats()
    assert compare(Replies("[[C]]", "[[C]]"), "q", GOOD, BAD) == "tie"
    assert compare(Replies("[[A]]", "I cannot decide."), "q", GOOD, BAD, stats) == "tie"
    assert stats.unparseable == 1


def test_grade_parses_several_formats():
    assert parse_rating("The answer is accurate and clear.\nRating: [[8]]") == 8
    assert parse_rating("Rating: [[ 7.5 ]]") == 7.5
    assert parse_rating("**Rating:** 6") == 6
    assert parse_rating("I would give it 9/10.") == 9
    assert parse_rating("Score: 4") == 4
    # The double-bracket form wins over a number elsewhere in the explanation.
    assert parse_rating("It gets 3 of the 5 steps right. [[5]]") == 5


def test_grade_refuses_garbage():
    assert parse_rating("A fine answer, well written.") is None
    assert parse_rating("Rating: [[11]]") is None  # out of the 1-10 scale
    assert parse_rating("Rating: [[0]]") is None
    assert parse_rating("Rating: [[3]] ... on reflection, Rating: [[8]]") is None  # contradictory
    assert parse_rating("Score: 4/5") is None  # another scale
    assert parse_rating("") is None


def test_grade_counts_unparseable_replies():
    stats = JudgeStats()
    judge = Replies("Good.\nRating: [[9]]", "no idea", "Rating: 2")
    scores = [grade(judge, "q", answer, stats=stats) for answer in ("a1", "a2", "a3")]
    assert scores == [9, None, 2]
    assert stats.as_dict() == {"calls": 3, "unparseable": 1}


def test_grade_prompt_carries_question_answer_and_reference():
    seen = []

    class Recorder:
        def complete(self, messages):
            seen.append(messages)
            return "[[4]]"

    assert grade(Recorder(), "What is 2+2?", "5", reference="4") == 4
    user = seen[0][-1]["content"]
    assert (
        "What is 2+2?" in user
        and "[Assistant's answer]\n5" in user
        and "known to be right]\n4" in user
    )
    assert "[[" in seen[0][0]["content"]  # the judge is told the format to answer in


def test_parse_verdict():
    assert parse_verdict("Both are fine.\n[[C]]") == "C"
    assert parse_verdict("verdict: assistant b") == "B"
    assert parse_verdict("[[A]] ... actually [[B]]") is None
    assert parse_verdict("A is good, B is good") is None


def test_engine_judge_decodes_greedily():
    class FakeEngine:
        def chat(self, messages, params):
            self.params = params

            class Done:
                def run(self):
                    return type("C", (), {"text": "Rating: [[6]]"})()

            return Done()

    engine = FakeEngine()
    assert grade(EngineJudge(engine, max_tokens=64), "q", "a") == 6
    assert (engine.params.temperature, engine.params.max_tokens) == (0.0, 64)

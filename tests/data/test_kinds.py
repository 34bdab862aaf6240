"""The canonical schema of each dataset kind: good rows come back in canonical shape, bad
rows are refused with the reason a user would look for."""

import pytest

from together_llm.data.kinds import KINDS, REASONS, RowError, text_of, validate

CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
}

GOOD = {
    "chat": CHAT,
    "text": {"text": "Some notes."},
    "preference": {"prompt": [{"role": "user", "content": "2+2?"}], "chosen": "4", "rejected": "5"},
    "feedback": {"prompt": [{"role": "user", "content": "2+2?"}], "completion": "4", "label": True},
    "classification": {"text": "Great film", "label": "positive"},
    "seq2seq": {"source": "Hello", "target": "Bonjour"},
    "choice": {"question": "2+2?", "choices": ["4", "5"], "answer": 0},
}


@pytest.mark.parametrize("kind", KINDS)
def test_good_rows_come_back_canonical_without_extra_keys(kind):
    row = dict(GOOD[kind], id=17, source_file="x.json")
    if kind == "seq2seq":
        row.pop("source_file")
    canonical = validate(kind, row)
    assert canonical == GOOD[kind]
    assert text_of(kind, canonical).strip()


@pytest.mark.parametrize(
    "kind, row, reason, where",
    [
        ("chat", {}, "missing field", "'messages'"),
        ("chat", {"messages": "hi"}, "wrong type", "list of messages"),
        ("chat", {"messages": []}, "empty content", "no messages"),
        (
            "chat",
            {
                "messages": [
                    {"role": "user", "content": "  "},
                    {"role": "assistant", "content": "x"},
                ]
            },
            "empty content",
            "messages[0]",
        ),
        (
            "chat",
            {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]},
            "wrong type",
            "messages[0]",
        ),
        ("chat", {"messages": [{"role": "bot", "content": "x"}]}, "unknown role", "'bot'"),
        (
            "chat",
            {"messages": [{"role": "assistant", "content": "x"}]},
            "role order",
            "messages[0]",
        ),
        (
            "chat",
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
            "role order",
            "messages[1]",
        ),
        (
            "chat",
            {"messages": [{"role": "user", "content": "a"}]},
            "role order",
            "end with an assistant",
        ),
        ("chat", {"messages": [{"role": "system", "content": "a"}]}, "role order", "only a system"),
        ("text", {"text": ""}, "empty content", "'text'"),
        (
            "preference",
            {"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": " a "},
            "identical answers",
            "same",
        ),
        (
            "preference",
            {"prompt": [{"role": "user", "content": "q"}], "chosen": "a"},
            "missing field",
            "'rejected'",
        ),
        (
            "feedback",
            {"prompt": [{"role": "user", "content": "q"}], "completion": "a", "label": "yes"},
            "bad label",
            "true or false",
        ),
        ("classification", {"text": "t", "label": 3}, "bad label", "non-empty string"),
        ("seq2seq", {"source": "s"}, "missing field", "'target'"),
        ("seq2seq", [1, 2], "not an object", "list"),
    ],
)
def test_bad_rows_name_reason_and_place(kind, row, reason, where):
    with pytest.raises(RowError) as caught:
        validate(kind, row)
    assert caught.value.reason == reason and reason in REASONS
    assert where in caught.value.detail


def test_prompt_of_preference_must_end_with_the_user():
    row = {"prompt": CHAT["messages"], "chosen": "a", "rejected": "b"}
    with pytest.raises(RowError, match="end with a user"):
        validate("preference", row)


def test_seq2seq_keeps_an_extractive_context():
    row = {"source": "Who?", "target": "Ada", "context": "Ada wrote it."}
    assert validate("seq2seq", row) == row
    assert text_of("seq2seq", row).startswith("Ada wrote it.")

"""Each format's reader turns one source record into the canonical row of its kind, or
rejects it with the reason a user would look for; formats are told from the file."""

import json

import orjson
import pytest

from together_llm.data.importing import chat_formats, formats
from together_llm.data.importing.formats import check_format, converter, detect, split_columns
from together_llm.data.kinds import KINDS, RowError, validate
from together_llm.errors import TllmError


def convert(fmt, kind, record, columns=None):
    read, _ = converter(fmt, kind, columns or {})
    return read(record)


def reason(fmt, kind, record):
    with pytest.raises(RowError) as caught:
        convert(fmt, kind, record)
    return caught.value.reason


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


# ---- alpaca ------------------------------------------------------------------------------


def test_alpaca_joins_instruction_and_input_and_reads_system_and_history():
    row = convert("alpaca", "chat", {"instruction": "Translate.", "input": "Hi", "output": "Salut"})
    assert row == {"messages": [user("Translate.\n\nHi"), assistant("Salut")]}
    row = convert(
        "alpaca",
        "chat",
        {
            "instruction": "And now?",
            "input": "  ",
            "output": "B",
            "system": "Be brief.",
            "history": [["First?", "A"]],
        },
    )
    assert row["messages"] == [
        {"role": "system", "content": "Be brief."},
        user("First?"),
        assistant("A"),
        user("And now?"),
        assistant("B"),
    ]
    # an empty system prompt means none, as alpaca-style files write it
    assert convert("alpaca", "chat", {"instruction": "Q", "output": "A", "system": ""}) == {
        "messages": [user("Q"), assistant("A")]
    }


# (record, the reason it is rejected for, or None when it is a valid row)
ALPACA_CASES = [
    ({"instruction": "Q", "output": "A"}, None),
    ({"instruction": "Q", "input": None, "output": "A"}, None),
    ({"instruction": "Q", "input": "\u00a0\t", "output": "A"}, None),  # blank input: none
    (
        {"instruction": "Q", "input": "I", "output": "A", "system": "S", "history": [["q", "a"]]},
        None,
    ),
    ({"instruction": 'Q "quoted" \u00e9\n', "output": "A\ud7ff\t"}, None),
    ({"instruction": "Q"}, "missing field"),
    ({"output": "A"}, "missing field"),
    ({"instruction": None, "output": "A"}, "missing field"),
    ({"instruction": "Q", "output": None}, "missing field"),
    ({"instruction": "", "output": "A"}, "empty content"),
    ({"instruction": "Q", "output": " \n "}, "empty content"),
    ({"instruction": "Q", "output": "\u2003"}, "empty content"),  # unicode space is blank too
    ({"instruction": 3, "output": "A"}, "wrong type"),
    ({"instruction": "Q", "output": ["A"]}, "wrong type"),
    ({"instruction": "Q", "output": True}, "wrong type"),
    ({"instruction": "Q", "input": 0, "output": "A"}, "wrong type"),
    ({"instruction": "Q", "input": ["x"], "output": "A"}, "wrong type"),
    ({"instruction": "Q", "output": "A", "system": 5}, "wrong type"),
    ({"instruction": "Q", "output": "A", "history": "no"}, "wrong type"),
    ({"instruction": "Q", "output": "A", "history": [["only one"]]}, "wrong type"),
    ({"instruction": "Q", "output": "A", "history": [["q", " "]]}, "empty content"),
    ({"instruction": "Q", "output": "A", "history": [[None, "a"]]}, "missing field"),
]


@pytest.mark.parametrize("record,expected", ALPACA_CASES, ids=lambda v: json.dumps(v)[:40])
def test_alpaca_checks_every_field_it_reads(record, expected):
    """alpaca skips kinds.validate (the fast path), so its rows must be canonical as they
    come, and its own checks must give validate's reasons."""
    read, needs_validate = converter("alpaca", "chat", {})
    as_line = formats.line_converter("alpaca", "chat", {})  # the import loops' fast path
    assert not needs_validate
    if expected is None:
        row = read(record)
        assert validate("chat", row) == row
        assert as_line(record) == orjson.dumps(row) + b"\n"
        return
    for function in (read, as_line):
        with pytest.raises(RowError) as caught:
            function(record)
        assert caught.value.reason == expected
    if set(record) <= {"instruction", "output"}:  # the same two fields as messages: validate agrees
        naive = {
            "messages": [
                {"role": "user", "content": record.get("instruction")},
                {"role": "assistant", "content": record.get("output")},
            ]
        }
        with pytest.raises(RowError) as by_validate:
            validate("chat", naive)
        assert by_validate.value.reason == expected


# ---- sharegpt, belle, openai --------------------------------------------------------------


def test_sharegpt_maps_speakers_and_keeps_a_leading_system_turn():
    record = {
        "conversations": [
            {"from": "system", "value": "S"},
            {"from": "human", "value": "Q"},
            {"from": "ChatGPT", "value": "A"},
            {"from": "user", "value": "Q2"},
            {"from": "bing", "value": "A2"},
        ]
    }
    assert convert("sharegpt", "chat", record)["messages"] == [
        {"role": "system", "content": "S"},
        user("Q"),
        assistant("A"),
        user("Q2"),
        assistant("A2"),
    ]


def test_sharegpt_rejections_name_the_problem():
    assert (
        reason("sharegpt", "chat", {"conversations": [{"from": "robot", "value": "x"}]})
        == "unknown role"
    )
    assert (
        reason(
            "sharegpt",
            "chat",
            {"conversations": [{"from": "gpt", "value": "Hi"}, {"from": "human", "value": "Q"}]},
        )
        == "role order"
    )
    assert (
        reason("sharegpt", "chat", {"conversations": [{"from": "human", "value": "Q"}]})
        == "role order"
    )
    assert (
        reason(
            "sharegpt",
            "chat",
            {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": ""}]},
        )
        == "empty content"
    )
    assert reason("sharegpt", "chat", {"id": 1}) == "missing field"
    assert reason("sharegpt", "chat", {"conversations": "Q"}) == "wrong type"


def test_belle_multi_turn_dialogue_is_split_into_turns():
    record = {
        "instruction": "Human: Hi\nAssistant: Hello!\nHuman: How are you?\n  Assistant：",
        "input": "",
        "output": "Fine, thanks.",
    }
    assert convert("belle", "chat", record)["messages"] == [
        user("Hi"),
        assistant("Hello!"),
        user("How are you?"),
        assistant("Fine, thanks."),
    ]
    # a colon inside a turn is text, not a new speaker
    record = {
        "instruction": "Human: Say 'Assistant: hi' please\nAssistant:",
        "output": "Assistant: hi",
    }
    assert convert("belle", "chat", record)["messages"] == [
        user("Say 'Assistant: hi' please"),
        assistant("Assistant: hi"),
    ]


def test_belle_other_layouts_and_broken_dialogues():
    assert convert(
        "belle", "chat", {"instruction": "Translate.", "input": "猫", "output": "cat"}
    ) == {"messages": [user("Translate.\n\n猫"), assistant("cat")]}
    assert convert(
        "belle",
        "chat",
        {"conversations": [{"from": "human", "value": "Q"}, {"from": "assistant", "value": "A"}]},
    ) == {"messages": [user("Q"), assistant("A")]}
    two_humans = {"instruction": "Human: a\nHuman: b\nAssistant:", "output": "c"}
    assert reason("belle", "chat", two_humans) == "role order"
    assert (
        reason("belle", "chat", {"instruction": "Human: \nAssistant:", "output": "c"})
        == "empty content"
    )


def test_openai_reads_text_parts_and_the_developer_role():
    record = {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "a"}, "b"]},
            {"role": "assistant", "content": "c", "name": "x"},
        ]
    }
    assert convert("openai", "chat", record)["messages"] == [
        {"role": "system", "content": "Be brief."},
        user("a\nb"),
        assistant("c"),
    ]
    image = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
            assistant("c"),
        ]
    }
    assert reason("openai", "chat", image) == "wrong type"
    assert (
        reason("openai", "chat", {"messages": [{"role": "tool", "content": "x"}]}) == "unknown role"
    )
    # a role that is not even hashable is the row's fault, not a crash of the import
    listed = {"messages": [{"role": ["user"], "content": "a"}, assistant("c")]}
    assert reason("openai", "chat", listed) == "unknown role"


# ---- preference and kto -------------------------------------------------------------------


def test_preference_prompt_forms():
    expected = {"prompt": [user("Q")], "chosen": "good", "rejected": "bad"}
    assert (
        convert("preference", "preference", {"prompt": "Q", "chosen": "good", "rejected": "bad"})
        == expected
    )
    trl = {"prompt": [user("Q")], "chosen": [assistant("good")], "rejected": [assistant("bad")]}
    assert convert("preference", "preference", trl) == expected
    implicit = {"chosen": [user("Q"), assistant("good")], "rejected": [user("Q"), assistant("bad")]}
    assert convert("preference", "preference", implicit) == expected
    assert convert("preference", "preference", {**expected, "prompt": "Q", "system": "S"})[
        "prompt"
    ] == [{"role": "system", "content": "S"}, user("Q")]


def test_preference_rejections():
    assert (
        reason("preference", "preference", {"prompt": "Q", "chosen": "same", "rejected": "same "})
        == "identical answers"
    )
    assert reason("preference", "preference", {"prompt": "Q", "chosen": "x"}) == "missing field"
    differ = {"chosen": [user("Q"), assistant("a")], "rejected": [user("Other"), assistant("b")]}
    assert reason("preference", "preference", differ) == "missing field"
    assert (
        reason(
            "preference",
            "preference",
            {"prompt": [user("Q"), assistant("A")], "chosen": "x", "rejected": "y"},
        )
        == "role order"
    )


@pytest.mark.parametrize(
    "label,expected",
    [
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        (" TRUE ", True),
        (1, True),
        (0, False),
        ("1", True),
        ("0", False),
    ],
)
def test_kto_labels(label, expected):
    row = convert("kto", "feedback", {"prompt": "Q", "completion": "A", "label": label})
    assert row == {"prompt": [user("Q")], "completion": "A", "label": expected}


@pytest.mark.parametrize("label", ["yes", 2, -1, 1.0, "", [True], {"v": 1}])
def test_kto_bad_labels(label):
    assert (
        reason("kto", "feedback", {"prompt": "Q", "completion": "A", "label": label}) == "bad label"
    )


def test_kto_missing_label_is_a_missing_field():
    assert reason("kto", "feedback", {"prompt": "Q", "completion": "A"}) == "missing field"


# ---- canonical rows, columns, text ---------------------------------------------------------


def test_jsonl_rows_pass_through_and_columns_rename():
    assert convert("jsonl", "classification", {"text": "t", "label": 3, "id": 1}) == {
        "text": "t",
        "label": "3",
    }
    assert convert(
        "jsonl", "seq2seq", {"q": "Who?", "a": "Me"}, {"source": "q", "target": "a"}
    ) == {"source": "Who?", "target": "Me"}
    assert convert(
        "alpaca",
        "chat",
        {"question": "Q", "answer": "A"},
        {"instruction": "question", "output": "answer"},
    ) == {"messages": [user("Q"), assistant("A")]}
    assert reason("jsonl", "text", {"body": "x"}) == "missing field"


def test_csv_preference_and_feedback_take_text_cells():
    assert convert("csv", "feedback", {"prompt": "Q", "completion": "A", "label": "false"}) == {
        "prompt": [user("Q")],
        "completion": "A",
        "label": False,
    }
    assert convert("csv", "preference", {"prompt": "Q", "chosen": "a", "rejected": "b"})[
        "prompt"
    ] == [user("Q")]


def test_column_flags_are_checked():
    assert split_columns(["text = review", "label=stars"]) == {"text": "review", "label": "stars"}
    with pytest.raises(TllmError, match="FIELD=COLUMN"):
        split_columns(["text"])
    with pytest.raises(TllmError, match="reads text, label, not 'body'"):
        formats.check_columns({"body": "x"}, "csv", "classification")
    with pytest.raises(TllmError, match="does not apply to the text format"):
        formats.check_columns({"text": "x"}, "text", "text")


def test_every_kind_has_formats_and_a_mismatch_names_them():
    for kind in KINDS:
        assert "jsonl" in formats.formats_for(kind)
    assert formats.formats_for("chat") == ["alpaca", "sharegpt", "belle", "openai", "jsonl"]
    with pytest.raises(TllmError) as caught:
        check_format("alpaca", "classification")
    assert str(caught.value) == (
        "format alpaca makes chat rows, not classification: kind classification reads jsonl, csv"
    )
    with pytest.raises(TllmError, match="unknown format 'yaml'"):
        check_format("yaml", "chat")


# ---- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record,kind,fmt",
    [
        ({"instruction": "a", "input": "", "output": "b"}, "chat", "alpaca"),
        ({"instruction": "Human: a\nAssistant:", "output": "b"}, "chat", "belle"),
        ({"conversations": []}, "chat", "sharegpt"),
        ({"messages": []}, "chat", "openai"),
        ({"prompt": "a", "chosen": "b", "rejected": "c"}, "preference", "preference"),
        ({"prompt": "a", "completion": "b", "label": True}, "feedback", "kto"),
        ({"text": "a", "label": "b"}, "classification", "jsonl"),
        ({"source": "a", "target": "b"}, "seq2seq", "jsonl"),
        ({"text": "a"}, "text", "jsonl"),
    ],
)
def test_detection_from_the_first_record(tmp_path, record, kind, fmt):
    path = tmp_path / "data.jsonl"
    path.write_text("\n" + "{not json\n" + json.dumps(record) + "\n")
    found, how = detect(path, kind, {})
    assert found == fmt
    assert how.startswith("the keys of line 3: ")


def test_detection_from_extensions_and_failures(tmp_path):
    assert detect(tmp_path, "text", {}) == ("text", "a folder")
    (tmp_path / "a.csv").write_text("text\nx\n")
    assert detect(tmp_path / "a.csv", "text", {}) == ("csv", "the extension .csv")
    (tmp_path / "a.md").write_text("# x")
    assert detect(tmp_path / "a.md", "text", {})[0] == "text"
    (tmp_path / "a.parquet").write_bytes(b"PAR1")
    with pytest.raises(TllmError, match="from its extension: pass --format"):
        detect(tmp_path / "a.parquet", "chat", {})
    (tmp_path / "odd.jsonl").write_text('{"foo": 1}\n')
    with pytest.raises(
        TllmError, match=r"keys of line 1 \(foo\): pass --format \(kind chat reads alpaca"
    ):
        detect(tmp_path / "odd.jsonl", "chat", {})
    (tmp_path / "one.json").write_text('{\n  "data": [1]\n}\n')
    with pytest.raises(TllmError, match="found no JSON object"):
        detect(tmp_path / "one.json", "chat", {})


def test_belle_dialogue_check():
    assert chat_formats.is_belle_dialogue({"instruction": "  human： hi"})
    assert not chat_formats.is_belle_dialogue({"instruction": "Explain Human: rights"})


def test_alpaca_rows_holding_a_belle_dialogue_are_split_into_turns():
    dialogue = {
        "instruction": "Human: Hi\nAssistant: Hello!\nHuman: Bye?\nAssistant:",
        "input": "",
        "output": "Bye.",
    }
    expected = {"messages": [user("Hi"), assistant("Hello!"), user("Bye?"), assistant("Bye.")]}
    as_line = formats.line_converter("alpaca", "chat", {})
    assert convert("alpaca", "chat", dialogue) == expected
    assert as_line(dialogue) == orjson.dumps(expected) + b"\n"
    assert (
        as_line({**dialogue, "system": "Be kind."})
        == orjson.dumps(
            {"messages": [{"role": "system", "content": "Be kind."}, *expected["messages"]]}
        )
        + b"\n"
    )
    # an instruction starting with H that is not a dialogue stays one user turn
    plain = {"instruction": "How does a Human: prefix look?", "output": "Like this."}
    assert (
        as_line(plain)
        == orjson.dumps({"messages": [user(plain["instruction"]), assistant("Like this.")]}) + b"\n"
    )
    # split rows are checked like any other: two human turns in a row are refused
    with pytest.raises(RowError) as caught:
        as_line({"instruction": " human: a\nHuman: b\nAssistant:", "output": "c"})
    assert caught.value.reason == "role order"

"""Importing files: every fixture becomes the right canonical rows, bad rows are reported
with their line and reason, and the outcome rule (written or not) holds."""

import json
from pathlib import Path

import pytest

from together_llm.data.importing.importer import check_file, import_file, plan
from together_llm.data.store import open_dataset
from together_llm.errors import TllmError

FIXTURES = Path(__file__).parent / "fixtures"


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


def imported(home, name, kind, fmt=None, columns=(), **flags):
    summary = import_file(
        home, plan(FIXTURES / name, kind, fmt, columns), name.split(".")[0], **flags
    )
    return summary, (
        list(open_dataset(home, name.split(".")[0]).rows()) if summary.written else None
    )


def test_alpaca_json_array_over_many_lines(home):
    summary, rows = imported(home, "alpaca_array.json", "chat")
    assert (summary.format, summary.rows, summary.total_rejected) == ("alpaca", 4, 0)
    assert rows == [
        {
            "messages": [
                user("Give three tips for staying healthy."),
                assistant("1. Eat well.\n2. Sleep enough.\n3. Move every day."),
            ]
        },
        {"messages": [user("Translate to French.\n\nGood morning"), assistant("Bonjour")]},
        {
            "messages": [
                system("You are terse."),
                user("Summarize the text."),
                assistant("Nothing to summarize."),
            ]
        },
        {
            "messages": [
                user("Translate to French: Good morning"),
                assistant("Bonjour"),
                user("And in German?"),
                assistant("Guten Morgen"),
            ]
        },
    ]
    card = open_dataset(home, "alpaca_array").card
    assert card["format"] == "alpaca" and card["detected"].startswith("the keys of line 2")
    assert card["source"] == str((FIXTURES / "alpaca_array.json").resolve())


def test_alpaca_jsonl_with_a_byte_order_mark(home):
    assert (FIXTURES / "alpaca_bom.jsonl").read_bytes().startswith(b"\xef\xbb\xbf")
    summary, rows = imported(home, "alpaca_bom.jsonl", "chat")
    assert summary.total_rejected == 0
    assert rows[0]["messages"][0] == user("Écris un haïku sur l'automne.")
    assert rows[1] == {
        "messages": [user("用一句话介绍长城。"), assistant("长城是中国古代修建的巨大防御工程。")]
    }


def test_sharegpt_with_a_system_turn(home):
    summary, rows = imported(home, "sharegpt.jsonl", "chat")
    assert summary.format == "sharegpt" and summary.total_rejected == 0
    assert rows == [
        {"messages": [system("You are a pirate."), user("Hello?"), assistant("Ahoy!")]},
        {"messages": [user("2+2?"), assistant("4"), user("And 3+3?"), assistant("6")]},
        {"messages": [system("Answer in one word."), user("Sky colour?"), assistant("Blue")]},
    ]


def test_belle_all_three_layouts(home):
    summary, rows = imported(home, "belle.jsonl", "chat")
    assert summary.format == "belle" and "Human:/Assistant: dialogue" in summary.detected
    assert rows == [
        {
            "messages": [
                user("请推荐一本科幻小说。"),
                assistant("推荐《三体》。"),
                user("它讲的是什么？"),
                assistant("它讲述了人类与三体文明的接触。"),
            ]
        },
        {"messages": [user("What is the capital of Italy?"), assistant("Rome.")]},
        {"messages": [user("把这句话翻译成英文。\n\n我喜欢读书。"), assistant("I like reading.")]},
        {"messages": [user("你好"), assistant("你好！有什么可以帮你？")]},
    ]


def test_openai_chat(home):
    _, rows = imported(home, "openai.jsonl", "chat")
    assert rows == [
        {"messages": [system("Be brief."), user("Hi"), assistant("Hello.")]},
        {"messages": [system("Reply in English."), user("Name a colour."), assistant("Green.")]},
    ]


def test_preference(home):
    summary, rows = imported(home, "preference.jsonl", "preference")
    assert summary.format == "preference" and summary.total_rejected == 0
    assert rows == [
        {"prompt": [user("Say hi.")], "chosen": "Hi!", "rejected": "No."},
        {
            "prompt": [system("Be kind."), user("Rate my poem.")],
            "chosen": "It has lovely imagery.",
            "rejected": "Bad.",
        },
        {"prompt": [user("Capital of Spain?")], "chosen": "Madrid.", "rejected": "Paris."},
        {"prompt": [user("1+1?")], "chosen": "2", "rejected": "3"},
    ]


def test_kto_labels_and_bad_labels(home):
    summary, rows = imported(home, "kto.jsonl", "feedback")
    assert [r["label"] for r in rows] == [True, False, True, False, True, False]
    assert rows[2] == {"prompt": [user("Hi")], "completion": "Hello!", "label": True}
    assert summary.rejected == {"bad label": 2}
    rejected = list(open_dataset(home, "kto").rejected())
    assert [(r["line"], r["reason"]) for r in rejected] == [(7, "bad label"), (8, "bad label")]


def test_canonical_jsonl_rows(home):
    _, rows = imported(home, "classification.jsonl", "classification")
    assert rows == [
        {"text": "I loved it", "label": "positive"},
        {"text": "Terrible", "label": "0"},
        {"text": "Fine", "label": "neutral"},
    ]
    _, rows = imported(home, "seq2seq.jsonl", "seq2seq")
    assert rows == [
        {
            "source": "Who wrote Hamlet?",
            "target": "Shakespeare",
            "context": "Hamlet is a tragedy by William Shakespeare.",
        },
        {"source": "Hello", "target": "Bonjour"},
    ]


def test_csv_quoted_newlines_bom_and_column_mapping(home):
    summary, rows = imported(
        home, "reviews.csv", "classification", columns=["text=review", "label=stars"]
    )
    assert rows == [
        {"text": "Great phone,\nbattery lasts two days.", "label": "5"},
        {"text": 'He said "meh".', "label": "3"},
        {"text": "Line one\nline two\nline three", "label": "4"},
        {"text": "Works fine", "label": "4"},
    ]
    # each rejection points at the line its record starts on, quoted newlines counted
    rejected = [(r["line"], r["reason"]) for r in open_dataset(home, "reviews").rejected()]
    assert rejected == [(6, "empty content"), (10, "bad csv")]
    assert summary.columns == {"text": "review", "label": "stars"}


def test_csv_without_a_column_for_a_field_is_refused_before_reading(home):
    with pytest.raises(
        TllmError,
        match=r"no column for text, label \(columns: id, review, stars\): "
        r"map them with --column text=COLUMN --column label=COLUMN",
    ):
        imported(home, "reviews.csv", "classification")
    with pytest.raises(TllmError, match="has no column 'body'"):
        imported(home, "reviews.csv", "classification", columns=["text=body", "label=stars"])


def test_text_folder_one_row_a_file(home):
    summary, rows = imported(home, "texts", "text")
    assert rows == [
        {"text": "The first document.\nIt has two lines.\n"},
        {"text": "# Notes\n\nSome *markdown* text.\n"},
    ]
    assert summary.skipped_files == 2  # picture.png and .hidden.txt
    rejected = list(open_dataset(home, "texts").rejected())
    assert [(r["line"], r["reason"]) for r in rejected] == [("empty.txt", "empty content")]


def test_a_single_text_file_and_a_bad_encoding(home, tmp_path):
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    summary = check_file(plan(tmp_path / "latin1.txt", "text"))
    assert summary.rows == 0 and summary.rejected == {"bad encoding": 1}
    summary = check_file(plan(FIXTURES / "texts" / "a.txt", "text"))
    assert summary.rows == 1


def test_known_bad_rows_at_known_lines(home):
    summary, rows = imported(home, "bad_rows.jsonl", "chat")
    assert summary.written and summary.read == 11
    assert [r["messages"][0]["content"] for r in rows] == [
        "Good one",
        "Good two\n\nwith input",
        "Good three",
        "Good four",
    ]
    rejected = list(open_dataset(home, "bad_rows").rejected())
    assert [(r["line"], r["reason"]) for r in rejected] == [
        (3, "missing field"),
        (4, "wrong type"),
        (5, "empty content"),
        (6, "bad json"),
        (8, "not an object"),
        (10, "wrong type"),
    ]
    assert json.loads(rejected[0]["row"]) == {"instruction": "No output", "input": ""}
    assert rejected[3]["row"] == '{"instruction": "broken", "output": '
    card = open_dataset(home, "bad_rows").card
    assert card["rows"] == 4 and card["rejected"] == 6
    assert card["rejected_by_reason"] == {
        "wrong type": 2,
        "missing field": 1,
        "empty content": 1,
        "bad json": 1,
        "not an object": 1,
    }


def test_strict_writes_nothing_when_a_row_is_rejected(home):
    summary, _ = imported(home, "bad_rows.jsonl", "chat", strict=True)
    assert not summary.written and summary.rows == 4 and summary.total_rejected == 6
    with pytest.raises(TllmError):
        open_dataset(home, "bad_rows")
    assert not any((home.path / "datasets").iterdir())  # no temporary folder left behind
    summary, _ = imported(home, "sharegpt.jsonl", "chat", strict=True)
    assert summary.written


def test_no_valid_row_writes_nothing(home):
    summary, _ = imported(home, "all_bad.jsonl", "chat")
    assert not summary.written and summary.rows == 0
    assert [(b["line"], b["reason"]) for b in summary.first_rejected] == [
        (1, "missing field"),
        (2, "bad json"),
    ]


def test_an_existing_dataset_is_kept_unless_overwritten(home):
    imported(home, "openai.jsonl", "chat")
    with pytest.raises(TllmError, match="already exists"):
        imported(home, "openai.jsonl", "chat")
    summary, rows = imported(home, "openai.jsonl", "chat", overwrite=True)
    assert summary.written and len(rows) == 2


def test_the_format_must_suit_the_kind(home):
    with pytest.raises(
        TllmError,
        match=r"format sharegpt \(detected from the keys of line 1: id, "
        r"conversations\) makes chat rows, not text: kind text reads jsonl, csv, text",
    ):
        plan(FIXTURES / "sharegpt.jsonl", "text")
    with pytest.raises(TllmError, match="only the text format reads folders"):
        plan(FIXTURES / "texts", "chat", "alpaca")
    with pytest.raises(TllmError, match="no such file or folder"):
        plan(FIXTURES / "missing.jsonl", "chat")


def test_check_file_counts_like_an_import_and_writes_nothing(home):
    summary = check_file(plan(FIXTURES / "bad_rows.jsonl", "chat"))
    assert summary.rows == 4 and summary.total_rejected == 6 and not summary.written
    assert summary.first_rejected[0] == {
        "line": 3,
        "reason": "missing field",
        "detail": "'output' is missing",
    }
    assert not (home.path / "datasets").exists() or not any((home.path / "datasets").iterdir())

"""Importing awkward input: JSON arrays streamed and resynced after a bad element, big JSON
Lines files split over processes, text that is not UTF-8, unreadable files, and rows that
only show what they are past the first one."""

import json
import os

import orjson
import pytest

from together_llm.data.importing import sources as readers
from together_llm.data.importing.importer import check_file, import_file, plan
from together_llm.data.importing.sources import JsonArray
from together_llm.data.store import open_dataset
from together_llm.errors import TllmError

from .test_import import assistant, imported, user

# ---- JSON arrays are streamed -----------------------------------------------------------------


def write_array(path, records, indent=2):
    path.write_text(json.dumps(records, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def test_json_array_elements_keep_their_lines_across_buffer_refills(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK", 7)  # refill in the middle of every element
    records = [
        {"instruction": f"Q{i}", "input": "", "output": "A" * (i % 5 + 1)} for i in range(30)
    ]
    records.insert(12, 12345)  # a number: its end must not be taken at a buffer boundary
    write_array(tmp_path / "a.json", records)
    seen = list(JsonArray(tmp_path / "a.json"))
    assert [r for _, r, _ in seen] == records
    text = (tmp_path / "a.json").read_text().splitlines()
    for line, record, raw in seen:  # each element starts on the line reported
        if isinstance(record, dict):
            assert text[line - 1].strip() == "{"
            assert text[line].strip() == f'"instruction": "{record["instruction"]}",'
        else:
            assert text[line - 1].strip() == "12345,"
        assert json.loads(raw) == record


def test_json_array_memory_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK", 1024)
    write_array(
        tmp_path / "a.json",
        [{"text": "x" * 100, "label": str(i)} for i in range(2000)],
        indent=None,
    )
    assert (tmp_path / "a.json").stat().st_size > 200 * 1024
    reader, largest = JsonArray(tmp_path / "a.json"), 0
    for _ in reader:
        largest = max(largest, len(reader.buf))
    assert largest <= 3 * 1024


def qa(i):
    return {"instruction": f"Q{i}", "output": f"A{i}"}


def test_a_bad_element_in_a_json_array_is_rejected_alone_and_reading_goes_on(home, tmp_path):
    bad = [
        '{"instruction": "Q3", "output": oops}',
        '{"instruction": "Q4" "output": "A4"}',
        '{\n  "instruction": "Q5",\n  "history": [["a", "b"],],\n  "output": "A5"\n}',
    ]
    text = "[\n" + ",\n".join([json.dumps(qa(1)), *bad, json.dumps(qa(6), indent=2)]) + "\n]\n"
    (tmp_path / "broken.json").write_text(text)
    summary = import_file(home, plan(tmp_path / "broken.json", "chat"), "broken")
    assert (summary.rows, summary.rejected, summary.stopped, summary.read) == (
        2,
        {"bad json": 3},
        None,
        5,
    )
    dataset = open_dataset(home, "broken")
    assert [r["messages"][0]["content"] for r in dataset.rows()] == ["Q1", "Q6"]
    rejected = list(dataset.rejected())
    assert [(r["line"], r["reason"], r["row"]) for r in rejected] == [
        (3, "bad json", bad[0]),
        (4, "bad json", bad[1]),
        (5, "bad json", bad[2]),
    ]
    assert [r["detail"] for r in rejected] == [
        "Expecting value (line 3)",
        "Expecting ',' delimiter (line 4)",
        "Expecting value (line 7)",
    ]
    assert "stopped" not in dataset.card


def test_a_json_array_broken_past_repair_keeps_the_rows_before_and_says_where_it_stopped(
    home, tmp_path
):
    text = (
        "[\n"
        + ",\n".join(json.dumps(qa(i)) for i in (1, 2))
        + ',\n{"instruction": "Q3", "input": [1, 2}, "output": "A3"},\n'
        + json.dumps(qa(4))
        + "\n]\n"
    )
    (tmp_path / "broken.json").write_text(text)
    summary = import_file(home, plan(tmp_path / "broken.json", "chat"), "broken")
    # the unread rest is not a row: neither kept nor counted as one rejection
    assert (summary.rows, summary.total_rejected, summary.read) == (2, 0, 2)
    assert (
        summary.stopped
        == "line 4: Expecting ',' delimiter (line 4); the element's end cannot be found"
    )
    dataset = open_dataset(home, "broken")
    assert dataset.card["stopped"] == summary.stopped and list(dataset.rejected()) == []
    strict = import_file(home, plan(tmp_path / "broken.json", "chat"), "strict", strict=True)
    assert strict.stopped and not strict.written  # all or nothing: the whole file was not read


def test_one_deeply_nested_element_is_rejected_and_the_rest_imported(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "a.json").write_text(f'[{{"text": "one"}},\n{deep},\n{{"text": "two"}}]')
    summary = check_file(plan(tmp_path / "a.json", "text"))
    assert (summary.rows, summary.rejected, summary.stopped) == (2, {"bad json": 1}, None)
    assert summary.first_rejected == [
        {"line": 2, "reason": "bad json", "detail": "nested too deeply to decode"}
    ]
    (tmp_path / "b.jsonl").write_text(f'{{"text": "one"}}\n{deep}\n{{"text": "two"}}\n')
    summary = check_file(plan(tmp_path / "b.jsonl", "text"))
    assert (summary.rows, summary.rejected) == (2, {"bad json": 1})


def test_a_bad_element_split_across_buffer_refills_is_still_found(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK", 5)
    (tmp_path / "a.json").write_text(
        '[{"text": "a\\"b"}, {"text": x, "n": [[1], {"k": "]"}]}, '
        '{"text": "c"}, "s\\"t", 12345, bad, {"text": "d"}]'
    )
    seen = [
        (line, r.detail if isinstance(r, readers.BadRecord) else r, raw)
        for line, r, raw in JsonArray(tmp_path / "a.json")
    ]
    assert seen == [
        (1, {"text": 'a"b'}, '{"text": "a\\"b"}'),
        (1, "Expecting value (line 1)", '{"text": x, "n": [[1], {"k": "]"}]}'),
        (1, {"text": "c"}, '{"text": "c"}'),
        (1, 's"t', '"s\\"t"'),
        (1, 12345, "12345"),
        (1, "Expecting value (line 1)", "bad"),
        (1, {"text": "d"}, '{"text": "d"}'),
    ]


@pytest.mark.parametrize(
    "text,detail",
    [
        ('[{"text": "a"}', "ends before the array's closing ]"),
        ('[{"text": "a"} {"text": "b"}]', "expected ',' or ']'"),
        ('[{"text": "a"}] [1]', "text after the array's closing ]"),
        ('[{"text": "a"}, {"text": "b"', "the element's end cannot be found"),
    ],
)
def test_json_array_structure_errors(tmp_path, text, detail):
    (tmp_path / "a.json").write_text(text)
    summary = check_file(plan(tmp_path / "a.json", "text", "jsonl"))
    assert summary.rows == 1 and summary.total_rejected == 0
    assert summary.stopped.startswith("line 1: ") and detail in summary.stopped


def test_json_lines_with_crlf_blank_lines_and_a_bom(tmp_path):
    rows = [orjson.dumps({"text": t}) for t in ("one", "two")]
    (tmp_path / "a.jsonl").write_bytes(
        b"\xef\xbb\xbf" + rows[0] + b"\r\n\r\n  \n" + rows[1] + b"\r\n"
    )
    summary = check_file(plan(tmp_path / "a.jsonl", "text"))
    assert summary.rows == 2 and summary.total_rejected == 0 and summary.read == 4


# ---- a big JSON Lines file is imported by several processes ---------------------------------


def test_several_processes_write_what_one_process_writes(home, tmp_path, monkeypatch):
    from together_llm.data.importing import jsonl

    lines, expected = [], []
    for i in range(3000):
        if i % 401 == 7:
            lines.append('{"instruction": "broken"')
            expected.append((i + 1, "bad json"))
        elif i % 997 == 3:
            lines.append("")
        else:
            empty = i % 333 == 5
            lines.append(
                json.dumps(
                    {"instruction": f"Q{i}", "input": "", "output": "" if empty else f"A{i}"}
                )
            )
            if empty:
                expected.append((i + 1, "empty content"))
    source = tmp_path / "big.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")

    one = import_file(home, plan(source, "chat"), "one")
    monkeypatch.setattr(jsonl, "PARALLEL_FROM", 1)
    monkeypatch.setattr(jsonl, "processes_for", lambda path: 3)
    used, parallel = [], jsonl.import_lines_parallel
    monkeypatch.setattr(
        jsonl, "import_lines_parallel", lambda *a: used.append(a[5]) or parallel(*a)
    )
    three = import_file(home, plan(source, "chat"), "three")
    assert used == [3]
    assert three.read == one.read == 3000
    assert three.rows == one.rows == 3000 - 4 - len(expected)  # 4 blank lines are not rows
    first, second = open_dataset(home, "one"), open_dataset(home, "three")
    assert second.path().read_bytes() == first.path().read_bytes()
    assert [(r["line"], r["reason"]) for r in second.rejected()] == expected
    assert list(second.rejected()) == list(first.rejected())
    assert second.card["fingerprint"] == first.card["fingerprint"]
    assert second.card["rejected_by_reason"] == first.card["rejected_by_reason"]
    assert not [
        p for p in (home.path / "datasets").iterdir() if p.name.startswith(".")
    ]  # parts removed

    checked = check_file(plan(source, "chat"))
    assert (checked.rows, checked.rejected, checked.first_rejected) == (
        one.rows,
        one.rejected,
        one.first_rejected,
    )
    assert used == [3, 3]


def test_line_ranges_cut_at_line_starts(tmp_path):
    from together_llm.data.importing.jsonl import line_ranges

    text = b"".join(b"%d %s\n" % (i, b"x" * (i % 13)) for i in range(500))
    (tmp_path / "a.jsonl").write_bytes(text)
    for parts in (2, 3, 4):
        ranges = line_ranges(tmp_path / "a.jsonl", parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(text) and len(ranges) == parts
        for (_, end), (start, _) in zip(ranges, ranges[1:]):
            assert end == start and text[start - 1 : start] == b"\n"


def test_a_failed_helper_fails_the_import_and_leaves_nothing(home, tmp_path, monkeypatch):
    from together_llm.data.importing import jsonl

    source = tmp_path / "a.jsonl"
    source.write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(200)))
    monkeypatch.setattr(jsonl, "processes_for", lambda path: 2)
    monkeypatch.setattr(jsonl.sys, "executable", "/bin/false")  # a helper that dies at once
    with pytest.raises(
        TllmError, match=r"a helper process importing part of a.jsonl failed \(exit code 1\)"
    ):
        import_file(home, plan(source, "text"), "a")
    assert list((home.path / "datasets").iterdir()) == []


def test_text_that_is_not_utf8_rejects_its_row_only(home, tmp_path):
    (tmp_path / "latin.csv").write_bytes(b"text,label\ncaf\xe9,a\nfine,b\nna\xefve,\n")
    summary = import_file(home, plan(tmp_path / "latin.csv", "classification"), "latin")
    assert summary.rows == 1 and summary.rejected == {"bad encoding": 1, "bad label": 1}
    kept = list(open_dataset(home, "latin").rejected())
    assert [(r["line"], r["reason"]) for r in kept] == [(2, "bad encoding"), (4, "bad label")]
    assert kept[1]["row"] == "na\ufffdve,"  # kept as text, the bad byte marked
    (tmp_path / "a.json").write_bytes(
        b'[{"text": "x\\ud800"}, {"text": "caf\xe9"}, {"text": "ok"}]'
    )
    assert check_file(plan(tmp_path / "a.json", "text")).rejected == {"bad encoding": 2}
    (tmp_path / "a.jsonl").write_bytes(
        b'{"text": "x\\ud800"}\n{"text": "caf\xe9"}\n{"text": "ok"}\n'
    )
    summary = import_file(home, plan(tmp_path / "a.jsonl", "text"), "lines")
    assert summary.rejected == {"bad encoding": 2}
    kept = list(open_dataset(home, "lines").rejected())
    assert kept[1] == {
        "line": 2,
        "reason": "bad encoding",
        "row": '{"text": "caf\ufffd"}',
        "detail": "not UTF-8 text (invalid continuation byte at byte 14)",
    }


def test_every_rejected_row_keeps_its_source_text_as_a_string(home, tmp_path):
    (tmp_path / "a.csv").write_text('text,label\n"two\nlines",\nx,y,z\nok,1\n')
    import_file(home, plan(tmp_path / "a.csv", "classification"), "csv")
    assert [r["row"] for r in open_dataset(home, "csv").rejected()] == ['"two\nlines",', "x,y,z"]
    (tmp_path / "a.json").write_text('[{"text": ""},\n 7,\n {"text": "ok"}]')
    import_file(home, plan(tmp_path / "a.json", "text"), "array")
    assert [r["row"] for r in open_dataset(home, "array").rejected()] == ['{"text": ""}', "7"]
    imported(home, "texts", "text")
    assert [r["row"] for r in open_dataset(home, "texts").rejected()] == ["  "]  # its line end cut


def test_unreadable_files_in_a_text_folder_are_rejected_one_by_one(home, tmp_path):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("kept")
    (folder / "sub" / "c.txt").write_text("kept too")
    (folder / "gone.txt").symlink_to(tmp_path / "deleted.txt")
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD.txt").write_text("not a note")
    summary = import_file(home, plan(folder, "text"), "notes")
    assert summary.written and summary.rows == 2 and summary.skipped_files == 1  # .git
    rejected = list(open_dataset(home, "notes").rejected())
    assert [(r["line"], r["reason"], r["row"]) for r in rejected] == [
        ("gone.txt", "unreadable", None),
        ("loop.txt", "unreadable", None),
    ]
    assert rejected[0]["detail"] == f"a link to {tmp_path / 'deleted.txt'}, which does not exist"
    assert str(folder / "loop.txt") in rejected[1]["detail"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_a_file_without_read_permission_is_rejected_as_unreadable(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("kept")
    (tmp_path / "notes" / "secret.txt").write_text("x")
    (tmp_path / "notes" / "secret.txt").chmod(0)
    summary = check_file(plan(tmp_path / "notes", "text"))
    assert summary.rows == 1 and summary.first_rejected[0]["line"] == "secret.txt"
    assert "Permission denied" in summary.first_rejected[0]["detail"]


def test_a_column_no_record_has_is_refused_before_reading(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": 1, "body": "x"}\n{"id": 2, "body": "y"}\n')
    (tmp_path / "a.json").write_text('[{"id": 1, "body": "x"}]')
    for name in ("a.jsonl", "a.json"):
        with pytest.raises(
            TllmError,
            match=rf"^--column text=nope: {name} has no column 'nope' "
            r"\(columns: id, body\)$",
        ):
            plan(tmp_path / name, "text", "jsonl", ["text=nope"])
    assert check_file(plan(tmp_path / "a.jsonl", "text", "jsonl", ["text=body"])).rows == 2


def test_alpaca_rows_holding_a_belle_dialogue_are_split_whatever_row_one_was(home, tmp_path):
    records = [
        {"instruction": "Name a fruit.", "input": "", "output": "Apple."},
        {
            "instruction": "Human: Hi\nAssistant: Hello!\nHuman: A fruit?\nAssistant:",
            "input": "",
            "output": "Pear.",
        },
        {"instruction": "Human: x\nHuman: y\nAssistant:", "output": "z"},
    ]
    (tmp_path / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = import_file(home, plan(tmp_path / "mixed.jsonl", "chat"), "mixed")
    assert summary.format == "alpaca" and summary.rejected == {"role order": 1}
    assert list(open_dataset(home, "mixed").rows()) == [
        {"messages": [user("Name a fruit."), assistant("Apple.")]},
        {"messages": [user("Hi"), assistant("Hello!"), user("A fruit?"), assistant("Pear.")]},
    ]

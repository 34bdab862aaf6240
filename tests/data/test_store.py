"""Datasets on disk: written whole or not at all, cards that count what happened, splits."""

import pytest

from together_llm.data.store import DatasetWriter, fingerprint_file, list_datasets, open_dataset
from together_llm.errors import TllmError


def write(home, name, rows, bad=(), **kw):
    with DatasetWriter(home, name, "text", source="notes.jsonl", format="jsonl", **kw) as out:
        for row in rows:
            out.add(row)
        for line, reason in bad:
            out.reject(line, reason, f"detail for {line}", b'{"oops": 1}\n')
        return out.commit(extra={"note": "kept"})


def test_commit_writes_rows_rejections_and_card(home):
    card = write(
        home,
        "notes",
        [{"text": "a"}, {"text": "b"}],
        bad=[(3, "empty content"), (9, "empty content")],
    )
    ds = open_dataset(home, "notes")
    assert [r["text"] for r in ds.rows()] == ["a", "b"]
    assert len(ds) == 2 and ds.kind == "text" and card["note"] == "kept"
    assert card["rejected_by_reason"] == {"empty content": 2}
    assert [r["line"] for r in ds.rejected()] == [3, 9]
    assert next(ds.rejected())["row"] == '{"oops": 1}'
    assert card["fingerprint"] == fingerprint_file(ds.path())
    assert [d.name for d in list_datasets(home)] == ["notes"]


def test_interrupted_write_leaves_nothing_behind(home):
    with pytest.raises(KeyboardInterrupt):
        with DatasetWriter(home, "half", "text", source="x", format="jsonl") as out:
            out.add({"text": "a"})
            raise KeyboardInterrupt
    assert list((home.path / "datasets").iterdir()) == []


def test_existing_name_is_kept_unless_overwrite_is_asked(home):
    write(home, "notes", [{"text": "old"}])
    with pytest.raises(TllmError, match="already exists"):
        DatasetWriter.check_free(home, "notes")
    DatasetWriter.check_free(home, "notes", overwrite=True)
    with pytest.raises(TllmError, match="already exists"):
        write(home, "notes", [{"text": "new"}])
    assert [r["text"] for r in open_dataset(home, "notes").rows()] == ["old"]
    write(home, "notes", [{"text": "new"}], overwrite=True)
    assert [r["text"] for r in open_dataset(home, "notes").rows()] == ["new"]


def test_unknown_and_unsafe_names_are_refused(home):
    write(home, "notes", [{"text": "a"}])
    with pytest.raises(TllmError, match="datasets: notes"):
        open_dataset(home, "missing")
    with pytest.raises(TllmError, match="invalid dataset name"):
        open_dataset(home, "../notes")
    with pytest.raises(TllmError, match="may not start with '.'"):
        write(home, ".hidden", [{"text": "a"}])
    with pytest.raises(TllmError, match="no train split"):
        list(open_dataset(home, "notes").rows("train"))


def test_numbered_rows_give_the_line_of_each_row(home):
    write(home, "notes", [{"text": "a"}, {"text": "b"}])
    assert list(open_dataset(home, "notes").numbered_rows()) == [
        (1, {"text": "a"}),
        (2, {"text": "b"}),
    ]

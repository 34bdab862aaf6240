"""The vectorized alpaca reader (jsonl_arrow) writes what the per-record path writes, byte
for byte: data.jsonl, rejected.jsonl and the card's fingerprint, on the fixtures and on
files full of awkward text."""

import json
import random
import sys

import orjson
import pytest

from together_llm.data.importing import jsonl, jsonl_arrow
from together_llm.data.importing.importer import check_file, import_file, plan
from together_llm.data.store import open_dataset

from .test_import import FIXTURES


def both_ways(home, monkeypatch, path, blocks=(None, 97)):
    """Import `path` by the per-record path, then by the vectorized one (with its usual
    block size and with tiny blocks, so blocks mix kinds of lines); every result must be
    the per-record one. Returns what the per-record path wrote."""

    def run(name, arrow, block=None):
        monkeypatch.setenv("TLLM_ARROW", "1" if arrow else "0")
        monkeypatch.setattr(jsonl, "ARROW_FROM", 0)  # however small the file
        if block is not None:
            monkeypatch.setattr(jsonl_arrow, "BLOCK", block)
        summary = import_file(home, plan(path, "chat", "alpaca"), name)
        monkeypatch.undo()
        got = {"summary": {k: v for k, v in summary.to_dict().items() if k != "dataset"}}
        if summary.written:
            ds = open_dataset(home, name)
            got["data"] = ds.path().read_bytes()
            got["rejected"] = (ds.folder / "rejected.jsonl").read_bytes()
            got["card"] = {k: v for k, v in ds.card.items() if k not in ("name", "created")}
        return got

    expected = run("slow", arrow=False)
    for i, block in enumerate(blocks):
        assert run(f"fast{i}", arrow=True, block=block) == expected
    return expected


@pytest.mark.parametrize(
    "name", ["alpaca_bom.jsonl", "bad_rows.jsonl", "all_bad.jsonl", "belle.jsonl"]
)
def test_fixtures_are_imported_byte_for_byte_alike(home, monkeypatch, name):
    both_ways(home, monkeypatch, FIXTURES / name)


AWKWARD = [
    'say "hi"',
    "back\\slash",
    "tab\there",
    "line\nbreak",
    "cr\rlf\r\n",
    "\b\f",
    "".join(map(chr, range(32))),
    "emoji 😀🎉",
    "中文 数据 模型",
    "naïve café",
    "\u2028\u2029\x7f",
    "x" * 70_000,
    "",
    " ",
    "\u3000\xa0\t",
    "\x1c",
    None,
    5,
    1.5,
    True,
    ["a"],
    {"a": 1},
    "Human: hi\nAssistant: hello\nHuman: and?",
    "  human: x",
    "human rights",
    "ends with backslash\\",
    "\\u00e9 written out",
    "é",
]


def awkward_lines(rng: random.Random, rows: int, odd_keys: bool = True) -> list[bytes]:
    """Records mixing every awkward value into instruction, input and output, some with
    extra keys (with `odd_keys`, also of types and names that send a block to the
    per-record path), each line written in one of several ways."""
    lines = []
    for i in range(rows):
        rec = {"instruction": f"Do task {i}.", "input": "", "output": f"Done {i}."}
        for key in rng.sample(("instruction", "input", "output"), rng.randint(0, 2)):
            rec[key] = rng.choice(
                AWKWARD if odd_keys else [t for t in AWKWARD if type(t) in (str, type(None))]
            )
        if rng.random() < 0.1:
            del rec[rng.choice(("instruction", "input", "output"))]
        if rng.random() < 0.1:
            odd = [i, True, 2.5, [1], {"k": "v"}, 2**70] if odd_keys else []
            rec["id"] = rng.choice([f"row-{i}", None] + odd)
        if odd_keys and rng.random() < 0.03:
            rec[rng.choice(("system", "history"))] = rng.choice(["Be brief.", [["a", "b"]], None])
        compact = rng.random() < 0.5
        lines.append(
            json.dumps(
                rec, ensure_ascii=rng.random() < 0.5, separators=(",", ":") if compact else None
            ).encode()
        )
    return lines


def test_awkward_text_is_imported_byte_for_byte_alike(home, monkeypatch, tmp_path):
    rng = random.Random(4)
    path = tmp_path / "awkward.jsonl"
    path.write_bytes(b"\n".join(awkward_lines(rng, 400)) + b"\n")
    got = both_ways(home, monkeypatch, path, blocks=(None, 97, 4096))
    assert got["summary"]["rows"] > 200 and got["summary"]["rejected"] > 20  # both kinds are there


def test_blocks_keep_their_order_around_rows_sent_to_the_per_record_path(
    home, monkeypatch, tmp_path
):
    """Blocks of string-only records: the vectorized path takes each block, and the rows it
    leaves (blank, null, BELLE-like, rare control characters) are imported one by one in
    their place, with their line numbers."""
    path = tmp_path / "strings.jsonl"
    path.write_bytes(b"\n".join(awkward_lines(random.Random(7), 500, odd_keys=False)) + b"\n")
    got = both_ways(home, monkeypatch, path, blocks=(None, 5000))
    assert got["summary"]["rows"] > 300 and got["summary"]["rejected"] > 30
    sent = []
    real = jsonl_arrow.import_batch

    def per_record(batch, *args):
        sent.append(len(batch))
        return real(batch, *args)

    monkeypatch.setattr(jsonl_arrow, "import_batch", per_record)
    monkeypatch.setattr(jsonl, "ARROW_FROM", 0)
    import_file(home, plan(path, "chat", "alpaca"), "vectorized")
    assert open_dataset(home, "vectorized").path().read_bytes() == got["data"]
    assert sent and set(sent) == {1}  # single rows, never a whole block


@pytest.mark.parametrize("end", [b"\n", b"\r\n"])
def test_plain_blocks_with_escapes_only(home, monkeypatch, tmp_path, end):
    """Blocks the vectorized path takes whole (no rejection, no odd key): only escaping."""
    rng = random.Random(5)
    texts = [
        'a "quoted" word',
        "back\\slash",
        "two\nlines",
        "tab\tand\rcr",
        "\b\f",
        "é 😀 中",
        "\u2028 x",
        "plain",
    ]
    lines = [
        orjson.dumps(
            {
                "instruction": rng.choice(texts) + str(i),
                "input": rng.choice(texts + ["", " "]),
                "output": rng.choice(texts),
            }
        )
        for i in range(300)
    ]
    path = tmp_path / "plain.jsonl"
    path.write_bytes(end.join(lines) + end)
    got = both_ways(home, monkeypatch, path, blocks=(None, 1000))
    assert got["summary"]["rows"] == 300

    def per_record(*args):
        raise AssertionError("a plain block went to the per-record path")

    monkeypatch.setattr(jsonl_arrow, "import_batch", per_record)
    monkeypatch.setattr(jsonl, "ARROW_FROM", 0)
    import_file(home, plan(path, "chat", "alpaca"), "vectorized")
    assert open_dataset(home, "vectorized").path().read_bytes() == got["data"]


@pytest.mark.parametrize(
    "layout",
    [
        "blank lines",
        "bom",
        "bad json",
        "crlf",
        "no last newline",
        "lone surrogate",
        "not utf-8",
        "leading space",
        "two per line",
        "nan",
        "duplicate key",
        "date strings",
        "raw control bytes",
    ],
)
def test_odd_lines_are_imported_alike(home, monkeypatch, tmp_path, layout):
    lines = [
        orjson.dumps({"instruction": f"Task {i}", "input": "", "output": f"Answer {i}"})
        for i in range(40)
    ]
    odd = {
        "blank lines": [b"", b"   ", b"\t"],
        "bom": None,
        "bad json": [b'{"instruction": "broken", "output": ', b"[1, 2]", b'"text"', b"null"],
        "crlf": None,
        "no last newline": None,
        "lone surrogate": [
            b'{"instruction": "a\\ud800", "output": "b"}',
            b'{"instruction": "a\\udc00", "output": "b"}',
        ],
        "not utf-8": [
            b'{"instruction": "a\xff", "output": "b"}',
            b'{"instruction": "\xed\xa0\x80", "output": "b"}',
        ],
        "leading space": [
            b'  {"instruction": "a", "output": "b"}',
            b'{"instruction": "a", "output": "b"}  ',
        ],
        "two per line": [b'{"instruction": "a", "output": "b"}{"instruction": "c", "output": "d"}'],
        "nan": [
            b'{"instruction": "a", "output": "b", "score": NaN}',
            b'{"instruction": "a", "output": "b", "x": Infinity}',
        ],
        "duplicate key": [b'{"instruction": "a", "instruction": "b", "output": "c"}'],
        "raw control bytes": [
            b'{"instruction":\t"a", "output": "b"}',
            b'{"instruction": "a\x01", "output": "b"}',
            b'{"instruction": "a\tb", "output": "b"}',
            b'{"instruction": "a", "output": "b"}\r{"instruction": "c", "output": "d"}',
        ],
        "date strings": [b'{"instruction": "2020-01-01", "output": "2020-01-02T10:00:00"}'],
    }[layout]
    for i, line in enumerate(odd or []):
        lines.insert(5 + 7 * i, line)
    data = b"\n".join(lines) + b"\n"
    if layout == "bom":
        data = b"\xef\xbb\xbf" + data
    if layout == "crlf":
        data = data.replace(b"\n", b"\r\n")
    if layout == "no last newline":
        data = data[:-1]
    path = tmp_path / "odd.jsonl"
    path.write_bytes(data)
    both_ways(home, monkeypatch, path, blocks=(None, 200))


def test_check_counts_alike(monkeypatch, tmp_path):
    """`tllm data validate`-style checks (no writer, so no add_block) count the same."""
    path = tmp_path / "awkward.jsonl"
    path.write_bytes(b"\n".join(awkward_lines(random.Random(6), 200)) + b"\n")
    found = []
    monkeypatch.setattr(jsonl, "ARROW_FROM", 0)
    for arrow in ("0", "1"):
        monkeypatch.setenv("TLLM_ARROW", arrow)
        kept = []
        summary = check_file(plan(path, "chat", "alpaca"), keep=lambda *a: kept.append(a))
        found.append((summary.rows, dict(summary.rejected), summary.read, kept))
    assert found[0] == found[1]


def test_whitespace_is_what_python_calls_space():
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert jsonl_arrow.PY_SPACE == spaces


def test_a_byte_range_is_imported_alike(tmp_path):
    """A range of the file (as a helper process would import) gives the same lines, rows
    and rejections, numbered from the range's start."""
    path = tmp_path / "awkward.jsonl"
    path.write_bytes(b"\n".join(awkward_lines(random.Random(8), 300)) + b"\n")
    start, end = jsonl.line_ranges(path, 3)[1]
    found = []
    for fast in (False, True):
        rows, rejected = [], []
        if fast:
            counts = jsonl_arrow.import_alpaca(
                path, rows.append, lambda *a: rejected.append(a), None, start, end
            )
        else:
            counts = jsonl.import_lines(
                path,
                jsonl_arrow.alpaca_line,
                rows.append,
                lambda *a: rejected.append(a),
                None,
                start,
                end,
                flush=lambda: None,
            )
        found.append((counts, b"".join(rows), rejected))
    assert found[0] == found[1] and found[0][0][0] > 50


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", b"\n"])
def test_files_without_rows_are_counted_alike(home, monkeypatch, tmp_path, data):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(data)
    assert both_ways(home, monkeypatch, path)["summary"]["rows"] == 0

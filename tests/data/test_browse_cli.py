"""`tllm data import | validate | list | show` as a user runs them."""

import json
from pathlib import Path

from tests.conftest import run_tllm

FIXTURES = Path(__file__).parent / "fixtures"


def test_import_list_show_journey(home):
    result = run_tllm(
        "data", "import", FIXTURES / "bad_rows.jsonl", "--kind", "chat", "--name", "mine", home=home
    )
    assert result.returncode == 0, result.stderr
    assert (
        "detected format: alpaca (from the keys of line 1: instruction, input, output)"
        in result.stderr
    )
    out = result.stdout
    assert (
        "imported 4 chat rows into dataset 'mine' (format alpaca, read 11 lines), 6 rejected" in out
    )
    assert "  wrong type     2\n  missing field  1\n" in out
    assert str(home.path / "datasets" / "mine" / "rejected.jsonl") in out

    listed = run_tllm("data", "list", home=home)
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "KIND", "ROWS", "REJECTED", "SOURCE"]
    assert row.split() == ["mine", "chat", "4", "6", str((FIXTURES / "bad_rows.jsonl").resolve())]

    shown = run_tllm("data", "show", "mine", "--limit", "2", home=home)
    assert shown.returncode == 0
    assert "format:              alpaca" in shown.stdout
    assert shown.stdout.endswith(
        "first 2 of 4 rows:\n[1]\n  user: Good one\n  assistant: Fine.\n"
        "[2]\n  user: Good two\n\n        with input\n  assistant: Fine too.\n"
    )

    bad = run_tllm("data", "show", "mine", "--rejected", "--limit", "1", home=home)
    assert "first 1 of 6 rejected rows:" in bad.stdout
    assert (
        '  line 3: missing field: \'output\' is missing\n  row: {"instruction": "No output"'
        in bad.stdout
    )

    as_json = json.loads(
        run_tllm("data", "show", "mine", "--limit", "1", "--json", home=home).stdout
    )
    assert as_json["card"]["rows"] == 4
    assert as_json["rows"] == [
        {
            "messages": [
                {"role": "user", "content": "Good one"},
                {"role": "assistant", "content": "Fine."},
            ]
        }
    ]
    cards = json.loads(run_tllm("data", "list", "--json", home=home).stdout)
    assert [c["name"] for c in cards] == ["mine"]


def test_exit_codes_follow_the_outcome_rule(home):
    strict = run_tllm(
        "data",
        "import",
        FIXTURES / "bad_rows.jsonl",
        "--kind",
        "chat",
        "--name",
        "s",
        "--strict",
        home=home,
    )
    assert strict.returncode == 1
    assert "error: --strict: 6 rejected row(s), so no dataset was written" in strict.stderr
    assert "line 3: missing field: 'output' is missing" in strict.stdout
    none = run_tllm(
        "data", "import", FIXTURES / "all_bad.jsonl", "--kind", "chat", "--name", "n", home=home
    )
    assert none.returncode == 1 and "error: no valid row in" in none.stderr
    listed = run_tllm("data", "list", home=home)
    assert listed.stdout.startswith("no datasets yet")
    clean = run_tllm(
        "data",
        "import",
        FIXTURES / "sharegpt.jsonl",
        "--kind",
        "chat",
        "--name",
        "ok",
        "--strict",
        "--json",
        home=home,
    )
    assert clean.returncode == 0
    summary = json.loads(clean.stdout)
    assert summary["written"] and summary["rows"] == 3 and summary["format"] == "sharegpt"


def test_validate_prints_counts_and_first_bad_rows_and_writes_nothing(home):
    result = run_tllm(
        "data",
        "validate",
        FIXTURES / "reviews.csv",
        "--kind",
        "classification",
        "--column",
        "text=review",
        "--column",
        "label=stars",
        home=home,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{FIXTURES / 'reviews.csv'}: 4 valid classification rows, 2 rejected (read 6 records)",
        "  empty content  1",
        "  bad csv        1",
        "first rejected rows:",
        "  line 6: empty content: 'text' is empty",
        "  line 10: bad csv: 4 fields where the header has 3",
    ]
    strict = run_tllm(
        "data",
        "validate",
        FIXTURES / "kto.jsonl",
        "--kind",
        "feedback",
        "--strict",
        "--json",
        home=home,
    )
    assert strict.returncode == 1 and "error: --strict: 2 rejected row(s)" in strict.stderr
    assert json.loads(strict.stdout)["rejected_by_reason"] == {"bad label": 2}
    assert not (home.path / "datasets").exists() or not any((home.path / "datasets").iterdir())


def test_user_errors_are_one_line(home):
    wrong_kind = run_tllm(
        "data",
        "import",
        FIXTURES / "alpaca_bom.jsonl",
        "--kind",
        "classification",
        "--name",
        "x",
        home=home,
    )
    assert wrong_kind.returncode == 1
    assert wrong_kind.stderr.strip().splitlines()[-1] == (
        "error: format alpaca (detected from the keys of line 1: instruction, input, output) makes "
        "chat rows, not classification: kind classification reads jsonl, csv"
    )
    missing = run_tllm("data", "show", "ghost", home=home)
    assert missing.returncode == 1 and "no dataset named 'ghost'" in missing.stderr
    assert "Traceback" not in wrong_kind.stderr + missing.stderr
    helped = run_tllm("data", "import", "--help", home=home)
    assert "Examples:" in helped.stdout and "--strict" in helped.stdout


def test_a_json_array_that_stops_early_says_so_and_exits_2(home, tmp_path):
    rows = [json.dumps({"text": f"row {i}"}) for i in range(3)]
    source = tmp_path / "cut.json"
    source.write_text("[\n" + ",\n".join(rows) + ',\n{"text": "x", "n": [1}\n,' + rows[0] + "\n]\n")
    result = run_tllm(
        "data", "import", source, "--kind", "text", "--format", "jsonl", "--name", "cut", home=home
    )
    assert result.returncode == 2
    assert result.stdout.splitlines()[0] == (
        "imported 3 text rows into dataset 'cut' (format jsonl, read 3 records), 0 rejected; "
        "reading stopped at line 5: Expecting ',' delimiter (line 5); the element's end cannot be "
        "found: the rest of the file was not read"
    )
    assert "error: reading stopped at line 5" in result.stderr and "--overwrite" in result.stderr
    shown = run_tllm("data", "show", "cut", home=home)
    assert "stopped:             line 5: Expecting ',' delimiter" in shown.stdout
    checked = run_tllm("data", "validate", source, "--kind", "text", "--format", "jsonl", home=home)
    assert checked.returncode == 2 and "reading stopped at line 5" in checked.stdout
    helped = run_tllm("data", "import", "--help", home=home)
    assert "2 when a broken JSON array stopped reading early" in " ".join(helped.stdout.split())


def test_validate_writes_every_rejected_row_and_failed_imports_point_to_it(home, tmp_path):
    source = tmp_path / "many.jsonl"
    lines = [json.dumps({"instruction": f"Q{i}"}) for i in range(8)] + [
        "{oops",
        b"\xff".decode("latin-1"),
    ]
    source.write_text("\n".join(lines) + "\n", encoding="latin-1")
    failed = run_tllm(
        "data", "import", source, "--kind", "chat", "--format", "alpaca", "--name", "m", home=home
    )
    assert (
        failed.returncode == 1 and failed.stdout.count("\n  line ") == 5
    )  # only the first 5 shown
    hint = f"every rejected row: tllm data validate {source} --kind chat --format alpaca --rejected rejected.jsonl"
    assert hint in failed.stderr
    out = tmp_path / "rejected.jsonl"
    checked = run_tllm(
        "data",
        "validate",
        source,
        "--kind",
        "chat",
        "--format",
        "alpaca",
        "--rejected",
        out,
        home=home,
    )
    assert (
        checked.returncode == 1
        and f"every rejected row, with its line, reason and text: {out}" in checked.stdout
    )
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(k["line"], k["reason"]) for k in kept] == [
        (i, "missing field") for i in range(1, 9)
    ] + [(9, "bad json"), (10, "bad encoding")]
    assert kept[0] == {
        "line": 1,
        "reason": "missing field",
        "detail": "'output' is missing",
        "row": '{"instruction": "Q0"}',
    }
    assert kept[-1]["row"] == "\ufffd"
    strict = run_tllm(
        "data",
        "import",
        FIXTURES / "bad_rows.jsonl",
        "--kind",
        "chat",
        "--name",
        "s",
        "--strict",
        home=home,
    )
    assert "every rejected row: tllm data validate" in strict.stderr
    assert not (home.path / "datasets").exists() or not any((home.path / "datasets").iterdir())

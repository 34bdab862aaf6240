"""The `tllm eval` command: its help, its table and JSON output, and refusals as one line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from together_llm.cli.eval import eval_command
from together_llm.errors import RefusedError


def invoke(home, *args):
    return CliRunner().invoke(eval_command, [*args, "--home", str(home.path)])


def test_help_lists_the_metrics_and_examples():
    shown = CliRunner().invoke(eval_command, ["--help"])
    assert shown.exit_code == 0
    for word in (
        "ppl, rouge, bleu, chrf, em, f1, mc, judge",
        "--report",
        "--limit",
        "Examples:",
        "tllm eval --adapter facts --data facts-qa --report",
    ):
        assert word in shown.output


def test_table_and_json_set_the_adapter_beside_its_base(eval_home):
    shown = invoke(eval_home, "--data", "notes", "--adapter", "noisy", "--report")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "tiny", "noisy", "change"]
    row = next(line for line in lines if line.strip().startswith("perplexity")).split()
    base, subject = float(row[1].replace(",", "")), float(row[2].replace(",", ""))
    assert base != subject and row[-1] in ("(better)", "(worse)")
    assert any(line.startswith("report: ") and line.endswith("report.html") for line in lines)

    as_json = invoke(eval_home, "--data", "notes", "--adapter", "noisy", "--json", "--limit", "2")
    assert as_json.exit_code == 0, as_json.output
    result = json.loads(as_json.output)
    assert result["rows"] == 2 and result["base"] is None  # no --report: the adapter alone
    assert result["results"]["subject"]["perplexity"] > 1


def test_a_metric_the_kind_does_not_support_is_refused(eval_home):
    refused = invoke(eval_home, "--data", "notes", "--metrics", "rouge")
    assert isinstance(refused.exception, RefusedError)
    assert "rouge applies to chat and seq2seq" in str(refused.exception)
    assert not any((eval_home.path / "runs").iterdir())

"""`tllm eval`: measure an adapter or a model on a dataset, beside its base model."""

from __future__ import annotations

import json

import click

from ..evaluate.report import GROUPS, METRIC_INFO, change_text, format_number, rows_of
from ..evaluate.run import run_eval
from ..evaluate.settings import EvalSettings
from ..settings_kit import click_options, from_options
from .common import home_options, open_home
from .data.progress import tasks_progress


@click.command("eval")
@click_options(EvalSettings)
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json instead of a table.")
@home_options
def eval_command(as_json, home_dir, **flags):
    """Measure the assistant on a dataset: perplexity (text, chat), ROUGE/BLEU/chrF and exact
    match/token F1 of generated answers (chat, seq2seq), multiple-choice acc, acc_norm and
    calibration (choice), and an LLM judge's 1-10 grades and pairwise verdicts against the
    base model, asked in both orders. Results go to runs/<id>/ (metrics.json, answers.jsonl;
    with --report also report.md, report.html and plots/).

    \b
    Examples:
      tllm eval --adapter facts --data facts-qa --report
      tllm eval --adapter facts --data notes --metrics ppl
      tllm eval --data quiz --metrics mc --limit 50
      tllm eval --adapter facts --data facts-qa --metrics rouge,em,judge --judge gpt
    """

    home = open_home(home_dir)
    settings = from_options(EvalSettings, flags)
    say = (lambda message: None) if as_json else (lambda message: click.echo(message, err=True))
    with tasks_progress("evaluating") as bar:
        result = run_eval(home, settings, progress=bar.update, report=say)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    _print_table(result)
    click.echo(f"run folder: {result['run_dir']}")
    if result.get("report"):
        click.echo(f"report: {result['report']['markdown']} and {result['report']['html']}")


def _print_table(result: dict) -> None:
    compared = result.get("base") is not None
    base_label = result["base"]["label"] if compared else ""
    subject_label = result["subject"]["label"]
    header = (
        f"{'metric':<40}"
        + (f" {base_label[:14]:>14}" if compared else "")
        + f" {subject_label[:14]:>14}"
    )
    click.echo(f"{result['data']} ({result['kind']}, {result['rows']} rows)")
    click.echo(header + ("  change" if compared else ""))
    for group, rows in rows_of(result).items():
        click.echo(f"{GROUPS[group]}:")
        for key, label, base, subject in rows:
            decimals = METRIC_INFO[key][3]
            line = f"  {label:<38}"
            if compared:
                line += f" {format_number(base, decimals):>14}"
            line += f" {format_number(subject, decimals):>14}"
            if compared:
                line += f"  {change_text(key, base, subject)}"
            click.echo(line)
    for role, scores in result["results"].items():
        if scores and scores.get("prompts_too_long"):
            click.echo(
                f"note: {scores['prompts_too_long']} prompts were longer than the context of "
                f"{result[role]['label']} and got empty answers",
                err=True,
            )
    judge = result.get("judge") or {}
    if judge and judge["stats"]["unparseable"]:
        click.echo(
            f"note: {judge['stats']['unparseable']} of {judge['stats']['calls']} judge replies "
            f"were unreadable ({judge['stats']['too_long']} questions too long for the "
            "judge's context); they count as no grade and as ties",
            err=True,
        )
    pairwise = judge.get("pairwise")
    if pairwise:
        click.echo(
            f"judge, {subject_label} against {base_label}: {pairwise['wins']} won, "
            f"{pairwise['ties']} tied, {pairwise['losses']} lost of {pairwise['pairs']}"
        )

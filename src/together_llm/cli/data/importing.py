"""`tllm data import` and `tllm data validate`."""

from __future__ import annotations

import json
import sys

import click

from ...data.formats import FORMATS
from ...data.kinds import KINDS
from ...errors import TllmError
from ..common import home_options, open_home

BIG = 16 << 20  # files from this size get a progress bar (when stderr is a terminal)


def source_options(func):
    """The flags import and validate share: what the file holds and how to read it."""
    options = [
        click.option("--column", "columns", multiple=True, metavar="FIELD=COLUMN",
                     help="Take the row's FIELD from this column or key (repeatable), "
                          "e.g. --column text=review --column label=stars."),
        click.option("--format", "fmt", type=click.Choice(list(FORMATS)),
                     help="The file's format (default: told from its extension and first record)."),
        click.option("--kind", required=True, type=click.Choice(KINDS), help="The dataset kind the rows are for."),
    ]
    for option in options:
        func = option(func)
    return func


@click.command(name="import")
@click.argument("source", metavar="FILE_OR_DIR")
@source_options
@click.option("--name", required=True, help="Name of the new dataset.")
@click.option("--strict", is_flag=True,
              help="All or nothing: if any row is rejected, write no dataset and exit 1.")
@click.option("--overwrite", is_flag=True, help="Replace the dataset NAME if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@home_options
def import_(source, kind, fmt, columns, name, strict, overwrite, as_json, home_dir):
    """Import FILE_OR_DIR as dataset NAME of kind --kind.

    Formats (--format, told from the extension and first record when left out):
    alpaca, sharegpt, belle, openai (chat); preference; kto (feedback); jsonl (rows already
    in the kind's schema, any kind); csv (text, classification, seq2seq, preference,
    feedback: a header row, --column maps columns); text (a .txt/.md file or a folder of
    them, one row a file). JSON files may be JSON Lines or a JSON array.

    Every row is checked. Rows that fail go to the dataset's rejected.jsonl with their line
    and reason, and the counts per reason are printed. The dataset is written, and the exit
    status is 0, when at least one row is valid; with --strict, only when every row is
    (otherwise nothing is written).

    \b
    Examples:
      tllm data import alpaca_data.json --kind chat --name alpaca
      tllm data import sharegpt.jsonl --kind chat --format sharegpt --name sg
      tllm data import reviews.csv --kind classification --column text=review --column label=stars --name reviews
      tllm data import pairs.jsonl --kind preference --name dpo --strict
      tllm data import notes/ --kind text --name notes
    """
    from ...data.importer import import_file, plan

    home = open_home(home_dir)
    how = plan(source, kind, fmt, columns)
    _say_detected(how)
    with _progress(how.path) as progress:
        summary = import_file(home, how, name, strict=strict, overwrite=overwrite, progress=progress)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_summary(summary, name)
    _notes(summary)
    if not summary.rows:
        raise TllmError(f"no valid row in {source}: nothing imported")
    if not summary.written:
        raise TllmError(f"--strict: {summary.total_rejected} rejected row(s), so no dataset was "
                        f"written (import without --strict to keep the {summary.rows} valid rows)")


@click.command()
@click.argument("source", metavar="FILE_OR_DIR")
@source_options
@click.option("--strict", is_flag=True, help="Exit 1 if any row is rejected.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts and first bad rows as JSON.")
@home_options
def validate(source, kind, fmt, columns, strict, as_json, home_dir):
    """Check FILE_OR_DIR row by row as `tllm data import` would, writing nothing.

    Prints the valid rows, the rejected ones per reason, and the first bad rows with their
    line numbers. Exits 1 when no row is valid (or, with --strict, when any is rejected).

    \b
    Examples:
      tllm data validate alpaca_data.json --kind chat
      tllm data validate reviews.csv --kind classification --column text=review --column label=stars
      tllm data validate pairs.jsonl --kind preference --strict --json
    """
    from ...data.importer import check_file, plan

    how = plan(source, kind, fmt, columns)
    _say_detected(how)
    with _progress(how.path) as progress:
        summary = check_file(how, progress=progress)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(f"{source}: {summary.rows} valid {kind} rows, {summary.total_rejected} rejected "
                   f"({_read(summary)})")
        _print_reasons(summary)
        _print_first(summary)
    _notes(summary)
    if not summary.rows:
        raise TllmError(f"no valid row in {source}")
    if strict and summary.total_rejected:
        raise TllmError(f"--strict: {summary.total_rejected} rejected row(s)")


def _say_detected(how) -> None:
    if how.detected:
        click.echo(f"detected format: {how.format} (from {how.detected})", err=True)


def _read(summary) -> str:
    return f"read {summary.read} {summary.unit}"


def _print_summary(summary, name: str) -> None:
    if summary.written:
        click.echo(f"imported {summary.rows} {summary.kind} rows into dataset {name!r} "
                   f"(format {summary.format}, {_read(summary)}), {summary.total_rejected} rejected")
    else:
        click.echo(f"{summary.rows} valid {summary.kind} rows, {summary.total_rejected} rejected "
                   f"({_read(summary)}): nothing written")
    _print_reasons(summary)
    if summary.written and summary.total_rejected:
        click.echo(f"rejected rows, each with its line and reason: {summary.dataset / 'rejected.jsonl'}")
    elif not summary.written:
        _print_first(summary)


def _print_reasons(summary) -> None:
    width = max((len(r) for r in summary.rejected), default=0)
    for reason, count in summary.rejected.most_common():
        click.echo(f"  {reason:<{width}}  {count}")


def _print_first(summary) -> None:
    if summary.first_rejected:
        click.echo("first rejected rows:")
    for bad in summary.first_rejected:
        click.echo(f"  {where(bad['line'])}: {bad['reason']}: {bad['detail']}")


def where(line) -> str:
    return f"line {line}" if isinstance(line, int) else str(line)


def _notes(summary) -> None:
    if summary.stopped:
        click.echo(f"warning: stopped reading at {summary.stopped}", err=True)
    if summary.skipped_files:
        click.echo(f"note: left out {summary.skipped_files} file(s) that are not .txt or .md", err=True)


class _progress:
    """A progress bar by bytes read, on stderr, for big files when stderr is a terminal;
    the body gets a function taking the bytes done (or None when there is no bar)."""

    def __init__(self, path):
        self.bar = None
        size = path.stat().st_size if path.is_file() else 0
        self.total = size if size >= BIG and sys.stderr.isatty() else None

    def __enter__(self):
        if self.total is None:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        self.bar = Progress("reading", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.start()
        task = self.bar.add_task("reading", total=self.total)
        return lambda done: self.bar.update(task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()

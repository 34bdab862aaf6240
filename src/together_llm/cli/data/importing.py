"""`tllm data import` and `tllm data validate`."""

from __future__ import annotations

import json
import shlex

import click

from ...data.importing.formats import FORMATS
from ...data.importing.importer import check_file, import_file, plan
from ...data.kinds import KINDS
from ...data.store import rejected_line
from ...errors import TllmError
from ..common import home_options, open_home
from .progress import progress as progress_bar

BIG = 16 << 20  # files from this size get a progress bar


class StoppedEarly(TllmError):
    """Reading stopped before the end of the file: what was read is kept, but the command
    did not do all it was asked, so it exits 2 (distinct from 1, nothing done)."""

    exit_code = 2


def source_options(func):
    """The flags import and validate share: what the file holds and how to read it."""
    options = [
        click.option(
            "--column",
            "columns",
            multiple=True,
            metavar="FIELD=COLUMN",
            help="Take the row's FIELD from this column or key (repeatable), "
            "e.g. --column text=review --column label=stars.",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(list(FORMATS)),
            help="The file's format (default: told from its extension and first record).",
        ),
        click.option(
            "--kind",
            required=True,
            type=click.Choice(KINDS),
            help="The dataset kind the rows are for.",
        ),
    ]
    for option in options:
        func = option(func)
    return func


@click.command(name="import")
@click.argument("source", metavar="FILE_OR_DIR")
@source_options
@click.option("--name", required=True, help="Name of the new dataset.")
@click.option(
    "--strict",
    is_flag=True,
    help="All or nothing: if any row is rejected, write no dataset and exit 1.",
)
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

    Every row is checked. Rows that fail go to the dataset's rejected.jsonl with their line,
    reason and source text, and the counts per reason are printed. The dataset is written
    when at least one row is valid; with --strict, only when every row is and the whole file
    was read. To see every rejected row without importing, run `tllm data validate FILE
    --kind K --rejected bad.jsonl`.

    Exit status: 0 when the dataset was written from the whole file; 1 when nothing was
    written; 2 when a broken JSON array stopped reading early: the rows before the break are
    written, the summary names the line, and the rest of the file was not read.

    \b
    Examples:
      tllm data import alpaca_data.json --kind chat --name alpaca
      tllm data import sharegpt.jsonl --kind chat --format sharegpt --name sg
      tllm data import reviews.csv --kind classification --column text=review --column label=stars --name reviews
      tllm data import pairs.jsonl --kind preference --name dpo --strict
      tllm data import notes/ --kind text --name notes
    """

    home = open_home(home_dir)
    how = plan(source, kind, fmt, columns)
    _say_detected(how)
    with _progress(how.path) as progress:
        summary = import_file(
            home, how, name, strict=strict, overwrite=overwrite, progress=progress
        )
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_summary(summary, name)
    _notes(summary, as_json)
    every = _every_rejection(source, how, summary)
    if not summary.rows:
        raise TllmError(f"no valid row in {source}: nothing imported{_stop_clause(summary)}{every}")
    if not summary.written:
        why = f"{summary.total_rejected} rejected row(s)" if summary.total_rejected else ""
        if summary.stopped:
            why += (" and " if why else "") + f"reading stopped at {summary.stopped.split(':')[0]}"
        raise TllmError(
            f"--strict: {why}, so no dataset was written (import without --strict "
            f"to keep the {summary.rows} valid rows){every}"
        )
    if summary.stopped:
        raise StoppedEarly(
            f"reading stopped at {summary.stopped}; dataset {name!r} holds the "
            f"{summary.rows} rows before it: fix the file and import again with --overwrite"
        )


@click.command()
@click.argument("source", metavar="FILE_OR_DIR")
@source_options
@click.option("--strict", is_flag=True, help="Exit 1 if any row is rejected.")
@click.option(
    "--rejected",
    "rejected_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write every rejected row to this JSON Lines file: line, reason, detail and "
    "row (the record's source text), as an import's rejected.jsonl.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the counts and first bad rows as JSON."
)
@home_options
def validate(source, kind, fmt, columns, strict, rejected_path, as_json, home_dir):
    """Check FILE_OR_DIR row by row as `tllm data import` would, writing no dataset.

    Prints the valid rows, the rejected ones per reason, and the first bad rows with their
    line numbers; --rejected writes all of them to a file. Exit status: 0 when the file was
    read to the end and a row is valid; 1 when no row is valid (or, with --strict, when any
    is rejected); 2 when a broken JSON array stopped reading early.

    \b
    Examples:
      tllm data validate alpaca_data.json --kind chat
      tllm data validate alpaca_data.json --kind chat --rejected bad.jsonl
      tllm data validate reviews.csv --kind classification --column text=review --column label=stars
      tllm data validate pairs.jsonl --kind preference --strict --json
    """

    how = plan(source, kind, fmt, columns)
    _say_detected(how)
    try:
        out = open(rejected_path, "wb") if rejected_path else None
    except OSError as error:
        raise TllmError(f"--rejected {rejected_path}: cannot write it ({error.strerror})") from None
    try:
        keep = (lambda *bad: out.write(rejected_line(*bad))) if out else None
        with _progress(how.path) as progress:
            summary = check_file(how, progress=progress, keep=keep)
    finally:
        if out:
            out.close()
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(
            f"{source}: {summary.rows} valid {kind} rows, {summary.total_rejected} rejected "
            f"({_read(summary)}){_stop_clause(summary)}"
        )
        _print_reasons(summary)
        _print_first(summary)
        if rejected_path:
            click.echo(f"every rejected row, with its line, reason and text: {rejected_path}")
    _notes(summary, as_json)
    if not summary.rows:
        raise TllmError(f"no valid row in {source}{_stop_clause(summary)}")
    if strict and summary.total_rejected:
        raise TllmError(f"--strict: {summary.total_rejected} rejected row(s)")
    if summary.stopped:
        raise StoppedEarly(f"reading stopped at {summary.stopped}")


def _say_detected(how) -> None:
    if how.detected:
        click.echo(f"detected format: {how.format} (from {how.detected})", err=True)


def _read(summary) -> str:
    return f"read {summary.read} {summary.unit}"


def _stop_clause(summary) -> str:
    """What the summary line says when reading stopped early, naming the line."""
    if not summary.stopped:
        return ""
    return f"; reading stopped at {summary.stopped}: the rest of the file was not read"


def _every_rejection(source, how, summary) -> str:
    """The command that lists every rejected row, for failures that show only the first few."""
    if not summary.total_rejected:
        return ""
    words = [source, "--kind", how.kind, "--format", how.format]
    words += [w for dst, src in how.columns.items() for w in ("--column", f"{dst}={src}")]
    command = " ".join(shlex.quote(str(w)) for w in words)
    return f"; every rejected row: tllm data validate {command} --rejected rejected.jsonl"


def _print_summary(summary, name: str) -> None:
    if summary.written:
        click.echo(
            f"imported {summary.rows} {summary.kind} rows into dataset {name!r} "
            f"(format {summary.format}, {_read(summary)}), {summary.total_rejected} rejected"
            f"{_stop_clause(summary)}"
        )
    else:
        click.echo(
            f"{summary.rows} valid {summary.kind} rows, {summary.total_rejected} rejected "
            f"({_read(summary)}){_stop_clause(summary)}: nothing written"
        )
    _print_reasons(summary)
    if summary.written and summary.total_rejected:
        click.echo(
            f"rejected rows, each with its line and reason: {summary.dataset / 'rejected.jsonl'}"
        )
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


def _notes(summary, as_json: bool) -> None:
    if summary.stopped and as_json:  # otherwise the summary line says it
        click.echo(
            f"warning: reading stopped at {summary.stopped}: the rest of the file was not read",
            err=True,
        )
    if summary.skipped_files:
        click.echo(
            f"note: left out {summary.skipped_files} file(s) or folder(s) that are hidden or "
            "not .txt/.md",
            err=True,
        )


def _progress(path):
    """A bar by bytes read, for big files (the shared data-command bar: on stderr, only on a
    terminal); the body gets a function taking the bytes done."""
    size = path.stat().st_size if path.is_file() else 0
    return progress_bar("reading", size, unit="bytes", at_least=BIG)

"""`tllm together evolve`: merge a population of adapters over generations, keep the best by
the home's own evaluation, report the winner's lineage. Attached to the `together` group
with `together.add_command(evolve)`."""

from __future__ import annotations

import json

import click

from ...adapters.card import AdapterCard
from ...errors import TllmError
from ...settings_kit import click_options, from_options
from ...together.evolve.run import EvolveSettings, resume_settings, run_evolve
from ...together.evolve.score import describe
from ...together.lineage import lineage_lines
from ..common import home_options, open_home
from ..data.progress import tasks_progress

# Flags that a resumed run takes from its own settings instead.
RUN_FLAGS = ("population", "eval", "candidates", "metric", "seed", "name", "limit")


@click.command()
@click_options(EvolveSettings)
@click.option(
    "--adopt",
    is_flag=True,
    help="Make the winner the active adapter if it beats the current one (or the "
    "base model when none is active) on the same evaluation.",
)
@click.option(
    "--resume",
    "resume",
    metavar="RUN_ID",
    help="Continue an interrupted run; scored generations and candidates are kept. "
    "Only --generations (to extend it), --adopt and --overwrite may be given.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@home_options
def evolve(adopt, resume, as_json, home_dir, **flags):
    """Evolve adapters by merging: each generation merges members of the population (svd,
    ties, dare_ties, linear; random weights), scores every candidate and member on the
    home's own evaluation dataset, and keeps the best (the population keeps its size).

    \b
    Candidates live in together/evolve/<run-id>/; only the winner is saved, as
    adapters/<name>, its card holding its lineage. Nothing becomes the assistant's
    active adapter unless --adopt is given and the winner beats the current one.

    \b
    Examples:
      tllm together evolve --population facts,peer-facts,peer2 --generations 3 --eval quiz
      tllm together evolve --population a,b --eval quiz --metric accuracy --candidates 6 \\
          --name best --adopt
      tllm together evolve --resume evolve-20250101-120000 --generations 5
    """

    home = open_home(home_dir)
    if resume:
        extra = [f"--{flag}" for flag in RUN_FLAGS if flags[flag] is not None]
        if extra:
            raise TllmError(
                f"--resume continues run {resume} with its own settings; drop "
                f"{', '.join(extra)} (only --generations, --adopt, --overwrite apply)"
            )
        settings = resume_settings(home, resume, flags["generations"])
        settings.overwrite = settings.overwrite or bool(flags["overwrite"])
    else:
        if flags["population"] is None or flags["eval"] is None:
            raise TllmError("give --population A,B,... and --eval DATASET (or --resume RUN_ID)")
        settings = from_options(EvolveSettings, flags)
    say = (lambda message: None) if as_json else (lambda message: click.echo(message, err=True))
    show = (
        (lambda entry: None)
        if as_json
        else (lambda entry: _print_generation(entry, settings.metric))
    )
    with tasks_progress("evolving") as bar:
        results = run_evolve(
            home,
            settings,
            resume=resume,
            adopt=adopt,
            progress=bar.update,
            report=say,
            on_generation=show,
        )
    if as_json:
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
        return
    _print_end(results)


def _score_text(metric: str, scores: dict) -> str:
    if metric == "accuracy":
        return f"{scores['accuracy']:>8.3f} {scores['loss']:>8.4f}"
    return f"{scores['loss']:>8.4f}"


def _print_generation(entry: dict, metric: str) -> None:
    better = "higher" if metric == "accuracy" else "lower"
    click.echo(f"\ngeneration {entry['generation']} ({metric}, {better} is better; * kept)")
    figures = f"{'accuracy':>8} {'loss':>8}" if metric == "accuracy" else f"{'loss':>8}"
    click.echo(
        f"  {'adapter':<16} {'parents':<28} {'method':<10} {'weights':<16} {'density':<8} {figures}"
    )
    for row in entry["table"]:
        parents = "+".join(row["parents"]) if row["parents"] else "(member)"
        weights = ",".join(f"{w:g}" for w in row["weights"]) if row["weights"] else "-"
        density = f"{row['density']:g}" if row["density"] is not None else "-"
        click.echo(
            f"{'*' if row['kept'] else ' '} {row['adapter'][:16]:<16} {parents[:28]:<28} "
            f"{row['method'] or '-':<10} {weights[:16]:<16} {density:<8} "
            f"{_score_text(metric, row['scores'])}"
        )


def _print_end(results: dict) -> None:
    metric = results["settings"]["metric"]
    winner = results["winner"]
    initial = results["winner"]["initial_best"]
    click.echo("")
    if winner["saved"]:
        click.echo(
            f"winner: {winner['candidate']} ({describe(metric, winner['scores'])}; best "
            f"starting member {initial}: {describe(metric, results['scores'][initial])}), "
            f"saved as adapter {winner['adapter']}"
        )
        click.echo("lineage:")
        for line in lineage_lines(winner["adapter"], AdapterCard.from_dict(winner["card"])):
            click.echo(f"  {line}")
    else:
        click.echo(
            f"winner: {winner['adapter']}, a starting member "
            f"({describe(metric, winner['scores'])}): no candidate beat it; nothing saved"
        )
    click.echo(results["adoption"]["reason"])
    click.echo(f"run folder: {results['run_dir']} (results.json)")

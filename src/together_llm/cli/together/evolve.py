"""`tllm together evolve`: merge a population of adapters over generations, keep the best by
the home's own evaluation, report the winner's lineage. Attached to the `together` group
with `together.add_command(evolve)`."""

from __future__ import annotations

import json

import click

from ...errors import TllmError
from ...together.evolve.run import EvolveSettings, resume_settings, run_evolve
from ...together.evolve.score import describe
from ...together.lineage import lineage_lines
from ..common import home_options, open_home
from ..data.progress import tasks_progress

# Flags that a resumed run takes from its own settings instead.
RUN_FLAGS = ("population", "eval_data", "candidates", "metric", "seed", "name", "limit")


def _names(ctx, param, value):
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if len(names) < 2:
        raise click.BadParameter("name at least two adapters, comma-separated, e.g. a,b,c")
    return names


@click.command()
@click.option(
    "--population",
    callback=_names,
    help="The adapters to start from, comma-separated (LoRA, one base).",
)
@click.option("--generations", type=int, help="How many generations to run (default 3).")
@click.option(
    "--eval",
    "eval_data",
    help="The home's dataset the adapters are scored on (its eval split when it has one).",
)
@click.option("--candidates", type=int, help="Merged candidates made each generation (default 4).")
@click.option(
    "--metric",
    type=click.Choice(("loss", "accuracy")),
    help="Fitness: loss (mean loss of the answer tokens, lower is better; the "
    "default) or accuracy (share of chat answers the adapter writes exactly, "
    "greedily).",
)
@click.option(
    "--seed", type=int, help="Seed of the choice of parents, methods and weights (default 0)."
)
@click.option("--name", help="The winner's adapter name (default: the run id).")
@click.option("--limit", type=int, help="Score on at most this many evaluation rows (default 200).")
@click.option(
    "--adopt",
    is_flag=True,
    help="Make the winner the active adapter if it beats the current one (or the "
    "base model when none is active) on the same evaluation.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing adapter named --name.")
@click.option(
    "--resume",
    "resume",
    metavar="RUN_ID",
    help="Continue an interrupted run; scored generations and candidates are kept. "
    "Only --generations (to extend it), --adopt and --overwrite may be given.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@home_options
def evolve(
    population,
    generations,
    eval_data,
    candidates,
    metric,
    seed,
    name,
    limit,
    adopt,
    overwrite,
    resume,
    as_json,
    home_dir,
):
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
    given = {
        "population": population,
        "eval_data": eval_data,
        "candidates": candidates,
        "metric": metric,
        "seed": seed,
        "name": name,
        "limit": limit,
    }
    if resume:
        extra = [f"--{flag.replace('_data', '')}" for flag in RUN_FLAGS if given[flag] is not None]
        if extra:
            raise TllmError(
                f"--resume continues run {resume} with its own settings; drop "
                f"{', '.join(extra)} (only --generations, --adopt, --overwrite apply)"
            )
        settings = resume_settings(home, resume, generations)
        settings.overwrite = settings.overwrite or overwrite
    else:
        if population is None or eval_data is None:
            raise TllmError("give --population A,B,... and --eval DATASET (or --resume RUN_ID)")
        settings = EvolveSettings(population=population, eval=eval_data)
        for key, value in (
            ("generations", generations),
            ("candidates", candidates),
            ("metric", metric),
            ("seed", seed),
            ("name", name),
            ("limit", limit),
        ):
            if value is not None:
                setattr(settings, key, value)
        settings.overwrite = overwrite
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
        for line in lineage_lines(winner["adapter"], winner["card"]):
            click.echo(f"  {line}")
    else:
        click.echo(
            f"winner: {winner['adapter']}, a starting member "
            f"({describe(metric, winner['scores'])}): no candidate beat it; nothing saved"
        )
    click.echo(results["adoption"]["reason"])
    click.echo(f"run folder: {results['run_dir']} (results.json)")

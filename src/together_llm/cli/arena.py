"""`tllm arena`: contestants answer the same prompts, a judge picks the better of two
anonymous answers, and the leaderboard rates everyone on all battles stored so far."""

from __future__ import annotations

import json

import click

from ..errors import TllmError
from ..evaluate.arena import (
    canonical_name,
    leaderboard,
    open_contestant,
    open_judge,
    plan_battles,
    plot_leaderboard,
    read_prompts,
    run_battles,
)
from ..evaluate.battles import BattleStore
from .common import home_options, open_home
from .data.progress import progress


@click.command()
@click.option(
    "--contestants",
    "-c",
    metavar="A,B,...",
    help="Who answers: adapters of this home, model names (local or remote "
    "endpoints from `tllm models add`), or home:PATH[:ADAPTER] for another home.",
)
@click.option(
    "--prompts",
    "-p",
    "prompts_file",
    type=click.Path(dir_okay=False),
    help='Prompts: a text file (one a line) or JSONL ({"prompt": ...} a line).',
)
@click.option(
    "--judge",
    "-j",
    metavar="NAME",
    help="Who judges, named like a contestant (default: the home's model).",
)
@click.option(
    "--rounds",
    "-r",
    type=click.IntRange(min=1),
    default=1,
    metavar="N",
    show_default=True,
    help="How many times every prompt is fought over.",
)
@click.option(
    "--pairs",
    type=click.IntRange(min=1),
    metavar="K",
    help="Pairs of contestants drawn per prompt and round (default: every pair).",
)
@click.option(
    "--max-tokens", type=click.IntRange(min=1), metavar="N", help="Longest answer, in tokens."
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for pairings, answer order, sampling and the bootstrap.",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(min=0),
    default=200,
    metavar="B",
    show_default=True,
    help="Bootstrap resamples for the 95% intervals (0: none).",
)
@click.option(
    "--leaderboard",
    "only_leaderboard",
    is_flag=True,
    help="Rate the stored battles again without fighting new ones.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the new battles and the leaderboard as JSON."
)
@home_options
def arena(
    contestants,
    prompts_file,
    judge,
    rounds,
    pairs,
    max_tokens,
    seed,
    bootstrap,
    only_leaderboard,
    as_json,
    home_dir,
):
    """Rate assistants against each other: each battle shows a judge two anonymous answers
    to one prompt, in random order, and Bradley-Terry ratings with 95% bootstrap intervals
    are fitted on every battle stored in the home (arena/battles.sqlite), so contestants
    can be added later and ratings recomputed. Ratings are on an Elo scale (average 1000;
    400 points = 10:1 odds). The leaderboard is also drawn to arena/leaderboard.png.

    \b
    Examples:
      tllm arena --contestants default,facts --prompts questions.txt
      tllm arena -c facts,facts-v2,home:../friend --prompts q.jsonl --judge gpt --rounds 2
      tllm arena --leaderboard
    """

    home = open_home(home_dir)
    store = BattleStore.of(home)
    battles = []
    if only_leaderboard:
        if contestants or prompts_file:
            raise TllmError(
                "--leaderboard rates the stored battles; leave out --contestants "
                "and --prompts (or drop --leaderboard to fight new battles)"
            )
    else:
        battles = _fight(
            home,
            store,
            contestants,
            prompts_file,
            judge,
            rounds,
            pairs,
            max_tokens,
            seed,
            quiet=as_json,
        )
    ratings = leaderboard(store, bootstrap, seed)
    plot = plot_leaderboard(ratings, home.arena_dir / "leaderboard.png")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "battles": [b.to_dict() for b in battles],
                    "leaderboard": [r.to_dict() for r in ratings],
                    "plot": str(plot),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if battles:
        click.echo(
            f"{len(battles)} new battle(s) stored; rating all {sum(r.battles for r in ratings) // 2}"
        )
    _print_table(ratings)
    click.echo(f"plot: {plot}")


def _fight(
    home, store, contestants, prompts_file, judge_name, rounds, pairs, max_tokens, seed, quiet
):
    """Check everything that can be checked before loading a model, then run the battles."""

    if not contestants or not prompts_file:
        raise TllmError(
            "name the --contestants (A,B,...) and the --prompts file, or give "
            "--leaderboard to rate the stored battles"
        )
    names = [canonical_name(name) for name in contestants.split(",") if name.strip()]
    prompts = read_prompts(prompts_file)
    total = len(plan_battles(names, len(prompts), rounds, pairs, seed))
    judge_name = canonical_name(judge_name or home.load_config().model)
    report = lambda message: click.echo(message, err=True)  # noqa: E731
    if judge_name in names:
        report(
            f"note: the judge {judge_name!r} is also a contestant and may favour its own answers"
        )
    engines: dict = {}
    try:
        players = {
            name: open_contestant(home, name, max_tokens, seed, engines, report) for name in names
        }
        judge = open_judge(home, judge_name, engines, report)
        with progress("battles", total, unit="tasks", at_least=1, transient=False) as update:
            battles = run_battles(
                store, players, prompts, judge, judge_name, rounds, pairs, seed, progress=update
            )
    finally:
        for engine, _ in engines.values():
            engine.close()
    if judge.stats.unparseable and not quiet:
        click.echo(
            f"note: {judge.stats.unparseable} of {judge.stats.calls} judge replies had "
            "no readable verdict and counted as ties",
            err=True,
        )
    return battles


def _print_table(ratings) -> None:
    click.echo(
        f"{'rank':>4}  {'contestant':<24} {'rating':>7}  {'95% interval':>15}  "
        f"{'battles':>7}  {'W/T/L':>11}"
    )
    for rank, r in enumerate(ratings, start=1):
        interval = f"{r.low:.0f}-{r.high:.0f}"
        record = f"{r.wins}/{r.ties}/{r.losses}"
        click.echo(
            f"{rank:>4}  {r.name:<24} {r.rating:>7.0f}  {interval:>15}  "
            f"{r.battles:>7}  {record:>11}"
        )

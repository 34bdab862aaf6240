"""`tllm optimize`: measure the backends that can serve the assistant and serve it with the
fastest one within a quality bound."""

from __future__ import annotations

import json

import click

from ..optimize.backends import BACKENDS
from ..optimize.benchmark_set import read_prompts, read_text
from ..optimize.run import optimize as run_optimize
from .common import home_options, open_home


@click.command()
@click.option(
    "--adapter",
    "-a",
    metavar="A",
    help="Optimize the assistant with this adapter (default: its active adapter, if any).",
)
@click.option(
    "--max-ppl-increase",
    type=float,
    default=0.05,
    show_default=True,
    metavar="F",
    help="Largest perplexity increase over transformers fp32 allowed, as a fraction (0.05 = 5%).",
)
@click.option(
    "--prompts",
    "prompts_file",
    type=click.Path(dir_okay=False, exists=True),
    help='Prompts to time, one a line (or JSONL with "prompt"); default: a built-in set.',
)
@click.option(
    "--text",
    "text_file",
    type=click.Path(dir_okay=False, exists=True),
    help="Held-out text for perplexity, paragraphs split by blank lines; default: built in.",
)
@click.option(
    "--backend",
    "backends",
    multiple=True,
    type=click.Choice(list(BACKENDS)),
    help="Measure only these backends (repeatable; transformers-fp32 is always measured).",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=2),
    default=48,
    show_default=True,
    help="Tokens generated per prompt when timing.",
)
@click.option(
    "--apply/--dry-run",
    default=True,
    show_default=True,
    help="Make the winner the assistant's serving backend, or only report.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@home_options
def optimize(
    adapter,
    max_ppl_increase,
    prompts_file,
    text_file,
    backends,
    max_tokens,
    apply,
    as_json,
    home_dir,
):
    """Measure every backend that can serve the assistant (transformers fp32, bf16 and int8;
    llama.cpp f16, q8_0 and q4_k_m GGUF exports) on the same prompts and held-out text, and
    serve it with the fastest whose perplexity is within --max-ppl-increase of fp32's.

    GGUF files are exported once into exports/ (the adapter merged in) and reused. Results
    go to runs/<id>/optimize.json; assistant.yaml's engine, model and precision change
    unless --dry-run.

    \b
    Examples:
      tllm optimize
      tllm optimize --adapter facts --max-ppl-increase 0.02
      tllm optimize --dry-run --backend llama.cpp-q8_0 --backend transformers-int8
      tllm optimize --prompts my-prompts.txt --text my-notes.txt
    """

    home = open_home(home_dir)
    say = (lambda message: None) if as_json else (lambda message: click.echo(message, err=True))
    result = run_optimize(
        home,
        adapter=adapter,
        max_ppl_increase=max_ppl_increase,
        prompts=read_prompts(prompts_file) if prompts_file else None,
        text=read_text(text_file) if text_file else None,
        apply=apply,
        backends=list(backends) or None,
        max_tokens=max_tokens,
        report=say,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(table(result))
    chosen = result["chosen"]
    if result["applied"]:
        settings = result["applied"]
        detail = f"model {settings['model']}" + (
            f", precision {settings['precision']}" if settings["engine"] == "transformers" else ""
        )
        click.echo(f"serving with {chosen} ({detail}); results in {result['run_dir']}")
    else:
        click.echo(
            f"fastest within the bound: {chosen} (dry run: assistant.yaml unchanged); "
            f"results in {result['run_dir']}"
        )


def table(result: dict) -> str:
    """The backends side by side, the chosen one starred."""
    bound = result["max_ppl_increase"]
    lines = [
        f"{result['base']}"
        + (f" + {result['adapter']}" if result["adapter"] else "")
        + f": {result['prompts']} prompts x {result['max_tokens']} tokens, perplexity on "
        f"{result['scored_tokens']} held-out tokens (windows of {result['window']})",
        f"  {'backend':<19} {'decode tok/s':>12} {'TTFT ms':>8} {'peak RSS MB':>11} "
        f"{'model MB':>9} {'perplexity':>10} {'vs fp32':>8}  within {bound:.0%}",
    ]
    for row in result["backends"]:
        mark = "*" if row["backend"] == result["chosen"] else " "
        if row["status"] != "ok":
            lines.append(f"{mark} {row['backend']:<19} {row['status']}: {row['reason']}")
            continue
        lines.append(
            f"{mark} {row['backend']:<19} {row['decode_tokens_per_s']:>12.1f} "
            f"{row['ttft_s'] * 1000:>8.0f} {row['peak_rss_bytes'] / 1e6:>11.0f} "
            f"{row['model_bytes'] / 1e6:>9.1f} {row['perplexity']:>10.3f} "
            f"{row['ppl_increase']:>+8.2%}  {'yes' if row['within_bound'] else 'no'}"
        )
    lines.append(
        "peak RSS: the measuring process's peak resident memory after loading and "
        "answering; model MB: the weights as held (GGUF: file size)"
    )
    return "\n".join(lines)

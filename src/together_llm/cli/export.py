"""`tllm export`: a model (with an adapter merged in) as a Hugging Face directory, GGUF
files for llama.cpp and Ollama, or the adapter itself as a GGUF LoRA."""

from __future__ import annotations

import json

import click

from ..export.exporter import export as run_export
from .common import home_options, open_home


@click.command()
@click.option("--name", required=True, help="The export's name: it goes to exports/NAME/.")
@click.option("--adapter", help="The adapter to export (merged into its base with --merge/--gguf).")
@click.option("--model", help="The base model (default: the adapter's base, else the assistant's).")
@click.option(
    "--merge", is_flag=True, help="Write the merged Hugging Face model (exports/NAME/hf)."
)
@click.option(
    "--gguf",
    "gguf_types",
    multiple=True,
    metavar="TYPE",
    help="Write a GGUF of TYPE: f16, q8_0 or q4_k_m (repeatable; implies --merge).",
)
@click.option(
    "--gguf-adapter",
    is_flag=True,
    help="Write the LoRA adapter itself as a GGUF adapter, applied without merging; "
    "it is kept in adapters/A/ too, so ask, chat and serve run the adapter on "
    "llama.cpp.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing export of this name.")
@click.option("--json", "as_json", is_flag=True, help="Print the files written as JSON.")
@home_options
def export(name, adapter, model, merge, gguf_types, gguf_adapter, overwrite, as_json, home_dir):
    """Export a model for other tools: transformers, llama.cpp, Ollama.

    \b
    Examples:
      tllm export --adapter facts --merge --name facts-hf
      tllm export --adapter facts --gguf q8_0 --gguf q4_k_m --name facts
      tllm export --adapter facts --gguf-adapter --name facts-lora
      tllm models add facts ~/.together-llm/exports/facts/facts-q8_0.gguf
      tllm ask --adapter facts --engine llama.cpp "Where do I live?"
    """

    home = open_home(home_dir)
    result = run_export(
        home,
        name,
        model=model,
        adapter=adapter,
        merge=merge,
        gguf=list(gguf_types),
        gguf_adapter=gguf_adapter,
        overwrite=overwrite,
        report=lambda message: click.echo(message, err=True),
    )
    if as_json:
        click.echo(json.dumps({"folder": str(result.folder), "files": result.files}, indent=2))
        return
    click.echo(f"exported {name} to {result.folder}")
    for path, size in result.files.items():
        if "/" not in path:  # the merged model's many files are summed under hf/
            click.echo(f"  {path:<32} {size / 1e6:8.1f} MB")
    hf_bytes = sum(size for path, size in result.files.items() if path.startswith("hf/"))
    if hf_bytes:
        click.echo(f"  {'hf/':<32} {hf_bytes / 1e6:8.1f} MB")
    ggufs = [p for p in result.files if p.endswith(".gguf") and "-lora-" not in p]
    if ggufs:
        click.echo(f"run it here: tllm models add {name} {result.folder / ggufs[-1]}")

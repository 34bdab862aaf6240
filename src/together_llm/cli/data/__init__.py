"""`tllm data`: one module per sub-command, imported only when that sub-command runs."""

import click

from ..main import lazy_group

SUBCOMMANDS = {
    "import": ("together_llm.cli.data.importing:import_", "Import a file or folder as a dataset."),
    "validate": (
        "together_llm.cli.data.importing:validate",
        "Check a file row by row without importing it.",
    ),
    "list": ("together_llm.cli.data.browse:list_", "List the datasets in the home."),
    "show": ("together_llm.cli.data.browse:show", "Show a dataset's card and first rows."),
    "clean": ("together_llm.cli.data.clean:clean", "Repair, filter and deduplicate a dataset."),
    "split": ("together_llm.cli.data.clean:split", "Make train/eval splits."),
    "flan": (
        "together_llm.cli.data.flan:flan",
        "Turn labelled rows into instructions (FLAN templates).",
    ),
    "self-instruct": (
        "together_llm.cli.data.self_instruct:self_instruct",
        "Grow instructions with a teacher model (Self-Instruct).",
    ),
    "teach": (
        "together_llm.cli.data.teach:teach",
        "Mark datasets for tllm improve to teach.",
    ),
    "from-feedback": (
        "together_llm.cli.data.feedback:from_feedback",
        "Turn ratings, A/B choices and corrections into datasets.",
    ),
}


@click.group(cls=lazy_group(SUBCOMMANDS))
def data():
    """Datasets: import what you have, check it, clean it, and grow it.

    \b
    Examples:
      tllm data import alpaca.json --kind chat --name mine
      tllm data show mine --limit 3
      tllm data clean mine --dedup --out mine-clean
      tllm data split mine-clean --eval 0.1 --seed 0
    """

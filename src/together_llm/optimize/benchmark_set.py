"""The fixed inputs `tllm optimize` measures every backend on: chat prompts for speed, and a
held-out text for perplexity. Written here, so no model's training data held them verbatim;
a user can pass their own (`--prompts FILE`, `--text FILE`)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import TllmError

PROMPTS = [
    "Explain in a few sentences why the sky is blue.",
    "Give me three tips for sleeping better.",
    "Write a short, friendly email inviting a colleague to lunch on Friday.",
    "What is the difference between a list and a tuple in Python?",
    "Summarize the plot of a story about a lost dog finding its way home.",
    "How do I keep basil growing on a windowsill?",
]

HELD_OUT = [
    "The ferry to the island leaves twice a day, once at dawn and once in the late afternoon. "
    "In winter the crossing can be rough, and the captain sometimes waits in the harbour until "
    "the wind drops. Most passengers are islanders coming back from the market on the mainland, "
    "carrying bags of bread, newspapers and spare parts for their boats.",
    "Compost turns kitchen scraps and garden waste into rich soil. Mix green material, such as "
    "vegetable peels and grass cuttings, with brown material, such as dry leaves and cardboard. "
    "Turn the heap every few weeks so air reaches the middle, and keep it as damp as a wrung-out "
    "sponge. After a few months the bottom of the heap is dark, crumbly and ready to use.",
    "The first public libraries lent books to anyone who lived in the town, free of charge. "
    "Before them, books were expensive, and only schools, churches and wealthy families owned "
    "more than a handful. Reading rooms soon filled every evening with workers who came to read "
    "newspapers, borrow novels and study subjects they had never been taught at school.",
    "A bicycle needs little care to run well for years. Keep the tyres pumped to the pressure "
    "printed on their side, wipe the chain and oil it after riding in the rain, and check that "
    "the brakes stop the wheels firmly. Once a year, take it to a shop to have the gears and "
    "bearings adjusted before small problems become expensive ones.",
    "Clouds form when warm, moist air rises and cools. The water vapour in it condenses on tiny "
    "particles of dust or salt, making droplets so small that they float. When enough droplets "
    "join together they become heavy and fall as rain, or, if the air is cold enough, as snow. "
    "Flat grey clouds usually bring drizzle; tall towering ones bring storms.",
    "On Saturday mornings the square fills with stalls selling cheese, honey, apples and fresh "
    "flowers. Farmers arrive before sunrise to set up their tables, and by eight o'clock the "
    "first customers are already queuing for warm bread. Children gather around the man who "
    "sells wooden toys, while their parents compare the price of tomatoes from stall to stall.",
]


def read_prompts(path: Path) -> list[str]:
    """Prompts from a file: one per line, or JSONL rows with a "prompt" field."""
    prompts = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TllmError(f"cannot read prompts from {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                prompt = json.loads(line).get("prompt")
            except (ValueError, AttributeError):
                prompt = None
            if not isinstance(prompt, str) or not prompt.strip():
                raise TllmError(f'{path} line {number}: a JSON row needs a "prompt" string')
            line = prompt
        prompts.append(line.strip())
    if not prompts:
        raise TllmError(f'{path} holds no prompts (one a line, or JSONL with "prompt")')
    return prompts


def read_text(path: Path) -> list[str]:
    """Held-out text from a file: paragraphs separated by blank lines."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TllmError(f"cannot read the held-out text {path}: {exc.strerror}") from None
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    if not paragraphs:
        raise TllmError(f"{path} is empty; perplexity needs some held-out text")
    return paragraphs

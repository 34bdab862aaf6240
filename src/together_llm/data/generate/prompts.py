"""The prompts Self-Instruct shows its teacher, and the parsers that read the answers.

Every prompt is a raw completion prompt, as the paper used with GPT-3: a small instruct
model follows a few-shot pattern more reliably this way than through its chat template.
"""

from __future__ import annotations

import re


def instruction_prompt(examples: list[str]) -> str:
    lines = [f"Task {i}: {text}" for i, text in enumerate(examples, start=1)]
    return (
        "Come up with a series of varied tasks:\n\n"
        + "\n".join(lines)
        + f"\nTask {len(examples) + 1}:"
    )


_NUMBERED = re.compile(r"\n\s*Task\s*\d+\s*[:.]")


def parse_instructions(text: str, truncated: bool) -> list[str]:
    """The new instructions in the teacher's continuation of the numbered list (a blank line
    ends it). When max_tokens cut the answer short, the last one may be half a sentence and
    is left out."""
    text = text.lstrip()
    if "\n\n" in text:
        text, truncated = text.split("\n\n", 1)[0], False
    pieces = _NUMBERED.split(text)
    if truncated:
        pieces = pieces[:-1]
    return [" ".join(p.split()) for p in pieces if p.strip()]


def classification_prompt(examples: list[tuple[str, bool]], instruction: str) -> str:
    shown = "".join(f"{text} => {'label' if is_cls else 'text'}\n" for text, is_cls in examples)
    return (
        "Sort tasks into two kinds. label: the answer is one category from a fixed set, "
        "such as positive/negative or yes/no. text: the answer is free writing.\n\n"
        f"{shown}{instruction} =>"
    )


def parse_is_classification(text: str) -> bool:
    return text.strip().lower().startswith(("label", "yes"))


def input_first_prompt(examples: list[dict], instruction: str) -> str:
    """Input first, then output; a task that needs no input goes straight to its output."""
    shown = ""
    for task in examples:
        instance = task["instances"][0]
        given = f"Input: {instance['input']}\n" if instance["input"] else ""
        shown += f"Task: {task['instruction']}\n{given}Output: {instance['output']}\n\n"
    return (
        "Come up with an example for each task. Write the input the task needs, then the "
        "output. If the task needs no input, write the output directly.\n\n"
        f"{shown}Task: {instruction}\n"
    )


def output_first_prompt(examples: list[dict], instruction: str) -> str:
    shown = ""
    for task in examples:
        shown += f"Task: {task['instruction']}\n"
        shown += "".join(
            f"Class label: {x['output']}\nInput: {x['input'] or 'None'}\n"
            for x in task["instances"]
        )
        shown += "\n"
    return (
        "Given a classification task, write each possible class label and then an input "
        f"that belongs to it.\n\n{shown}Task: {instruction}\nClass label:"
    )


def _clean_input(text: str) -> str:
    text = text.strip()
    return "" if text.lower().rstrip(".") in ("none", "n/a", "no input", "") else text


def parse_input_first(text: str) -> list[dict]:
    """Examples written input first; a line starting "Input:" begins another one, and an
    example without an input is just its output."""
    instances = []
    for block in re.split(r"\n(?=Input:)", text.strip()):
        if block.startswith("Input:"):
            given, found, output = block[len("Input:") :].partition("Output:")
            output = output if found else ""
        else:
            given, output = "", block.removeprefix("Output:")
        instances.append(
            {"input": _clean_input(given), "output": output.split("\nOutput:")[0].strip()}
        )
    return instances


def parse_output_first(text: str) -> list[dict]:
    """(label, input) pairs; the label is the instance's output."""
    instances = []
    for block in ("Class label:" + text).split("Class label:")[1:]:
        label, _, given = block.partition("\nInput:")
        label = label.strip().split("\n")[0].strip().rstrip(".")  # a label is one line
        instances.append({"input": _clean_input(given.split("\nOutput:")[0]), "output": label})
    return instances


def chat_row(task: dict, instance: dict) -> dict:
    user = task["instruction"] + (f"\n\n{instance['input']}" if instance["input"] else "")
    return {
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": instance["output"]},
        ]
    }

"""The Ollama `Modelfile` written beside an export, so `ollama create NAME -f Modelfile`
serves the GGUF with the template and settings the assistant uses here.

Ollama's TEMPLATE is a Go template, not Jinja. For a ChatML template (the bundled model's,
and the one we give models without their own) we write the equivalent Go template; for
any other, Ollama reads the Jinja template the GGUF carries (`tokenizer.chat_template`)
and we say so in a comment rather than guess a translation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CHATML_GO = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)


def _quoted(text: str) -> str:
    """A Modelfile argument: triple quotes hold any text without escaping, except `\"\"\"`."""
    return '"""' + text.replace('"""', '\\"\\"\\"') + '"""'


def write_modelfile(
    folder: Path,
    name: str,
    model_file: str,
    chat_template: str | None,
    system_prompt: str = "",
    generation: dict | None = None,
    adapter_file: str | None = None,
    stops: Sequence[str] = (),
) -> Path:
    """Write `folder/Modelfile` for GGUF `model_file` (a name in `folder`, or an absolute
    path), with `adapter_file` (a GGUF LoRA in `folder`) applied on top if given; `name`
    is what the comment suggests calling it in Ollama."""
    lines = [
        "# Ollama Modelfile written by `tllm export`; use it with:",
        f"#   ollama create {name} -f Modelfile",
        f"FROM {model_file if Path(model_file).is_absolute() else './' + model_file}",
    ]
    if adapter_file:
        lines.append(f"ADAPTER ./{adapter_file}")
    if chat_template and "<|im_start|>" in chat_template:
        lines.append(f"TEMPLATE {_quoted(CHATML_GO)}")
        stops = list(dict.fromkeys([*stops, "<|im_end|>"]))
    else:
        lines.append("# TEMPLATE: Ollama uses the chat template stored in the GGUF file")
    if system_prompt:
        lines.append(f"SYSTEM {_quoted(system_prompt)}")
    for stop in stops:
        lines.append(f"PARAMETER stop {_quoted(stop)}")
    names = {
        "temperature": "temperature",
        "top_p": "top_p",
        "top_k": "top_k",
        "repetition_penalty": "repeat_penalty",
        "max_tokens": "num_predict",
    }
    for ours, theirs in names.items():
        value = (generation or {}).get(ours)
        if value is not None:
            lines.append(f"PARAMETER {theirs} {value}")
    path = folder / "Modelfile"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

"""Render a conversation into the prompt string the model was trained on.

The template is the model's own Jinja chat template (from GGUF metadata or the tokenizer's
`chat_template`). Both engines call `render_chat`, and training uses it too, so one set of
messages always becomes one string. The Jinja environment matches the one transformers
uses for `apply_chat_template` (sandboxed, trim_blocks, lstrip_blocks, loop controls,
`raise_exception`, `strftime_now`), so a template renders the same here as there.
Models that ship without a template (GPT-2, the tiny test models) get `DEFAULT_TEMPLATE`,
ChatML, which is written into the tokenizer whenever we save a model.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import TllmError

ROLES = ("system", "user", "assistant")

DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def check_messages(messages) -> list[dict]:
    """Refuse anything but a non-empty list of {role, content} with known roles."""
    if not isinstance(messages, list) or not messages:
        raise TllmError("messages must be a non-empty list of {role, content} objects")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise TllmError(f"message {i} must have 'role' and 'content'")
        if message["role"] not in ROLES:
            raise TllmError(
                f"message {i} has unknown role {message['role']!r}; roles: {', '.join(ROLES)}"
            )
        if not isinstance(message["content"], str):
            raise TllmError(f"message {i} content must be text")
    return messages


def _raise(message: str):
    raise TllmError(f"chat template refused the conversation: {message}")


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


@functools.lru_cache(maxsize=16)
def _compile(template: str):
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(template)
    except Exception as exc:  # jinja2.TemplateSyntaxError and friends
        raise TllmError(f"the model's chat template does not parse: {exc}") from None


def render_chat(
    template: str | None,
    messages: list[dict],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """The prompt string for `messages`, ready to tokenize without adding special tokens."""
    check_messages(messages)
    compiled = _compile(template or DEFAULT_TEMPLATE)
    return compiled.render(
        messages=messages,
        bos_token=bos_token,
        eos_token=eos_token,
        add_generation_prompt=add_generation_prompt,
    )

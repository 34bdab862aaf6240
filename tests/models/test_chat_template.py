"""One conversation, one prompt string: our renderer agrees with transformers."""

import pytest

from together_llm.errors import TllmError
from together_llm.models.chat_template import DEFAULT_TEMPLATE, render_chat

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": 'Capital of France? Answer with "quotes" ünïcode.'},
]

SMOLLM_LIKE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nDefault<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3_LIKE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


@pytest.mark.parametrize("template", [DEFAULT_TEMPLATE, SMOLLM_LIKE, LLAMA3_LIKE])
@pytest.mark.parametrize("messages", [CONVERSATION, CONVERSATION[1:2]])
def test_render_matches_transformers_apply_chat_template(tmp_path, template, messages):
    from transformers import AutoTokenizer

    from tests.tiny_models import make_tiny_model

    tokenizer = AutoTokenizer.from_pretrained(make_tiny_model("llama", tmp_path / "m", "causal-lm"))
    tokenizer.chat_template = template
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ours = render_chat(
        template, messages, bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or ""
    )
    assert ours == expected


def test_bad_messages_are_refused():
    with pytest.raises(TllmError, match="unknown role 'wizard'"):
        render_chat(None, [{"role": "wizard", "content": "x"}])
    with pytest.raises(TllmError, match="non-empty list"):
        render_chat(None, [])
    with pytest.raises(TllmError, match="does not parse"):
        render_chat("{% for %}", CONVERSATION)

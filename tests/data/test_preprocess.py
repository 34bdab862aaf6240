"""Pre-processing for training: chat rows learn exactly the assistant's turns (checked token
by token on the bundled model's own template), truncation never yields a row with nothing to
learn, and text, seq2seq and classification rows become the ids their trainers expect."""

import pytest

from tests.tiny_models import make_tiny_model
from together_llm.errors import TllmError
from together_llm.train.inputs.encode import (
    IGNORE,
    Stats,
    assistant_spans,
    encode_batch,
    encode_chat,
    encode_classification,
    encode_rows,
    encode_seq2seq,
    encode_text,
    label_names,
)

CONVERSATION = [
    {"role": "system", "content": "You are a terse geography tutor."},
    {"role": "user", "content": "Which river runs through Paris?"},
    {"role": "assistant", "content": "The Seine."},
    {"role": "user", "content": "And through London?"},
    {"role": "assistant", "content": "The Thames, which flows east to the North Sea."},
    {"role": "user", "content": "Thanks! One more: Vienna?"},
    {"role": "assistant", "content": "The Danube."},
]
ANSWERS = [m["content"] for m in CONVERSATION if m["role"] == "assistant"]


def _tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


def _learned_runs(example, tokenizer):
    """The labelled tokens, decoded, one string per contiguous run of labels."""
    runs, current = [], []
    for token, label in zip(example["input_ids"], example["labels"]):
        if label == IGNORE:
            if current:
                runs.append(tokenizer.decode(current))
                current = []
        else:
            assert label == token  # a learned token is labelled with itself
            current.append(token)
    if current:
        runs.append(tokenizer.decode(current))
    return runs


@pytest.fixture(scope="module")
def smollm(converted_home):
    from together_llm.models.registry import get_model

    return _tokenizer(get_model(converted_home, "default").hf_dir)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tokenizers of tiny decoder, encoder-decoder and encoder models (no chat template)."""
    root = tmp_path_factory.mktemp("tiny")
    return {
        name: _tokenizer(make_tiny_model(name, root / name)) for name in ("llama", "t5", "bert")
    }


# ------------------------------------------------------------------ chat, bundled model


@pytest.mark.slow
def test_exactly_each_assistant_turn_and_its_end_token_are_learned(smollm):
    example = encode_chat({"messages": CONVERSATION}, smollm)
    assert example["attention_mask"] == [1] * len(example["input_ids"])
    # Each run of labels is one assistant reply followed by the token that ends its turn.
    assert _learned_runs(example, smollm) == [answer + "<|im_end|>" for answer in ANSWERS]

    # Token by token: a token is learned exactly when it lies in an assistant reply or is
    # the end-of-turn token right after one.
    text, spans = assistant_spans(
        CONVERSATION, smollm.chat_template, smollm.bos_token, smollm.eos_token
    )
    assert [text[a:b] for a, b in spans] == [answer + "<|im_end|>" for answer in ANSWERS]
    offsets = smollm(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert smollm(text, add_special_tokens=False)["input_ids"] == example["input_ids"]
    for (start, end), label in zip(offsets, example["labels"]):
        in_reply = any(a <= start and end <= b for a, b in spans)
        assert (label != IGNORE) == in_reply, text[start:end]

    # Nothing of the system or user turns, nor the "assistant" header, is learned.
    learned = "".join(_learned_runs(example, smollm))
    for message in CONVERSATION:
        if message["role"] != "assistant":
            assert message["content"] not in learned
    assert "assistant" not in learned and "<|im_start|>" not in learned


@pytest.mark.slow
def test_training_sees_the_prompt_inference_sends(smollm):
    """The prompt part of a training example is token for token what the transformers
    engine sends for the same conversation (same template, same special tokens)."""
    from together_llm.models.chat_template import render_chat

    example = encode_chat({"messages": CONVERSATION}, smollm)
    prompt = render_chat(
        smollm.chat_template,
        CONVERSATION[:-1],
        bos_token=smollm.bos_token,
        eos_token=smollm.eos_token,
        add_generation_prompt=True,
    )
    prompt_ids = smollm(prompt, add_special_tokens=False)["input_ids"]
    assert example["input_ids"][: len(prompt_ids)] == prompt_ids
    # Learning starts exactly where generation starts: the first token after the prompt.
    assert example["labels"][len(prompt_ids) - 1] == IGNORE
    assert example["labels"][len(prompt_ids)] != IGNORE


@pytest.mark.slow
def test_truncation_drops_rows_left_without_labels_and_counts_them(smollm):
    long_question = "Tell me about rivers. " * 40
    past_the_limit = {
        "messages": [
            {"role": "user", "content": long_question},
            {"role": "assistant", "content": "Rivers flow."},
        ]
    }
    cut_in_the_second_reply = {"messages": CONVERSATION}
    whole = encode_chat(cut_in_the_second_reply, smollm)
    starts = [
        i
        for i, label in enumerate(whole["labels"])
        if label != IGNORE and whole["labels"][i - 1] == IGNORE
    ]
    limit = starts[1] + 3  # three tokens into the second reply
    assert len(smollm(long_question)["input_ids"]) > limit

    stats = Stats()
    examples = encode_rows(
        "chat",
        [past_the_limit, cut_in_the_second_reply, past_the_limit],
        smollm,
        max_length=limit,
        stats=stats,
    )
    assert stats.as_dict() == {"kept": 1, "truncated": 1, "dropped_no_labels": 2}
    assert len(examples) == 1 and len(examples[0]["input_ids"]) == limit
    assert _learned_runs(examples[0], smollm)[0] == "The Seine.<|im_end|>"
    assert all(any(label != IGNORE for label in e["labels"]) for e in examples)


# ------------------------------------------------------------------ chat, any template


def test_a_template_without_special_end_token_still_learns_the_turn_end(tiny):
    """The tiny models have no template: the default ChatML one, whose <|im_end|> is plain
    text to their tokenizer, not eos. The turn still ends with it, not the newline after."""
    tokenizer = tiny["llama"]
    example = encode_chat({"messages": CONVERSATION}, tokenizer)
    assert _learned_runs(example, tokenizer) == [answer + "<|im_end|>" for answer in ANSWERS]


def test_a_template_that_rewrites_earlier_turns_is_refused():
    # Puts the number of messages first, so the render of a shorter conversation is never
    # the beginning of the longer one: no reply can be located safely.
    template = (
        "{{ messages|length }} turns\n{% for m in messages %}{{ m['role'] }}: "
        "{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    )
    with pytest.raises(TllmError, match="prefix-stable"):
        assistant_spans(CONVERSATION, template)


def test_dataset_map_runs_batches_and_reports_what_it_dropped(tiny):
    from datasets import Dataset

    tokenizer = tiny["llama"]
    rows = [
        {"messages": CONVERSATION[1:3]},
        {
            "messages": [
                {"role": "user", "content": "word " * 60},
                {"role": "assistant", "content": "ok"},
            ]
        },
        {"messages": CONVERSATION},
    ]
    stats = Stats()
    dataset = Dataset.from_list(rows)
    encoded = dataset.map(
        encode_batch,
        batched=True,
        remove_columns=dataset.column_names,
        fn_kwargs=dict(kind="chat", tokenizer=tokenizer, max_length=150, stats=stats),
    )
    assert encoded.column_names == ["input_ids", "attention_mask", "labels"]
    assert stats.as_dict() == {"kept": 2, "truncated": 1, "dropped_no_labels": 1}
    assert encoded[0] == encode_chat(rows[0], tokenizer, max_length=150)
    assert len(encoded) == 2 and len(encoded[1]["input_ids"]) == 150


# ------------------------------------------------------------------ other kinds


def test_text_becomes_blocks_of_documents_each_closed_by_eos(tiny):
    tokenizer = tiny["llama"]
    docs = [
        "The cat sat on the mat.",
        "A small model learns a few facts about cats.",
        "Bonjour, comment allez-vous?",
    ]
    stats = Stats()
    blocks = encode_text([{"text": d} for d in docs], tokenizer, max_length=8, stats=stats)
    stream = [token for block in blocks["input_ids"] for token in block]
    expected = []
    for doc in docs:
        expected += tokenizer(doc, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert stream == expected  # nothing lost, nothing added but the separators
    assert all(len(block) == 8 for block in blocks["input_ids"][:-1])
    assert 0 < len(blocks["input_ids"][-1]) <= 8  # the short tail is kept
    assert blocks["labels"] == blocks["input_ids"] and stats.kept == len(blocks["input_ids"])
    assert tokenizer.decode(stream).count(tokenizer.eos_token) == len(docs)


def test_seq2seq_source_and_context_become_inputs_and_target_becomes_labels(tiny):
    tokenizer = tiny["t5"]
    row = {
        "source": "Question: what is two plus two?",
        "target": "four",
        "context": "Numbers 0 1 2 3 4",
    }
    example = encode_seq2seq(row, tokenizer)
    expected = "Numbers 0 1 2 3 4\n\nQuestion: what is two plus two?</s>"  # context first
    assert tokenizer.decode(example["input_ids"]) == expected
    assert tokenizer.decode(example["labels"]) == "four</s>"
    assert example["attention_mask"] == [1] * len(example["input_ids"])

    stats = Stats()
    short = encode_seq2seq(row, tokenizer, max_length=5, max_target_length=2, stats=stats)
    assert len(short["input_ids"]) == 5 and len(short["labels"]) <= 2
    assert stats.as_dict() == {"kept": 1, "truncated": 1, "dropped_no_labels": 0}


def test_classification_labels_are_sorted_ids_whatever_the_row_order(tiny):
    tokenizer = tiny["bert"]
    rows = [
        {"text": "The cat sat on the mat.", "label": "pos"},
        {"text": "Translate English to French.", "label": "neutral"},
        {"text": "the rain moved the meeting", "label": "neg"},
        {"text": "A small model learns.", "label": "pos"},
    ]
    labels = label_names(rows)
    assert labels == ["neg", "neutral", "pos"] == label_names(rows[::-1])
    examples = encode_rows("classification", rows, tokenizer, labels=labels)
    assert [e["labels"] for e in examples] == [2, 1, 0, 2]
    assert tokenizer.decode(examples[0]["input_ids"]) == "<s>The cat sat on the mat.</s>"

    cut = encode_classification(rows[0], tokenizer, labels, max_length=4)
    assert len(cut["input_ids"]) == 4 and cut["input_ids"][-1] == tokenizer.sep_token_id
    with pytest.raises(TllmError, match="'happy' is not one of"):
        encode_classification({"text": "hi", "label": "happy"}, tokenizer, labels)
    with pytest.raises(TllmError, match="at least two labels"):
        label_names(rows[:1])

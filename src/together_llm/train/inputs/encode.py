"""Turn canonical rows into token ids and labels, ready for a transformers or TRL trainer.

Every function takes canonical rows (see `kinds`) and a Hugging Face tokenizer and returns
plain dicts of lists of ints, so it runs in a loop or inside `datasets.Dataset.map`:

    stats = Stats()
    train = dataset.map(encode_batch, batched=True, remove_columns=dataset.column_names,
                        fn_kwargs=dict(kind="chat", tokenizer=tok, max_length=1024, stats=stats))

- chat: the model's own chat template renders the conversation (`render_chat`, the renderer
  both engines use, so training sees exactly the string inference will send). Labels are -100
  everywhere but the assistant's turns, each learned up to and including the end-of-turn token
  that closes it, so the model learns to stop. System and user turns and the template's
  "assistant" header are never learned.
- text: documents joined with eos and cut into blocks of `max_length` (pretraining).
- seq2seq: source (after its context, if any) to input_ids, target to labels.
- classification: text to input_ids, label to its index in the sorted list of labels.

Truncation never leaves a row with nothing to learn: such rows are dropped, and `Stats`
counts them (and the rows cut short) so the caller can report them. With `Dataset.map` the
counts come from the calls the map actually makes: a result served from datasets' cache
counts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from ...errors import TllmError
from ...models.chat_template import render_chat

IGNORE = -100  # the label transformers' losses skip

# What every example holds, whatever its kind; encode_batch returns exactly these columns.
COLUMNS = ("input_ids", "attention_mask", "labels")


@dataclass
class Stats:
    """What pre-processing did to the rows: kept, cut short (still kept), or dropped because
    truncation left no label to learn."""

    kept: int = 0
    truncated: int = 0
    dropped_no_labels: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------- chat


def assistant_spans(
    messages: list[dict], template: str | None, bos_token: str = "", eos_token: str = ""
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the [start, end) character span of each assistant turn.

    A turn starts where the render of the conversation before it, with the generation prompt
    (the "assistant" header), ends: that render must be a prefix of the whole, or the
    template rewrites earlier turns and no span can be trusted. The turn ends after the
    end-of-turn marker the template writes after the content: `eos_token` when the template
    writes it there, else the turn's text without the whitespace that separates turns.
    """
    full = render_chat(
        template, messages, bos_token=bos_token, eos_token=eos_token, add_generation_prompt=False
    )
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        head = render_chat(
            template,
            messages[:i],
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=True,
        )
        upto = render_chat(
            template,
            messages[: i + 1],
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=False,
        )
        if not (full.startswith(upto) and upto.startswith(head)):
            raise TllmError(
                f"the model's chat template is not prefix-stable for this conversation (the "
                f"render up to assistant turn {i} is not the start of the whole), so the "
                "assistant's tokens cannot be found; use a model whose template only appends"
            )
        spans.append((len(head), _turn_end(upto, len(head), message["content"], eos_token)))
    return full, spans


def _turn_end(text: str, start: int, content: str, eos_token: str) -> int:
    after = text.find(content, start)
    after = start if after < 0 else after + len(content)  # a template may trim the content
    if eos_token:
        at = text.find(eos_token, after)
        if at >= 0:
            return at + len(eos_token)
    return max(after, len(text.rstrip()))


def _chat_template(tokenizer) -> tuple[str | None, str, str]:
    """The template, bos and eos strings of `tokenizer`, as the transformers engine reads
    them (a tokenizer without a template gets render_chat's default)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the default one chats
        template = template.get("default")
    return template, tokenizer.bos_token or "", tokenizer.eos_token or ""


def encode_chat(
    row: dict, tokenizer, max_length: int | None = None, stats: Stats | None = None
) -> dict | None:
    """{"input_ids", "attention_mask", "labels"} for one chat row, or None when truncation to
    `max_length` tokens leaves no assistant token (counted in `stats`)."""
    if not getattr(tokenizer, "is_fast", False):
        raise TllmError(
            "chat pre-processing needs a fast tokenizer (a tokenizer.json) to map "
            "tokens to the assistant's text; this model's tokenizer is a slow one"
        )
    template, bos, eos = _chat_template(tokenizer)
    text, spans = assistant_spans(row["messages"], template, bos, eos)
    # The template wrote every special token already, as at inference: add none.
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(encoded["input_ids"])
    labels = [
        token if _inside(offset, spans) else IGNORE
        for token, offset in zip(input_ids, encoded["offset_mapping"])
    ]
    return _finish(input_ids, labels, max_length, stats)


def _inside(offset: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """Whether a token's characters overlap an assistant span. A token that straddles the
    header and the reply carries reply text, so it is learned."""
    start, end = offset
    return any(start < span_end and end > span_start for span_start, span_end in spans)


def _finish(
    input_ids: list[int], labels: list[int], max_length: int | None, stats: Stats | None
) -> dict | None:
    """Truncate to `max_length`; drop the row if no label survives; count what happened."""
    stats = stats if stats is not None else Stats()
    cut = max_length is not None and len(input_ids) > max_length
    if cut:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    if all(label == IGNORE for label in labels):
        stats.dropped_no_labels += 1
        return None
    stats.kept += 1
    stats.truncated += cut
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


# ---------------------------------------------------------------------------------- text


def encode_text(
    rows: Iterable[dict], tokenizer, max_length: int | None, stats: Stats | None = None
) -> dict[str, list]:
    """Pretraining blocks: each document's tokens followed by eos (so the model learns where
    a document ends), all concatenated and cut into blocks of `max_length` tokens. The last,
    shorter block is kept: dropping it could drop a small dataset whole. Every token is a
    label; `stats.kept` counts blocks."""
    if max_length is None or max_length < 2:
        raise TllmError("text pre-processing needs max_length (the block size) of at least 2")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise TllmError("this tokenizer has no end-of-sequence token to separate documents")
    stats = stats if stats is not None else Stats()
    stream: list[int] = []
    for row in rows:
        stream += tokenizer(row["text"], add_special_tokens=False)["input_ids"]
        stream.append(eos)
    blocks = [stream[at : at + max_length] for at in range(0, len(stream), max_length)]
    stats.kept += len(blocks)
    return {
        "input_ids": blocks,
        "attention_mask": [[1] * len(b) for b in blocks],
        "labels": [list(b) for b in blocks],
    }


# ------------------------------------------------------------------------------- seq2seq


def seq2seq_source(row: dict) -> str:
    """The encoder's input: the source alone, or for extractive QA the passage first and the
    question after a blank line ("context\\n\\nsource"), the order FLAN's templates use."""
    context = row.get("context")
    return f"{context}\n\n{row['source']}" if context else row["source"]


def encode_seq2seq(
    row: dict,
    tokenizer,
    max_length: int | None = None,
    max_target_length: int | None = None,
    stats: Stats | None = None,
) -> dict:
    """{"input_ids", "attention_mask", "labels"} for an encoder-decoder: the source with the
    tokenizer's own framing (T5 and BART close it with </s>), the target as labels (the model
    shifts them into decoder inputs itself). Targets are never empty, so no row is dropped;
    a row whose source or target was cut counts as truncated."""
    stats = stats if stats is not None else Stats()
    source = tokenizer(seq2seq_source(row), add_special_tokens=True)["input_ids"]
    target = tokenizer(text_target=row["target"], add_special_tokens=True)["input_ids"]
    cut = False
    if max_length is not None and len(source) > max_length:
        source, cut = source[:max_length], True
    target_limit = max_target_length or max_length
    if target_limit is not None and len(target) > target_limit:
        target, cut = target[:target_limit], True
    stats.kept += 1
    stats.truncated += cut
    return {"input_ids": source, "attention_mask": [1] * len(source), "labels": target}


# ------------------------------------------------------------------------ classification


def label_names(rows: Iterable[dict]) -> list[str]:
    """The classes of a classification dataset, sorted: the same dataset always gives the
    same label ids, whatever its row order (the index is the model's class id)."""
    names = sorted({row["label"] for row in rows})
    if len(names) < 2:
        raise TllmError(
            f"a classifier needs at least two labels; this dataset has {len(names)}"
            + (f" ({names[0]!r})" if names else "")
        )
    return names


def encode_classification(
    row: dict,
    tokenizer,
    labels: list[str],
    max_length: int | None = None,
    stats: Stats | None = None,
) -> dict:
    """{"input_ids", "attention_mask", "labels"} for a classifier: the text with the
    tokenizer's framing ([CLS] ... [SEP] for BERT) and the label's index in `labels`."""
    stats = stats if stats is not None else Stats()
    try:
        label = labels.index(row["label"])
    except ValueError:
        raise TllmError(
            f"label {row['label']!r} is not one of the model's labels: {', '.join(labels)}"
        ) from None
    ids = tokenizer(row["text"], add_special_tokens=True)["input_ids"]
    limit = max_length if max_length is not None else len(ids)
    cut = len(ids) > limit
    if cut:  # keep the closing [SEP]/</s> a classifier reads its summary next to
        ids = ids[: limit - 1] + ids[-1:] if tokenizer.sep_token_id == ids[-1] else ids[:limit]
    stats.kept += 1
    stats.truncated += cut
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": label}


# -------------------------------------------------------------------------- one entry


def encode_rows(
    kind: str,
    rows: Iterable[dict],
    tokenizer,
    max_length: int | None = None,
    stats: Stats | None = None,
    labels: list[str] | None = None,
    max_target_length: int | None = None,
) -> list[dict]:
    """The examples of `rows` of dataset `kind`, as a list of dicts (dropped rows left out,
    counted in `stats`). Classification needs `labels` (from `label_names`)."""
    stats = stats if stats is not None else Stats()
    if kind == "text":
        blocks = encode_text(rows, tokenizer, max_length, stats)
        return [dict(zip(blocks, values)) for values in zip(*blocks.values())]
    if kind == "chat":
        examples = (encode_chat(row, tokenizer, max_length, stats) for row in rows)
    elif kind == "seq2seq":
        examples = (
            encode_seq2seq(row, tokenizer, max_length, max_target_length, stats) for row in rows
        )
    elif kind == "classification":
        if labels is None:
            raise TllmError("classification pre-processing needs the label list (label_names)")
        examples = (
            encode_classification(row, tokenizer, labels, max_length, stats) for row in rows
        )
    else:
        raise TllmError(
            f"{kind} rows are not tokenized here: the preference and feedback "
            "trainers take their rows as they are"
        )
    return [example for example in examples if example is not None]


def encode_batch(
    batch: dict[str, list],
    kind: str,
    tokenizer,
    max_length: int | None = None,
    stats: Stats | None = None,
    labels: list[str] | None = None,
    max_target_length: int | None = None,
) -> dict[str, list]:
    """`encode_rows` for `datasets.Dataset.map(batched=True)`: a batch of columns in, columns
    out (fewer or more rows than came in; pass `remove_columns=dataset.column_names`).
    When every row is dropped, datasets returns 0 rows that keep the *old* columns: check
    `stats.kept` (or the length), not the column names."""
    names = list(batch)
    rows = [dict(zip(names, values)) for values in zip(*batch.values())]
    examples = encode_rows(kind, rows, tokenizer, max_length, stats, labels, max_target_length)
    return {column: [example[column] for example in examples] for column in COLUMNS}

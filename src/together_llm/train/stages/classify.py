"""classify: a classification head on an encoder (BERT, RoBERTa, DeBERTa...) or on a decoder
(which reads its last real token), trained on `classification` datasets.

The classes are the dataset's labels, sorted (inputs/encode.label_names), so the same
data always gives the same class ids; they are written into the model's config (id2label)
and into the adapter's card. With a PEFT method the new head is trained whole and saved with
the adapter (PEFT's modules_to_save), so `PeftModel.from_pretrained` on
`AutoModelForSequenceClassification(num_labels=len(labels))` gives the classifier back."""

from __future__ import annotations

from ..inputs.encode import encode_rows
from .base import Stage


def encode(rows, tokenizer, max_length: int, stats, labels=None) -> list[dict]:
    return encode_rows("classification", rows, tokenizer, max_length, stats, labels=labels)


STAGE = Stage("classify", ("classification",), "classify", "a classification head", encode=encode)

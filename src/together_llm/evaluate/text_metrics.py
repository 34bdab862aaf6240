"""Scores of generated answers against reference answers: ROUGE, BLEU, chrF, and SQuAD's exact
match and token F1.

Every function takes a list of predictions and a list of references, one per prediction,
where a reference is a string or a list of strings (any of them counts as right). All scores
are on a 0-100 scale, as sacrebleu and SQuAD's official script report them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from ..errors import TllmError

Reference = str | Sequence[str]


def _as_lists(predictions: Sequence[str], references: Sequence[Reference]) -> list[list[str]]:
    """The references of each prediction as a non-empty list, after checking the pairing."""
    if len(predictions) != len(references):
        raise TllmError(
            f"{len(predictions)} predictions but {len(references)} references: "
            "each prediction needs its reference(s)"
        )
    if not predictions:
        raise TllmError("no predictions to score")
    lists = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
    for i, refs in enumerate(lists):
        if not refs or not all(isinstance(ref, str) for ref in refs):
            raise TllmError(f"reference {i} must be a string or a non-empty list of strings")
    return lists


# ---------------------------------------------------------------------------------- ROUGE

# Scripts written without spaces: each character is a word of its own.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_UNICODE_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


class _UnicodeTokenizer:
    """Lowercased word runs, CJK characters one by one. rouge-score's own tokenizer keeps
    only [a-z0-9], which would score any non-English answer 0."""

    def tokenize(self, text: str) -> list[str]:
        return _UNICODE_TOKEN.findall(text.lower())


def _has_non_ascii_letter(text: str) -> bool:
    # Curly quotes or dashes do not count: the standard tokenizer drops those harmlessly.
    return any(ch.isalpha() and not ch.isascii() for ch in text)


def rouge(predictions: Sequence[str], references: Sequence[Reference]) -> dict:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (rouge-score, Porter stemming); against
    several references, each prediction keeps its best reference per measure.

    English (ASCII) text goes through rouge-score's standard tokenizer, so figures compare
    with published ones; when any text holds other characters, the whole corpus uses a
    Unicode word tokenizer without stemming instead, named in `tokenizer`."""
    from rouge_score import rouge_scorer

    lists = _as_lists(predictions, references)
    texts = list(predictions) + [ref for refs in lists for ref in refs]
    unicode = any(_has_non_ascii_letter(text) for text in texts)
    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(
        list(kinds), use_stemmer=not unicode, tokenizer=_UnicodeTokenizer() if unicode else None
    )
    sums = dict.fromkeys(kinds, 0.0)
    for prediction, refs in zip(predictions, lists):
        scores = [scorer.score(ref, prediction) for ref in refs]  # score(target, prediction)
        for kind in kinds:
            sums[kind] += max(score[kind].fmeasure for score in scores)
    result: dict[str, float | str] = {
        kind: 100 * total / len(predictions) for kind, total in sums.items()
    }
    result["tokenizer"] = "unicode" if unicode else "rouge-score"
    return result


# ------------------------------------------------------------------------- BLEU and chrF


def _reference_streams(lists: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference slot; a prediction with fewer references
    than the most fills its spare slots with None, which sacrebleu skips."""
    width = max(len(refs) for refs in lists)
    return [[refs[k] if k < len(refs) else None for refs in lists] for k in range(width)]


def bleu(
    predictions: Sequence[str], references: Sequence[Reference], tokenize: str | None = None
) -> float:
    """Corpus BLEU (sacrebleu, its default 13a tokenizer; "zh", "ja-mecab", "char" and others
    by name)."""
    import sacrebleu

    streams = _reference_streams(_as_lists(predictions, references))
    extra = {"tokenize": tokenize} if tokenize else {}
    # sacrebleu skips None references (its docs say so) but types every reference as str
    return sacrebleu.corpus_bleu(list(predictions), streams, **extra).score  # type: ignore[arg-type]


def chrf(predictions: Sequence[str], references: Sequence[Reference]) -> float:
    """Corpus chrF (sacrebleu: character 6-grams, beta 2); needs no word tokenizer, so it
    suits any language."""
    import sacrebleu

    streams = _reference_streams(_as_lists(predictions, references))
    # sacrebleu skips None references (its docs say so) but types every reference as str
    return sacrebleu.corpus_chrf(list(predictions), streams).score  # type: ignore[arg-type]


# ------------------------------------------------------------------------ SQuAD EM and F1

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalization: lowercase, drop ASCII punctuation, drop the articles
    a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_one(prediction: str, reference: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(reference)


def token_f1_one(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall over the normalized words (each shared
    word counted as often as it occurs in both). When either side normalizes to nothing,
    1 if both do, else 0 (SQuAD 2.0's rule for "no answer")."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(predictions: Sequence[str], references: Sequence[Reference]) -> float:
    """Percentage of predictions equal to one of their references after normalization."""
    lists = _as_lists(predictions, references)
    hits = sum(any(exact_match_one(p, r) for r in refs) for p, refs in zip(predictions, lists))
    return 100 * hits / len(predictions)


def token_f1(predictions: Sequence[str], references: Sequence[Reference]) -> float:
    """Mean over predictions of the best token F1 against their references, 0-100."""
    lists = _as_lists(predictions, references)
    best = [max(token_f1_one(p, r) for r in refs) for p, refs in zip(predictions, lists)]
    return 100 * sum(best) / len(best)

"""`tllm data clean`: each rule does what it says, and nothing disappears without a trace."""

from __future__ import annotations

import json
import random

import pytest

from tests.conftest import run_tllm
from together_llm.data.clean import CleanSettings, clean_dataset, normalize_whitespace
from together_llm.data.store import DatasetWriter, open_dataset
from together_llm.errors import TllmError


def make(home, name, rows, kind="text"):
    with DatasetWriter(home, name, kind, source="test", format="test", overwrite=True) as out:
        for row in rows:
            out.add(row)
        out.commit()
    return open_dataset(home, name)


def texts(rows):
    return [{"text": t} for t in rows]


def clean(home, rows, kind="text", **settings):
    """Clean `rows` and return (kept rows, {line: rejection}, card)."""
    make(home, "src", rows, kind)
    card = clean_dataset(home, "src", "dst", CleanSettings(**settings), overwrite=True)
    dst = open_dataset(home, "dst")
    return list(dst.rows()), {r["line"]: r for r in dst.rejected()}, card


def paragraph(rng: random.Random, words: int = 60) -> str:
    """A paragraph of made-up words: distinct paragraphs share little but short letter runs."""

    def word():
        return "".join(rng.choice("abcdefghijklmnoprstuvwy") for _ in range(rng.randint(3, 9)))

    return " ".join(word() for _ in range(words)) + "."


# --- rewriting -------------------------------------------------------------------------------


def test_mojibake_is_repaired_and_counted(home):
    kept, rejected, card = clean(
        home, texts(["Un cafÃ© et un croissant, sâ€™il vous plaÃ®t.", "Nothing to repair here."])
    )
    assert kept[0]["text"] == "Un café et un croissant, s’il vous plaît."
    assert kept[1]["text"] == "Nothing to repair here."
    assert card["modified_by_rule"]["fix unicode"] == 1
    assert not rejected


def test_unicode_repair_can_be_turned_off(home):
    kept, _, card = clean(home, texts(["cafÃ© crème"]), fix_unicode=False)
    assert kept[0]["text"] == "cafÃ© crème"
    assert "fix unicode" not in card["modified_by_rule"]


def test_repair_keeps_quotes_and_fullwidth_punctuation(home):
    kept, _, card = clean(home, texts(["你好，世界。 “Quoted” text &amp; more"]))
    assert kept[0]["text"] == "你好，世界。 “Quoted” text &amp; more"
    assert card["modified_by_rule"] == {"fix unicode": 0, "normalize whitespace": 0}


def test_whitespace_normalisation_keeps_lines_and_indentation():
    messy = "  Steps:\r\n- one   item\t\there  \r\n- two\n\n\n\n\ndef f(x):\n    return  x  \n\n  "
    assert (
        normalize_whitespace(messy) == "Steps:\n- one item here\n- two\n\ndef f(x):\n    return x"
    )


@pytest.mark.parametrize(
    "kind,row",
    [
        (
            "chat",
            {
                "messages": [
                    {"role": "system", "content": " be  brief "},
                    {"role": "user", "content": "hi  there "},
                    {"role": "assistant", "content": "\n hello \n"},
                ]
            },
        ),
        (
            "preference",
            {
                "prompt": [{"role": "user", "content": " which  one? "}],
                "chosen": "this  one ",
                "rejected": " that\t one",
            },
        ),
        (
            "feedback",
            {
                "prompt": [{"role": "user", "content": " hi   "}],
                "completion": " hey  you ",
                "label": False,
            },
        ),
        ("classification", {"text": " great   film ", "label": " positive "}),
        (
            "seq2seq",
            {"source": " a   question ", "target": " an  answer ", "context": "  the  passage "},
        ),
    ],
)
def test_rewriting_touches_every_text_field(home, kind, row):
    kept, _, card = clean(home, [row], kind=kind)

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from strings(v) if k != "role" else ()
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    found = list(strings(kept[0]))
    assert len(found) == len(list(strings(row)))
    assert all(s == " ".join(s.split()) for s in found), found
    assert card["modified_by_rule"]["normalize whitespace"] == 1
    if kind == "feedback":
        assert kept[0]["label"] is False


def test_a_row_made_invalid_by_cleaning_is_rejected_not_lost(home):
    row = {
        "prompt": [{"role": "user", "content": "Say it"}],
        "chosen": "yes  indeed",
        "rejected": "yes indeed",
    }
    kept, rejected, card = clean(home, [row], kind="preference")
    assert kept == []
    assert rejected[1]["reason"] == "invalid after cleaning"
    assert rejected[1]["detail"].startswith("identical answers: ")
    assert rejected[1]["row"] == row  # the row as it was in the source
    assert card["removed_by_rule"]["invalid after cleaning"] == 1


# --- filters ---------------------------------------------------------------------------------


def test_length_bounds_in_characters(home):
    kept, rejected, card = clean(
        home, texts(["tiny", "just the right length", "x" * 60]), min_chars=10, max_chars=40
    )
    assert kept == [{"text": "just the right length"}]
    assert (rejected[1]["reason"], rejected[1]["detail"]) == ("min chars", "4 characters < 10")
    assert (rejected[3]["reason"], rejected[3]["detail"]) == ("max chars", "60 characters > 40")
    assert card["removed_by_rule"] == card["rejected_by_reason"] == {"min chars": 1, "max chars": 1}


def test_length_bounds_in_tokens_use_the_base_models_tokenizer(home):
    from llama_cpp import Llama

    from together_llm.models.registry import get_model

    vocab = Llama(
        model_path=str(get_model(home, "default").gguf_path), vocab_only=True, verbose=False
    )
    rng = random.Random(1)
    rows = ["Hello there.", paragraph(rng, 12), paragraph(rng, 200)]
    counts = [len(vocab.tokenize(t.encode(), add_bos=False, special=False)) for t in rows]
    assert counts[0] < 10 < counts[1] < 100 < counts[2]  # the fixture spans both bounds
    kept, rejected, card = clean(home, texts(rows), min_tokens=10, max_tokens=100)
    assert kept == [{"text": rows[1]}]
    assert (rejected[1]["reason"], rejected[1]["detail"]) == (
        "min tokens",
        f"{counts[0]} tokens < 10",
    )
    assert (rejected[3]["reason"], rejected[3]["detail"]) == (
        "max tokens",
        f"{counts[2]} tokens > 100",
    )
    assert card["removed_by_rule"] == {"min tokens": 1, "max tokens": 1}


@pytest.mark.slow
def test_token_bounds_with_a_transformers_tokenizer(home, tmp_path):
    from transformers import AutoTokenizer

    from tests.tiny_models import make_tiny_model
    from together_llm.models.registry import add_model

    add_model(home, "tiny", str(make_tiny_model("gpt2", tmp_path / "tiny")))
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tiny")
    rows = ["The cat sat.", "The cat sat on the mat and looked at the moon."]
    counts = [len(tokenizer.encode(t, add_special_tokens=False)) for t in rows]
    assert counts[0] < 6 < counts[1]
    kept, rejected, _ = clean(home, texts(rows), min_tokens=6, tokenizer="tiny")
    assert kept == [{"text": rows[1]}]
    assert rejected[1]["detail"] == f"{counts[0]} tokens < 6"


def test_regex_drop_and_keep(home):
    rows = texts(
        [
            "As an AI language model, I cannot do that.",
            "Paris is the capital of France.",
            "Berlin is the capital of Germany.",
            "Water boils at 100 degrees.",
        ]
    )
    kept, rejected, card = clean(home, rows, drop=["(?i)as an ai"], keep=["capital", "boils"])
    assert [r["text"] for r in kept] == [r["text"] for r in rows[1:]]
    assert (rejected[1]["reason"], rejected[1]["detail"]) == (
        "drop pattern",
        "matches '(?i)as an ai'",
    )

    kept, rejected, _ = clean(home, rows, keep=["capital"])
    assert len(kept) == 2
    assert (rejected[4]["reason"], rejected[4]["detail"]) == (
        "keep pattern",
        "matches none of 'capital'",
    )


def test_a_bad_regex_is_named(home):
    make(home, "src", texts(["a row"]))
    with pytest.raises(TllmError, match=r"bad --drop pattern '\(unclosed'"):
        clean_dataset(home, "src", "dst", CleanSettings(drop=["(unclosed"]))
    assert not (home.path / "datasets" / "dst").exists()


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"min_chars": 50, "max_chars": 10}, "--min-chars 50 is larger than --max-chars 10"),
        ({"max_tokens": -1}, "for --max-tokens: must be at least 0"),
        ({"dedup": True, "near_dup_threshold": 0}, "for --near-dup-threshold: must be above 0"),
        ({"num_perm": 8}, "for --num-perm: must be at least 16"),
    ],
)
def test_impossible_settings_are_refused(home, settings, message):
    make(home, "src", texts(["a row"]))
    with pytest.raises(TllmError, match=message):
        clean_dataset(home, "src", "dst", CleanSettings(**settings))


ENGLISH = "The weather was lovely this morning, so we walked along the river to the old market."
FRENCH = "Le temps était magnifique ce matin, alors nous avons marché le long de la rivière."
GERMAN = "Das Wetter war heute Morgen herrlich, also sind wir am Fluss entlang zum Markt gegangen."


def test_language_filter(home):
    kept, rejected, card = clean(
        home, texts([ENGLISH, FRENCH, GERMAN, "12345 678 !!!"]), lang=["en", "de"]
    )
    assert [r["text"] for r in kept] == [ENGLISH, GERMAN]
    assert (rejected[2]["reason"], rejected[2]["detail"]) == (
        "language",
        "detected fr, wanted en, de",
    )
    assert (rejected[4]["reason"], rejected[4]["detail"]) == (
        "language",
        "no language detected, wanted en, de",
    )
    assert card["removed_by_rule"]["language"] == 2


def test_an_unknown_language_code_is_refused(home):
    make(home, "src", texts([ENGLISH]))
    with pytest.raises(TllmError, match="unknown language code 'english'"):
        clean_dataset(home, "src", "dst", CleanSettings(lang=["english"]))


# --- deduplication ---------------------------------------------------------------------------


def test_exact_duplicates_keep_the_first(home):
    rows = texts(
        ["First row here.", "Second   row here.", "Second row here.", "Third.", "First row here."]
    )
    kept, rejected, card = clean(home, rows, dedup=True)
    assert [r["text"] for r in kept] == ["First row here.", "Second row here.", "Third."]
    assert (rejected[3]["reason"], rejected[3]["detail"]) == ("duplicate", "same as line 2")
    assert rejected[5]["detail"] == "same as line 1"
    assert card["removed_by_rule"]["duplicate"] == 2


def test_planted_near_duplicates_are_removed_and_distinct_rows_kept(home):
    rng = random.Random(7)
    distinct = [paragraph(rng) for _ in range(40)]

    def edited(text, positions):
        words = text.split()
        for i in positions:
            words[i] = "changed"
        return " ".join(words)

    rows = list(distinct)
    rows.insert(24, edited(distinct[2], [5]))  # line 25: row 3 with one word changed
    rows.append(edited(distinct[16], [10, 40]))  # line 42: row 17 with two words changed
    kept, rejected, card = clean(home, texts(rows), dedup=True)

    assert [r["text"] for r in kept] == distinct
    assert set(rejected) == {25, 42}
    for line, original in ((25, 3), (42, 17)):
        assert rejected[line]["reason"] == "near duplicate"
        detail = rejected[line]["detail"]
        assert detail.startswith(f"like line {original}, similarity ")
        assert 0.8 <= float(detail.rsplit(" ", 1)[1]) < 1
    assert card["removed_by_rule"] == {"duplicate": 0, "near duplicate": 2}
    assert card["rejected_by_reason"] == {"near duplicate": 2}


def test_a_stricter_threshold_keeps_a_two_word_edit(home):
    rng = random.Random(3)
    base = paragraph(rng, 30)
    words = base.split()
    words[3], words[20] = "changed", "altered"
    kept, _, _ = clean(home, texts([base, " ".join(words)]), dedup=True, near_dup_threshold=0.99)
    assert len(kept) == 2
    kept, _, _ = clean(home, texts([base, " ".join(words)]), dedup=True, near_dup=False)
    assert len(kept) == 2


def test_the_same_text_with_another_label_is_not_a_duplicate(home):
    rows = [
        {"text": "It was fine, I guess.", "label": "positive"},
        {"text": "It was fine, I guess.", "label": "negative"},
        {"text": "It was fine, I guess.", "label": "positive"},
    ]
    kept, rejected, _ = clean(home, rows, kind="classification", dedup=True)
    assert kept == rows[:2]
    assert rejected[3]["detail"] == "same as line 1"


# --- the card and the command ----------------------------------------------------------------


def test_card_records_source_settings_and_counts(home):
    source = make(home, "src", texts(["cafÃ©", "a row long enough", "a row long enough", "short"]))
    card = clean_dataset(home, "src", "dst", CleanSettings(min_chars=6, dedup=True))
    assert card["kind"] == "text"
    assert card["cleaned_from"] == {
        "name": "src",
        "fingerprint": source.card["fingerprint"],
        "rows": 4,
    }
    assert card["clean_settings"]["min_chars"] == 6 and card["clean_settings"]["dedup"] is True
    assert card["rules"] == [
        "fix unicode",
        "normalize whitespace",
        "min chars",
        "duplicate",
        "near duplicate",
    ]
    assert card["removed_by_rule"] == {"min chars": 2, "duplicate": 1, "near duplicate": 0}
    assert card["modified_by_rule"] == {"fix unicode": 1, "normalize whitespace": 0}
    assert card["rows"] == 1 and card["rejected"] == 3
    assert open_dataset(home, "dst").card == card


def test_cli_clean_prints_a_table_and_json(home):
    make(home, "src", texts(["one row", "one row", "another row", "x"]))
    result = run_tllm(
        "data", "clean", "src", "--dedup", "--min-chars", "2", "--out", "dst", home=home
    )
    assert result.returncode == 0, result.stderr
    assert "kept 2 of 4 rows, removed 2" in result.stdout
    assert any(line.split() == ["duplicate", "-", "1"] for line in result.stdout.splitlines())

    result = run_tllm(
        "data", "clean", "src", "--drop", "another", "--out", "dst2", "--json", home=home
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["removed_by_rule"] == {"drop pattern": 1}

    result = run_tllm("data", "clean", "src", "--keep", "[a-", "--out", "dst3", home=home)
    assert result.returncode == 1
    assert "bad --keep pattern '[a-'" in result.stderr

    result = run_tllm("data", "clean", "src", "--out", "src", home=home)
    assert result.returncode == 1 and "new name" in result.stderr

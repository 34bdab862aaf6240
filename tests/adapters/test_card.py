"""The adapter card as a type (adapters/card.py): the cards the writers wrote as plain dicts
before it read back whole and are written again key for key, in their order; unknown keys,
odd values and nulls survive; `tllm adapters show` prints what it printed."""

import copy
import json

import pytest
from click.testing import CliRunner

from tests.adapters.test_adapters_cli import make_adapter
from together_llm.adapters.card import AdapterCard, Evolved, Federated, Imported, Merged
from together_llm.adapters.merge import merged_card
from together_llm.cli.adapters import adapters
from together_llm.together.lineage import ancestors, lineage_lines

# Each as its writer wrote it before the type (the dict literals of train/run.py with
# save.py's name and created, together/apps.py, adapters/merge.py, together/evolve/run.py
# and adapters/exchange.py).
TRAINED = {
    "name": "sounds",
    "created": "2025-05-01T10:00:00",
    "base": "tiny",
    "base_fingerprint": "0123456789abcdef",
    "stage": "classify",
    "method": "lora",
    "data": "sounds",
    "data_fingerprint": None,  # a dataset without one: written as null
    "steps": 10,
    "metrics": {"train_loss": 0.5, "eval_loss": None, "eval_accuracy": 0.75},
    "run_id": "sounds-20250501-100000",
    "provenance": "local",
    "labels": ["farm", "pet"],
    "reward": "judge",
}
FEDERATED = {
    "name": "shared",
    "created": "2025-05-01T11:00:00",
    "base": "tiny",
    "base_fingerprint": "0123456789abcdef",
    "stage": "sft",
    "method": "lora",
    "rank": 8,
    "data": "mine",
    "steps": 20,
    "metrics": {"eval_loss": 1.25},
    "provenance": "federated",
    "federated": {
        "run_id": "shared-1",
        "rounds": 2,
        "peers": ["peer-1", "peer-2"],
        "strategy": "fedavg",
        "aggregate": "lora-exact",
        "local_steps": 10,
        "freeze_a": False,
        "transport": "fp32",
        "dp": None,
    },
}
MERGED = {
    "name": "both",
    "created": "2025-05-01T12:00:00",
    "base": "tiny",
    "base_fingerprint": "0123456789abcdef",
    "stage": None,  # parents of different stages
    "method": "lora",
    "rank": 16,
    "provenance": "merged",
    "merge": {"method": "linear", "weights": [0.5, 0.5], "density": None},
    "parents": [
        {
            "name": "dare",
            "created": "2025-05-01T11:30:00",
            "provenance": "merged",
            "merge": {"method": "dare_ties", "weights": [0.7, 0.3], "density": 0.8, "seed": 3},
            "parents": [
                {
                    "name": "first",
                    "created": "x",
                    "data": "first",
                    "steps": 100,
                    "provenance": "local",
                },
                {
                    "name": "shared",
                    "created": "y",
                    "data": "mine",
                    "steps": 20,
                    "provenance": "federated",
                },
            ],
        },
        {"name": "sounds", "created": "z", "data": "sounds", "steps": 10, "provenance": "local"},
    ],
}
EVOLVED = {
    **MERGED,
    "name": "evolved",
    "stage": "sft",
    "provenance": "evolved",
    "evolve": {
        "run": "evolve-1",
        "generation": 2,
        "data": "quiz",
        "metric": "loss",
        "scores": {"loss": 0.5},
        "candidate": "g2-c1",
    },
}
IMPORTED = {  # import renames the card (keeping its place) and adds where it came from
    **FEDERATED,
    "name": "from-peer",
    "imported": {
        "from": "shared.tar",
        "sha256": "ab" * 32,
        "at": "2025-05-02T09:00:00",
        "name": "shared",
        "base": "default",
    },
}
WRITTEN = {
    "trained": TRAINED,
    "federated": FEDERATED,
    "merged": MERGED,
    "evolved": EVOLVED,
    "imported": IMPORTED,
}


@pytest.mark.parametrize("written", WRITTEN.values(), ids=WRITTEN.keys())
def test_old_cards_read_back_and_write_the_same_json(written):
    card = AdapterCard.from_dict(copy.deepcopy(written))
    assert json.dumps(card.to_dict()) == json.dumps(written)  # key for key, in order
    assert AdapterCard.from_dict(card.to_dict()) == card
    assert not card.extra  # everything they wrote has its field


def test_fields_and_sections_are_typed():
    merged = AdapterCard.from_dict(MERGED)
    assert (
        merged.stage is None
        and merged.rank == 16
        and merged.merge == Merged(method="linear", weights=[0.5, 0.5], density=None)
    )
    dare = (merged.parents or [])[0]
    assert isinstance(dare, AdapterCard) and dare.merge and dare.merge.seed == 3
    assert ancestors(merged) == ["dare", "sounds", "first", "shared"]
    assert lineage_lines("both", merged) == [
        "both  (linear merge, weights 0.5,0.5)",
        "├── dare  (dare_ties merge, weights 0.7,0.3; density 0.8)",
        "│   ├── first  (trained on first, 100 steps)",
        "│   └── shared  (trained on mine, 20 steps)",
        "└── sounds  (trained on sounds, 10 steps)",
    ]
    federated = AdapterCard.from_dict(FEDERATED).federated
    assert isinstance(federated, Federated) and federated.peers == ["peer-1", "peer-2"]
    assert AdapterCard.from_dict(EVOLVED).evolve == Evolved(
        run="evolve-1",
        generation=2,
        data="quiz",
        metric="loss",
        scores={"loss": 0.5},
        candidate="g2-c1",
    )
    imported = AdapterCard.from_dict(IMPORTED).imported
    assert isinstance(imported, Imported) and imported.source == "shared.tar"
    trained = AdapterCard.from_dict(TRAINED)
    assert trained.labels == ["farm", "pet"] and trained.data_name == "sounds"


def test_unknown_keys_odd_values_and_missing_keys():
    old = {
        "method": "lora",
        "stage": "sft",
        "base": "default",
        "data": {"name": "facts"},  # an old card's dataset
        "steps": "sixty",  # not an int: kept as it was, the field left unset
        "metrics": {"train_loss": 0.4},
        "merge": 5,
        "later": {"what": "a newer tllm wrote"},
    }
    card = AdapterCard.from_dict(copy.deepcopy(old))
    assert card.data_name == "facts" and card.steps is None and card.merge is None
    assert card.extra == {"steps": "sixty", "merge": 5, "later": old["later"]}
    assert card.name is None and card.base_fingerprint is None and card.parents is None
    written = card.to_dict()
    assert written == old  # nothing dropped, nothing added
    assert list(written) == [
        "base",
        "stage",
        "method",
        "data",
        "steps",
        "metrics",
        "merge",
        "later",
    ]
    assert AdapterCard.from_dict(written) == card
    assert AdapterCard().to_dict() == {}  # an adapter without a card shows nothing more

    section = Merged.from_dict({"method": "svd", "weights": [1, 1], "density": None, "new": 1})
    assert section.weights == [1, 1] and section.extra == {"new": 1}
    assert section.to_dict() == {"method": "svd", "weights": [1, 1], "density": None, "new": 1}


def test_nulls_are_written_only_while_the_field_is_unset():
    card = AdapterCard(stage="sft", nulls=frozenset({"stage", "data_fingerprint"}))
    assert card.to_dict() == {"stage": "sft", "data_fingerprint": None}
    assert AdapterCard.from_dict(card.to_dict()) == card


def test_merged_card_writes_what_the_dict_writer_wrote():
    parents = [AdapterCard.from_dict(TRAINED), AdapterCard.from_dict(FEDERATED)]
    card = merged_card("tiny", ["a", "b"], parents, "dare_linear", [0.5, 0.5], 0.7, 3, 8)
    lineage = ("created", "data", "steps", "provenance", "merge", "parents", "evolve")
    before = {  # merge.py's dict literal before the type
        "base": "tiny",
        "base_fingerprint": "0123456789abcdef",
        "stage": None,
        "method": "lora",
        "rank": 8,
        "provenance": "merged",
        "merge": {"method": "dare_linear", "weights": [0.5, 0.5], "density": 0.7, "seed": 3},
        "parents": [
            {"name": n, **{k: c[k] for k in lineage if k in c}}
            for n, c in zip(["a", "b"], [TRAINED, FEDERATED])
        ],
    }
    assert json.dumps(card.to_dict()) == json.dumps(before)
    one_stage = merged_card("tiny", ["a", "b"], parents[1:] * 2, "svd", [0.5, 0.5], None, 0, 8)
    assert one_stage.to_dict()["stage"] == "sft" and "seed" not in one_stage.to_dict()["merge"]


def test_show_prints_what_it_printed(home):
    """`tllm adapters show`, plain and --json, as it printed the card's dict before, and
    then which engine answers with the adapter and why."""
    runner = CliRunner()
    for name, written in (("sounds", TRAINED), ("both", MERGED)):
        folder = make_adapter(home, name, written)
        engine = "transformers (base tiny is not a model of this home)"  # which engine answers
        details = {"name": name, "path": str(folder), **written, "engine": engine}
        shown = runner.invoke(adapters, ["show", name, "--home", str(home.path)])
        assert shown.exit_code == 0, shown.output
        assert shown.output.splitlines() == [
            f"{key:<18} {json.dumps(v) if isinstance(v, (dict, list)) else v}"
            for key, v in details.items()
        ]
        as_json = runner.invoke(adapters, ["show", name, "--json", "--home", str(home.path)])
        assert as_json.output == json.dumps(details, indent=2) + "\n"


def test_a_fingerprint_that_is_not_text_is_refused_not_skipped(home):
    """A hand-edited card whose base_fingerprint is a number must not read as "not recorded",
    which would let the adapter load on any base."""
    from together_llm.adapters.store import adapter_dir
    from together_llm.errors import TllmError
    from together_llm.export.merge_into_base import check_adapter_fits

    folder = make_adapter(home, "odd", {**TRAINED, "base_fingerprint": 123})
    with pytest.raises(TllmError, match="'odd' has a damaged card.json"):
        adapter_dir(home, "odd", "0123456789abcdef")
    card = AdapterCard.read(folder / "card.json")
    with pytest.raises(TllmError, match="damaged card.json: base_fingerprint 123 is not text"):
        check_adapter_fits(folder, card, "tiny", "0123456789abcdef")
    assert adapter_dir(home, "odd") == folder  # asked for no base: nothing to check

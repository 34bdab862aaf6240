"""`tllm adapters merge`: two adapters taught disjoint fact sets (what four animals say,
and what four others say), merged, answer the union better than either parent alone, and
the merged card records where it came from.

What is measured: the mean cross-entropy of each set's answers ("The owl says hoot."),
tokens of the assistant turn only, as training scores them. The untrained base is at ~5.8
nats on both sets; each parent falls far below that on its own set and stays high on the
other one. What is asserted, for svd and ties merges with their default weights:
- on each set, the merged adapter is at least 0.5 nats better than the parent that did not
  learn that set;
- on each set, it keeps at least 70% of the gain (base loss - parent loss) of the parent
  that did learn it;
- over both sets, its mean loss is at least 0.1 nats below each parent's.
"""

import json
import shutil

import pytest
import torch

from tests.tiny_models import one_torch_thread
from tests.train.conftest import ANIMALS, chat_rows, write_dataset
from together_llm.adapters.merge import merge_adapters
from together_llm.errors import RefusedError, TllmError
from together_llm.home import Home

FIRST, SECOND = ANIMALS[:4], ANIMALS[4:]
# Targets as the train tests' LEARNABLE; a gentler rate than theirs keeps each parent's
# update moderate, the regime in which task vectors add up.
TRAINING = {
    "max_steps": 100,
    "batch_size": 4,
    "lr": 3e-3,
    "scheduler": "constant",
    "rank": 16,
    "target_modules": "q_proj,v_proj,lm_head",
    "base": "tiny",
}


@pytest.fixture(scope="module")
def parents(tmp_path_factory, tiny_llama):
    """A home with adapters `first` and `second`, each trained on one half of the animals."""
    from together_llm.models.registry import add_model
    from together_llm.train.recipe import load_recipe
    from together_llm.train.run import train_model

    home = Home.open(tmp_path_factory.mktemp("merge") / "home")
    add_model(home, "tiny", str(tiny_llama))
    with one_torch_thread():
        for name, facts in (("first", FIRST), ("second", SECOND)):
            write_dataset(home, name, "chat", chat_rows(facts))
            train_model(home, load_recipe(None, {"data": name, "name": name, **TRAINING}))
    return home


def answer_loss(tiny_llama, adapter_dir, facts) -> float:
    """Mean loss of the assistant's answers to `facts`, with the adapter (None: the base)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from together_llm.train.inputs.encode import encode_chat

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    losses = []
    for row in chat_rows(facts):
        encoded = encode_chat(row, tokenizer)
        ids, labels = torch.tensor([encoded["input_ids"]]), torch.tensor([encoded["labels"]])
        with torch.no_grad():
            losses.append(model(input_ids=ids, labels=labels).loss.item())
    return sum(losses) / len(losses)


@pytest.mark.parametrize("method", ["svd", "ties"])
def test_merged_adapter_knows_both_fact_sets(parents, tiny_llama, method):
    home = parents
    with one_torch_thread():
        card = merge_adapters(home, ["first", "second"], method, f"both-{method}").to_dict()

        def losses(adapter):
            folder = home.adapters_dir / adapter if adapter else None
            return [answer_loss(tiny_llama, folder, facts) for facts in (FIRST, SECOND)]

        base, first, second, merged = (
            losses(a) for a in (None, "first", "second", f"both-{method}")
        )
    report = f"base {base} first {first} second {second} merged {merged}"
    # Each parent learned its own set (sanity of the setup).
    assert first[0] < base[0] - 3 and second[1] < base[1] - 3, report
    # Better than the parent that never saw the set...
    assert merged[0] < second[0] - 0.5 and merged[1] < first[1] - 0.5, report
    # ...while keeping most of what the parent that saw it learned...
    assert base[0] - merged[0] >= 0.7 * (base[0] - first[0]), report
    assert base[1] - merged[1] >= 0.7 * (base[1] - second[1]), report
    # ...so that over both sets it answers better than either parent alone.
    assert sum(merged) / 2 < min(sum(first), sum(second)) / 2 - 0.1, report

    saved = json.loads((home.adapters_dir / f"both-{method}" / "card.json").read_text())
    assert saved == card
    first_card = json.loads((home.adapters_dir / "first" / "card.json").read_text())
    assert [p["name"] for p in card["parents"]] == ["first", "second"]
    assert card["parents"][0]["data"] == "first" and card["parents"][0]["steps"] == 100
    assert card["base_fingerprint"] == first_card["base_fingerprint"] and card["base"] == "tiny"
    assert card["provenance"] == "merged" and card["merge"]["method"] == method
    assert card["merge"]["weights"] == ([1.0, 1.0] if method == "ties" else [0.5, 0.5])
    assert card["merge"]["density"] == (0.5 if method == "ties" else None)
    assert card["stage"] == "sft" and card["rank"] == 16


def test_cli_merge_records_lineage(parents):
    """Through the command: a dare_ties merge with explicit weights, then a merge of that
    merge, whose card carries the whole lineage."""
    from click.testing import CliRunner

    from together_llm.cli.adapters import adapters

    home = parents
    runner = CliRunner()
    args = ["--home", str(home.path)]
    with one_torch_thread():
        result = runner.invoke(
            adapters,
            [
                "merge",
                "first",
                "second",
                "--method",
                "dare_ties",
                "--weights",
                "0.7,0.3",
                "--density",
                "0.8",
                "--seed",
                "3",
                "--name",
                "dare",
                *args,
            ],
        )
        assert result.exit_code == 0, result.output
        assert (
            "merged first, second with dare_ties (weights [0.7, 0.3]) into adapter dare"
            in result.output
        )
        result = runner.invoke(
            adapters, ["merge", "dare", "first", "--method", "linear", "--name", "grand", *args]
        )
        assert result.exit_code == 0, result.output
    card = json.loads(runner.invoke(adapters, ["show", "grand", "--json", *args]).output)
    assert card["merge"] == {"method": "linear", "weights": [0.5, 0.5], "density": None}
    dare = card["parents"][0]
    assert dare["name"] == "dare" and dare["provenance"] == "merged"
    assert dare["merge"] == {
        "method": "dare_ties",
        "weights": [0.7, 0.3],
        "density": 0.8,
        "seed": 3,
    }
    assert [p["name"] for p in dare["parents"]] == ["first", "second"]


def copy_adapter(home, source, name, config=None, card=None):
    """A copy of adapter `source` with edited adapter_config.json and card.json fields."""
    folder = home.adapters_dir / name
    shutil.copytree(home.adapters_dir / source, folder)
    for file, fields in (("adapter_config.json", config), ("card.json", card)):
        path = folder / file
        path.write_text(json.dumps({**json.loads(path.read_text()), **(fields or {})}))


def test_refusals_before_loading(parents, tmp_path):
    home = Home.open(tmp_path / "home")
    shutil.copytree(parents.adapters_dir, home.adapters_dir, dirs_exist_ok=True)
    shutil.copy(parents.models_dir / "registry.json", home.models_dir / "registry.json")
    copy_adapter(home, "first", "elsewhere", card={"base": "other", "base_fingerprint": "f" * 16})
    copy_adapter(home, "first", "rank4", config={"r": 4})
    copy_adapter(home, "first", "dora", config={"use_dora": True})
    copy_adapter(home, "first", "prompt", config={"peft_type": "PROMPT_TUNING"})
    copy_adapter(home, "first", "orphan", card={"base_fingerprint": None})
    before = sorted(p.name for p in home.adapters_dir.iterdir())
    cases = [
        (["first", "elsewhere"], "svd", {}, "trained on different base models"),
        (
            ["first", "rank4"],
            "linear",
            {},
            "linear merging needs adapters of one rank (these have ranks 16, 4); use svd or cat",
        ),
        (["first", "dora"], "svd", {}, "adapter 'dora' is DoRA"),
        (["first", "prompt"], "svd", {}, "adapter 'prompt' is 'PROMPT_TUNING'; only LoRA"),
        (["first", "orphan"], "svd", {}, "adapter 'orphan' has no base fingerprint"),
        (["first"], "svd", {}, "name at least two adapters"),
        (["first", "first"], "svd", {}, "an adapter is named twice"),
        (["first", "second"], "svd", {"weights": [1.0]}, "1 weights for 2 adapters"),
        (["first", "second"], "svd", {"density": 0.5}, "--density applies to ties, dare_ties"),
        (["first", "second"], "ties", {"density": 1.5}, "--density 1.5 is outside (0, 1]"),
        (["first", "second"], "average", {}, "unknown merge method 'average'"),
        (["first", "second"], "svd", {"name": "first"}, "cannot replace its parent 'first'"),
    ]
    for names, method, options, reason in cases:
        with pytest.raises(RefusedError) as refused:
            merge_adapters(home, names, method, options.pop("name", "merged"), **options)
        assert reason in str(refused.value)
    with pytest.raises(TllmError, match="unknown adapter 'ghost'"):
        merge_adapters(home, ["first", "ghost"], "svd", "merged")
    assert sorted(p.name for p in home.adapters_dir.iterdir()) == before

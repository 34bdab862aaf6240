"""The preference stages (dpo, orpo, kto, rm) on a tiny LLaMA: each moves its own measure
the right way on a small learnable preference, its adapter is plain PEFT, and bad data is
refused with a message that says what to do.

The preference: asked whether an animal makes its sound, answers that start "Yes" are
preferred over "No, it is silent." (dpo, orpo, rm), or marked good and bad (kto)."""

import json

import pytest
import torch

from together_llm.errors import TllmError
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train, train_model

from .conftest import ANIMALS, assert_same_adapters, write_dataset

# lm_head carries no adapter here: dpo and kto compute log-probabilities from its weight.
COMMON = {
    "max_steps": 12,
    "batch_size": 4,
    "logging_every": 2,
    "lr": 1e-2,
    "scheduler": "constant",
    "target_modules": "q_proj,v_proj",
}


def preference_rows() -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": f"Does the {animal} say {sound}?"}],
            "chosen": f"Yes, it says {sound}.",
            "rejected": "No, it is silent.",
        }
        for animal, sound in ANIMALS
    ]


def feedback_rows() -> list[dict]:
    good = [
        {"prompt": r["prompt"], "completion": r["chosen"], "label": True} for r in preference_rows()
    ]
    bad = [
        {"prompt": r["prompt"], "completion": r["rejected"], "label": False}
        for r in preference_rows()
    ]
    return good + bad  # all good first: the run must mix them


@pytest.fixture
def pref_home(tiny_home):
    write_dataset(tiny_home, "prefs", "preference", preference_rows())
    write_dataset(tiny_home, "thumbs", "feedback", feedback_rows())
    return tiny_home


def recipe(**fields):
    return load_recipe(
        None, {"data": "prefs", "name": fields.get("stage", "x"), **COMMON, **fields}
    )


def log_of(home, metrics) -> list[dict]:
    path = home.path / "runs" / metrics["run_id"] / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def completion_logps(model, tokenizer, prompt: list[dict], completions: list[str]) -> list[float]:
    """Summed log-probability of each assistant answer after `prompt`, as the model's chat
    template renders the conversation."""
    start = len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True)["input_ids"])
    found = []
    for text in completions:
        ids = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": text}])[
            "input_ids"
        ]
        ids = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        logps = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
        found.append(float(logps[start - 1 :].sum()))
    return found


def chat_tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    from together_llm.models.chat_template import DEFAULT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.chat_template = tokenizer.chat_template or DEFAULT_TEMPLATE  # as training rendered
    return tokenizer


def policy_margin(model, tokenizer) -> float:
    """Mean over the pairs of log p(chosen) - log p(rejected): the policy's own preference."""
    margins = []
    for row in preference_rows():
        chosen, rejected = completion_logps(
            model, tokenizer, row["prompt"], [row["chosen"], row["rejected"]]
        )
        margins.append(chosen - rejected)
    return sum(margins) / len(margins)


@pytest.mark.slow
def test_dpo_margin_grows_and_the_adapter_is_plain_peft(pref_home, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    metrics, trained = train_model(pref_home, recipe(stage="dpo"))
    margins = [r["rewards/margins"] for r in log_of(pref_home, metrics) if "rewards/margins" in r]
    assert len(margins) == 6 and margins[-1] > margins[0] + 0.1 and margins[-1] > 0, margins
    assert metrics["stage_metrics"]["rewards/margins"] == margins[-1]
    run = pref_home.path / "runs" / metrics["run_id"]
    assert (run / "plots" / "loss.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((run / "metrics.json").read_text())["steps"] == 12
    seen = json.loads((run / "progress.json").read_text())
    assert (seen["step"], seen["steps"]) == (12, 12)

    folder = pref_home.adapters_dir / "dpo"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "card.json",
    ]
    card = json.loads((folder / "card.json").read_text())
    assert (card["stage"], card["method"], card["data"], card["steps"]) == (
        "dpo",
        "lora",
        "prefs",
        12,
    )

    # Plain PEFT reproduces the trained policy, which prefers the chosen answers more than
    # the reference (the base, adapter off) does: the margin DPO optimises, measured here.
    tokenizer = chat_tokenizer(tiny_llama)
    reloaded = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_llama), folder
    ).eval()
    trained.eval()
    ids = tokenizer("Does the cow say moo? Yes, it says moo.", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(reloaded(**ids).logits, trained(**ids).logits, atol=1e-5)
    after = policy_margin(reloaded, tokenizer)
    with reloaded.disable_adapter():
        before = policy_margin(reloaded, tokenizer)
    assert after > before + 1.0, (before, after)


@pytest.mark.slow
def test_orpo_raises_the_log_odds_of_the_chosen_answers(pref_home):
    from together_llm.data.split import split_dataset

    split_dataset(pref_home, "prefs", 2, seed=0)
    # ORPO computes its logits the usual way, so LoRA on lm_head trains (and learns faster).
    metrics, _ = train_model(
        pref_home, recipe(stage="orpo", max_steps=10, target_modules="q_proj,v_proj,lm_head")
    )
    assert (metrics["examples"], metrics["eval_examples"]) == (6, 2)
    evals = [r for r in log_of(pref_home, metrics) if "eval_loss" in r]
    assert [r["step"] for r in evals] == [10] and metrics["eval_loss"] == evals[0]["eval_loss"]
    log = [r for r in log_of(pref_home, metrics) if "log_odds_ratio" in r]
    assert len(log) == 5
    assert log[-1]["log_odds_ratio"] > log[0]["log_odds_ratio"] + 0.1, log
    assert log[-1]["log_odds_chosen"] > 0  # chosen answers now likelier than rejected ones
    assert log[-1]["logps/chosen"] > log[-1]["logps/rejected"]
    assert (
        json.loads((pref_home.adapters_dir / "orpo" / "card.json").read_text())["stage"] == "orpo"
    )


@pytest.mark.slow
def test_kto_raises_the_good_answers_over_the_bad(pref_home, tiny_llama):
    metrics, trained = train_model(pref_home, recipe(stage="kto", data="thumbs", max_steps=16))
    assert metrics["examples"] == 16 and metrics["steps"] == 16
    trained.eval()
    tokenizer = chat_tokenizer(tiny_llama)

    def shift(model, label: bool) -> float:
        """Mean log-probability change (policy - reference) of the answers marked `label`."""
        total = []
        for row in feedback_rows():
            if row["label"] == label:
                policy = completion_logps(model, tokenizer, row["prompt"], [row["completion"]])[0]
                with model.disable_adapter():
                    reference = completion_logps(
                        model, tokenizer, row["prompt"], [row["completion"]]
                    )[0]
                total.append(policy - reference)
        return sum(total) / len(total)

    # Before training the adapter is zero: both shifts are 0. Good answers must now gain.
    assert shift(trained, True) - shift(trained, False) > 0.5


@pytest.mark.slow
def test_rm_learns_to_rank_the_pairs_and_reloads_with_plain_peft(pref_home, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from together_llm.train.stages import get_stage
    from together_llm.train.trl_trainer import check_stage_base as _check_base
    from together_llm.train.trl_trainer import load_model as _load

    tokenizer = chat_tokenizer(tiny_llama)

    def accuracy(model) -> float:
        """Fraction of the training pairs whose chosen conversation scores higher."""
        wins = 0
        for row in preference_rows():
            scores = []
            for answer in (row["chosen"], row["rejected"]):
                text = tokenizer.apply_chat_template(
                    row["prompt"] + [{"role": "assistant", "content": answer}], tokenize=False
                )
                with torch.no_grad():
                    scores.append(float(model(**tokenizer(text, return_tensors="pt")).logits[0, 0]))
            wins += scores[0] > scores[1]
        return wins / len(preference_rows())

    # The model the run starts from: the same seeded head (LoRA starts as a no-op).
    start = recipe(stage="rm", max_steps=16)
    config, task = _check_base(tiny_llama, start, get_stage("rm"))
    before = accuracy(_load(tiny_llama, config, start, task)[0].eval())

    metrics, trained = train_model(pref_home, recipe(stage="rm", max_steps=16))
    trained.eval()
    after = accuracy(trained)
    assert after == 1.0 and after > before, (before, after)
    accuracies = [r["accuracy"] for r in log_of(pref_home, metrics) if "accuracy" in r]
    assert accuracies[-1] == 1.0

    folder = pref_home.adapters_dir / "rm"
    base = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=1)
    base.config.pad_token_id = tokenizer.pad_token_id
    reloaded = PeftModel.from_pretrained(base, folder).eval()
    assert accuracy(reloaded) == 1.0  # the score head came back with the adapter
    ids = tokenizer(["Does the dog say woof? Yes, it says woof."], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(reloaded(**ids).logits, trained(**ids).logits, atol=1e-5)
    card = json.loads((folder / "card.json").read_text())
    assert (card["stage"], card["method"]) == ("rm", "lora")


@pytest.mark.slow
def test_cli_trains_a_reward_model(pref_home):
    from tests.conftest import run_tllm

    result = run_tllm(
        "train",
        "--data",
        "prefs",
        "--stage",
        "rm",
        "--name",
        "judge",
        "--max-steps",
        "2",
        "--target-modules",
        "q_proj,v_proj",
        "--json",
        home=pref_home,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)  # nothing but the metrics on stdout
    assert (metrics["stage"], metrics["steps"]) == ("rm", 2)
    assert (pref_home.adapters_dir / "judge" / "card.json").is_file()


def test_wrong_kind_is_refused_naming_the_kinds(pref_home):
    with pytest.raises(
        TllmError,
        match="stage dpo trains on preference datasets; dataset 'sounds' "
        r"is chat \(chat data trains with --stage sft or seq2seq or rl\)",
    ):
        train(pref_home, recipe(stage="dpo", data="sounds"))
    with pytest.raises(
        TllmError,
        match="stage kto trains on feedback datasets; dataset 'prefs' is "
        "preference .*--stage dpo or orpo or rm",
    ):
        train(pref_home, recipe(stage="kto"))
    assert not (pref_home.path / "runs").exists() or not list((pref_home.path / "runs").iterdir())


def test_kto_needs_both_good_and_bad_rows(pref_home):
    good = [r for r in feedback_rows() if r["label"]]
    write_dataset(pref_home, "only-good", "feedback", good)
    with pytest.raises(
        TllmError,
        match="every row of dataset 'only-good' is desirable: add some "
        r"undesirable \(label false\) rows",
    ):
        train(pref_home, recipe(stage="kto", data="only-good"))
    assert not (pref_home.path / "runs").exists() or not list((pref_home.path / "runs").iterdir())


@pytest.mark.slow
def test_an_interrupted_dpo_run_resumes_to_the_same_adapter(pref_home):
    from together_llm.train.stopping import Interrupted

    common = {"stage": "dpo", "max_steps": 6, "save_every": 0, "scheduler": "cosine"}
    whole = train(pref_home, recipe(name="whole", **common))
    with pytest.raises(Interrupted, match="saved a checkpoint at step 4 of 6.*--resume"):
        train(pref_home, recipe(name="parts", **common), stop_after=4)
    assert not (pref_home.adapters_dir / "parts").exists()
    messages = []
    resumed = train(
        pref_home, recipe(name="parts", resume="true", **common), report=messages.append
    )
    assert any("from step 4" in m for m in messages)
    assert resumed["steps"] == whole["steps"] == 6
    log, whole_log = log_of(pref_home, resumed), log_of(pref_home, whole)
    assert [r["step"] for r in log] == [2, 4, 6]
    assert [r["learning_rate"] for r in log] == pytest.approx(
        [r["learning_rate"] for r in whole_log]
    )
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in whole_log], rel=1e-4)
    assert_same_adapters(pref_home, "whole", "parts", atol=1e-5)


def test_orpo_refuses_methods_that_prepend_virtual_tokens(pref_home):
    with pytest.raises(
        TllmError,
        match="--stage orpo cannot train with --method prompt: .*"
        "methods that work: full, lora, qlora, prefix",
    ):
        train(pref_home, recipe(stage="orpo", method="prompt"))


def test_kto_needs_micro_batches_of_two(pref_home):
    with pytest.raises(TllmError, match="use --batch-size 2 or more"):
        train(pref_home, recipe(stage="kto", data="thumbs", batch_size=1))


@pytest.mark.slow
def test_rows_too_long_for_max_length_are_refused_not_trained_on(pref_home):
    with pytest.raises(
        TllmError,
        match=r"every row of dataset 'prefs' \(8\) is too long for "
        "max_length 8 once rendered: nothing to learn",
    ):
        train(pref_home, recipe(stage="dpo", max_length=8))
    assert list((pref_home.path / "runs").iterdir()) == []  # no half-made run to resume


@pytest.mark.slow
def test_dpo_goes_on_from_an_adapter_given_with_start_from(pref_home):
    """--start-from on a TRL stage: the run starts at the adapter's weights, which already
    prefer the chosen answers (as tllm improve's dpo after sft does). TRL then takes the
    starting adapter as the reference, so the policy's own log-probabilities tell."""
    first, _ = train_model(pref_home, recipe(stage="dpo", name="first"))
    slow = {"max_steps": 2, "lr": 1e-7}
    going_on, _ = train_model(
        pref_home, recipe(stage="dpo", name="more", start_from="first", **slow)
    )
    fresh, _ = train_model(pref_home, recipe(stage="dpo", name="fresh", **slow))

    def prefers(metrics) -> float:
        """log p(chosen) - log p(rejected) of the policy at its first logged step."""
        row = next(r for r in log_of(pref_home, metrics) if "logps/chosen" in r)
        return row["logps/chosen"] - row["logps/rejected"]

    assert prefers(going_on) > prefers(fresh) + 2.0, (prefers(going_on), prefers(fresh))
    config = json.loads((pref_home.adapters_dir / "more" / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    # kto goes on the same way (improve runs it after dpo on the person's ratings)
    kto, _ = train_model(
        pref_home, recipe(stage="kto", data="thumbs", name="k", start_from="more", **slow)
    )
    assert (
        kto["steps"] == 2 and (pref_home.adapters_dir / "k" / "adapter_model.safetensors").is_file()
    )

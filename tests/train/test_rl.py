"""rl on a tiny LLaMA, against a reward model our own rm stage trains: the mean reward of
the policy's samples rises (grpo and rloo), the adapter is plain PEFT, and a reward model
that cannot work, or data of the wrong kind, is refused before anything loads.

The preference: answers with more "~" in them. Each pair is one random string with the
mark in more places (chosen) or fewer (rejected), so the judge learns to count marks and to
ignore the rest; a random policy writes "~" now and then, so sampling finds the reward.
"""

import json
import random

import pytest
import torch

from together_llm.errors import TllmError
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train, train_model

from .conftest import assert_same_adapters, saved_adapter, write_dataset

MARK = "~"
FILLER = "abcdefghijklmnopqrstuvwxyz ,.?!0123456789ABCDEFGHIJ"
PROMPTS = [
    "Say something.",
    "Write a line.",
    "Go on.",
    "Your turn.",
    "Answer me.",
    "Hello there.",
    "Tell me more.",
    "What now?",
]
ALL_LINEAR = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
# lr 3e-2 on every linear layer: the reward must visibly rise within 30 steps.
RL = {
    "data": "prompts",
    "stage": "rl",
    "reward": "judge",
    "max_steps": 30,
    "batch_size": 16,
    "num_generations": 8,
    "max_new_tokens": 32,
    "lr": 3e-2,
    "scheduler": "constant",
    "target_modules": ALL_LINEAR,
    "logging_every": 1,
    "save_every": 0,
}


def marked(rng: random.Random, length: int) -> tuple[list[str], list[int]]:
    """A random string (as characters) and an order in which to put marks into it."""
    return [rng.choice(FILLER) for _ in range(length)], rng.sample(range(length), length)


def with_marks(chars: list[str], places: list[int]) -> str:
    return "".join(MARK if i in places else c for i, c in enumerate(chars))


def preference_rows(count: int = 32) -> list[dict]:
    rng = random.Random(0)
    rows = []
    for i in range(count):
        chars, order = marked(rng, rng.randint(8, 24))
        more = rng.choice([1, 1, 2, 2, 3, 4, 6, 8, len(chars) // 2, len(chars)])
        fewer = rng.randint(0, more - 1)
        rows.append(
            {
                "prompt": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                "chosen": with_marks(chars, order[:more]),
                "rejected": with_marks(chars, order[:fewer]),
            }
        )
    return rows


@pytest.fixture(scope="module")
def policy_base(tmp_path_factory, tiny_llama):
    """The tiny LLaMA with its final norm 4x larger. A random lm_head (std 0.02) makes the
    model sample almost uniformly, and TRL computes log-probabilities from lm_head's weight
    directly, so no adapter may sit on it: attention and MLP adapters alone could tilt that
    distribution by about one percent. Scaled, the logits spread as a trained model's do."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("policy") / "llama"
    shutil.copytree(tiny_llama, folder)
    weights = load_file(folder / "model.safetensors")
    weights["model.norm.weight"] *= 4
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def rl_home(tmp_path_factory, policy_base):
    """A home on the policy base with a `prompts` chat dataset, a `prefs` preference
    dataset, and `judge`: an rm adapter trained on prefs once for the whole module."""
    from together_llm.home import Home
    from together_llm.models.registry import add_model

    home = Home.open(tmp_path_factory.mktemp("rl") / "home")
    add_model(home, "tiny", str(policy_base))
    config = home.load_config()
    config.model = "tiny"
    home.save_config(config)
    write_dataset(
        home,
        "prompts",
        "chat",
        [
            {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": "ok"}]}
            for p in PROMPTS
        ],
    )
    write_dataset(home, "prefs", "preference", preference_rows())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(
            home,
            load_recipe(
                None,
                {
                    "data": "prefs",
                    "stage": "rm",
                    "name": "judge",
                    "max_steps": 30,
                    "batch_size": 8,
                    "lr": 1e-2,
                    "scheduler": "constant",
                    "target_modules": "q_proj,v_proj",
                    "logging_every": 5,
                },
            ),
        )
    finally:
        torch.set_num_threads(threads)
    return home


def log_of(home, metrics) -> list[dict]:
    path = home.path / "runs" / metrics["run_id"] / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def mean(values) -> float:
    return sum(values) / len(values)


def rises(rewards: list[float]) -> tuple[float, float]:
    """(mean of the first third, mean of the last third) of the logged rewards."""
    third = len(rewards) // 3
    return mean(rewards[:third]), mean(rewards[-third:])


@pytest.mark.slow
def test_the_judge_ranks_its_pairs_and_counts_marks_in_text_it_never_saw(rl_home, policy_base):
    """rl is only as good as its reward: the rm adapter, loaded as rl loads it, must rank
    every training pair and score unseen text, as random as the policy's samples, higher
    the more marks it holds."""
    from together_llm.train.reward import load_reward

    model, tokenizer = load_reward(rl_home, "judge", policy_base)
    assert not any(p.requires_grad for p in model.parameters()) and not model.training

    def score(text: str, prompt=({"role": "user", "content": "Go on."},)) -> float:
        conversation = [*prompt, {"role": "assistant", "content": text}]
        ids = tokenizer.apply_chat_template(conversation, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            return float(model(**ids).logits[0, 0])

    for row in preference_rows():
        assert score(row["chosen"], row["prompt"]) > score(row["rejected"], row["prompt"]), row
    rng = random.Random(1)
    for _ in range(6):
        chars, order = marked(rng, 32)
        scores = [score(with_marks(chars, order[:k])) for k in (0, 2, 8)]
        assert scores[0] < scores[1] < scores[2], scores


@pytest.mark.slow
def test_grpo_raises_the_mean_reward_and_the_adapter_is_plain_peft(rl_home, policy_base):
    from peft import PeftModel, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from together_llm.models.chat_template import DEFAULT_TEMPLATE

    metrics, trained = train_model(rl_home, load_recipe(None, {**RL, "name": "grpo"}))
    rewards = [r["reward"] for r in log_of(rl_home, metrics) if "reward" in r]
    assert len(rewards) == 30 and metrics["steps"] == 30
    first, last = rises(rewards)
    assert last > first + 5, rewards
    assert metrics["stage_metrics"]["reward"] == rewards[-1]
    assert metrics["stage_metrics"]["rewards/judge/mean"] == rewards[-1]

    folder = rl_home.adapters_dir / "grpo"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "card.json",
    ]
    card = json.loads((folder / "card.json").read_text())
    assert (card["stage"], card["method"], card["data"], card["steps"]) == (
        "rl",
        "lora",
        "prompts",
        30,
    )
    # The file holds the trained weights (the trained model itself still runs under the
    # Trainer's bf16 autocast, so its logits are compared nowhere).
    saved, kept = saved_adapter(rl_home, "grpo"), get_peft_model_state_dict(trained)
    assert saved.keys() == kept.keys()
    assert all(torch.equal(saved[key], kept[key].cpu()) for key in saved)
    reloaded = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(policy_base), folder
    ).eval()

    # What the reward asked for: the reloaded policy writes marks; the base hardly ever does.
    tokenizer = AutoTokenizer.from_pretrained(policy_base)
    tokenizer.chat_template = DEFAULT_TEMPLATE
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Go on."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"].repeat(8, 1)

    def marks(model) -> int:
        torch.manual_seed(0)
        with torch.no_grad():
            out = model.generate(prompt, do_sample=True, max_new_tokens=32, pad_token_id=0)
        return sum(tokenizer.decode(row[prompt.shape[1] :]).count(MARK) for row in out)

    after = marks(reloaded)
    with reloaded.disable_adapter():
        before = marks(reloaded)
    assert after > 4 * before + 8, (before, after)


@pytest.mark.slow
def test_rloo_raises_the_mean_reward_too(rl_home):
    metrics = train(rl_home, load_recipe(None, {**RL, "name": "rloo", "rl_method": "rloo"}))
    log = log_of(rl_home, metrics)
    first, last = rises([r["reward"] for r in log if "reward" in r])
    # Slower than grpo here (no scaling by the group's spread, and a pull back to the base),
    # so a smaller rise is asked; untrained, the mean moves by about 1 between steps.
    assert last > first + 2, log
    assert "kl" in metrics["stage_metrics"]  # rloo keeps the policy near the base
    assert json.loads((rl_home.adapters_dir / "rloo" / "card.json").read_text())["stage"] == "rl"


@pytest.mark.slow
def test_a_registered_model_with_a_scalar_head_is_a_reward_model_too(rl_home):
    """A full rm run registers a model rather than an adapter; rl scores with it as it is."""
    train(
        rl_home,
        load_recipe(
            None,
            {
                "data": "prefs",
                "stage": "rm",
                "method": "full",
                "name": "judge-full",
                "max_steps": 2,
                "logging_every": 1,
            },
        ),
    )
    metrics = train(
        rl_home,
        load_recipe(
            None,
            {
                **RL,
                "name": "by-full-judge",
                "reward": "judge-full",
                "max_steps": 2,
                "batch_size": 4,
                "num_generations": 4,
                "max_new_tokens": 8,
            },
        ),
    )
    assert metrics["steps"] == 2
    assert isinstance(metrics["stage_metrics"]["rewards/judge-full/mean"], float)


@pytest.mark.slow
def test_an_interrupted_rl_run_resumes_to_the_same_adapter(rl_home):
    from together_llm.train.stopping import Interrupted

    short = {**RL, "max_steps": 4, "batch_size": 4, "num_generations": 4, "max_new_tokens": 8}
    whole = train(rl_home, load_recipe(None, {**short, "name": "whole"}))
    with pytest.raises(Interrupted, match="saved a checkpoint at step 2 of 4.*--resume"):
        train(rl_home, load_recipe(None, {**short, "name": "parts"}), stop_after=2)
    resumed = train(rl_home, load_recipe(None, {**short, "name": "parts", "resume": "true"}))
    assert resumed["steps"] == whole["steps"] == 4
    # the same samples, so the same rewards, after the resume as in one go
    assert [r["reward"] for r in log_of(rl_home, resumed)] == pytest.approx(
        [r["reward"] for r in log_of(rl_home, whole)]
    )
    assert_same_adapters(rl_home, "whole", "parts", atol=1e-5)


def test_rl_needs_a_reward_model_and_only_rl_takes_one():
    with pytest.raises(
        TllmError, match="--stage rl trains against a reward model: give --reward NAME"
    ):
        load_recipe(None, {"data": "prompts", "name": "x", "stage": "rl"})
    with pytest.raises(TllmError, match="--reward is for --stage rl, not --stage dpo"):
        load_recipe(None, {"data": "prefs", "name": "x", "stage": "dpo", "reward": "judge"})
    with pytest.raises(
        TllmError,
        match=r"batch_size x grad_accum \(6 x 1\) must be a multiple "
        "of --num-generations",
    ):
        load_recipe(None, {**RL, "name": "x", "batch_size": 6, "num_generations": 4})


@pytest.mark.slow
def test_what_rl_cannot_train_with_is_refused_and_leaves_no_run(rl_home, tmp_path):
    from tests.tiny_models import make_tiny_model
    from together_llm.models.registry import add_model

    def refused(message: str, **fields) -> None:
        with pytest.raises(TllmError, match=message):
            train(rl_home, load_recipe(None, {**RL, "name": "refused", **fields}))

    # an adapter the sft stage made is no reward model
    train(rl_home, load_recipe(None, {"data": "prompts", "name": "chatty", "max_steps": 1}))
    refused(
        r"adapter 'chatty' is not a reward model \(it was made by --stage sft\); train one "
        "with `tllm train --stage rm",
        reward="chatty",
    )
    refused("no reward model named 'nobody'", reward="nobody")
    refused(r"model 'tiny' has no scalar head \(LlamaForCausalLM\)", reward="tiny")
    # judge scores with the tiny LLaMA: a policy on another base cannot use it
    add_model(rl_home, "other", str(make_tiny_model("gpt2", tmp_path / "gpt2")))
    refused(
        r"reward adapter 'judge' was trained on another base \(tiny, fingerprint \w+\) than "
        "this run's",
        reward="judge",
        base="other",
        target_modules="",
    )
    refused("stage rl trains on chat datasets; dataset 'prefs' is preference", data="prefs")
    refused("rl cannot train LoRA on lm_head", target_modules="q_proj,lm_head")
    # a prompt must leave room for a whole completion within max_length
    refused(
        r"every row of dataset 'prompts' \(8\) is too long for max_length 20",
        max_length=20,
        max_new_tokens=16,
    )
    assert not (rl_home.adapters_dir / "refused").exists()
    runs = [p.name for p in (rl_home.path / "runs").iterdir()]
    assert not [name for name in runs if name.endswith("-refused")], runs

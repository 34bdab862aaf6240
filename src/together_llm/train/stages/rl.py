"""rl: online reinforcement learning of a chat model against a reward model, on `chat`
datasets, with TRL's GRPOTrainer or RLOOTrainer (`--rl-method`).

Each row gives a prompt: its conversation up to its last assistant turn (that answer is not
used). For each prompt the policy samples `num_generations` completions, the reward model
(train/reward.py: an rm adapter or a scalar-head model) scores each whole conversation, and
each completion is made likelier or less likely by how it scores against its siblings: grpo
against their mean, scaled by their spread; rloo against the mean of the others, with a KL
penalty that keeps the policy near its reference (with an adapter, the base, adapter off).
The run's log carries TRL's `reward` (the mean score of the sampled completions) per step.
"""

from __future__ import annotations

from ...errors import TllmError
from ..processes import to_accelerator
from ..reward import load_reward
from .base import Stage

# --rl-method -> TRL's trainer and config classes
_TRAINERS = {"grpo": ("GRPOTrainer", "GRPOConfig"), "rloo": ("RLOOTrainer", "RLOOConfig")}


def prompt_example(row: dict) -> dict:
    """A canonical chat row as a TRL conversational prompt: the turns before its last answer."""
    messages = row["messages"]
    last = max(i for i, message in enumerate(messages) if message["role"] == "assistant")
    return {"prompt": messages[:last]}


def check(recipe, dataset_name: str, examples: list[dict]) -> None:
    """Refuse, before loading, the one LoRA target TRL cannot train here."""
    if "lm_head" in recipe.target_modules:
        raise TllmError(
            "rl cannot train LoRA on lm_head: TRL computes the policy's "
            "log-probabilities from lm_head's weight directly, so that adapter would "
            "never learn; leave lm_head out of --target-modules"
        )


def prepare(home, recipe, hf_dir) -> dict:
    """The reward model and its tokenizer (refused unless it fits: reward.check_reward)."""
    reward, reward_tokenizer = load_reward(home, recipe.reward, hf_dir)
    to_accelerator(reward)
    return {"reward": reward, "reward_tokenizer": reward_tokenizer, "recipe": recipe}


def build(
    model,
    tokenizer,
    args: dict,
    train,
    eval_set,
    peft_config,
    callbacks,
    reward,
    reward_tokenizer,
    recipe,
):
    """TRL's trainer for `recipe.rl_method`, with the recipe's sampling settings."""
    import trl

    args = dict(args)
    room = args.pop("max_length") - recipe.max_new_tokens  # for the prompt, with a whole completion
    train, eval_set = (_fitting(data, tokenizer, room) for data in (train, eval_set))
    args.update(
        num_generations=recipe.num_generations,
        max_completion_length=recipe.max_new_tokens,
        per_device_eval_batch_size=recipe.num_generations,  # evaluation samples whole groups
        # training turned the model's cache off; sampling token by token wants it
        generation_kwargs={"use_cache": True},
    )
    trainer_name, config_name = _TRAINERS[recipe.rl_method]
    config = getattr(trl, config_name)(**args)
    return getattr(trl, trainer_name)(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=train,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        reward_processing_classes=reward_tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def _fitting(data, tokenizer, room: int):
    """The rows of `data` whose rendered prompt leaves room for a whole completion (trl_trainer
    reports the rows dropped)."""
    if data is None:
        return None
    fits = [
        i
        for i, example in enumerate(data)
        if len(
            tokenizer.apply_chat_template(
                example["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
            )["input_ids"]
        )
        <= room
    ]
    return data.select(fits)


STAGE = Stage(
    "rl",
    ("chat",),
    "causal-lm",
    "online RL against a reward model",
    convert=prompt_example,
    trainer=build,
    check=check,
    prepare=prepare,
)

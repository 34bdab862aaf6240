"""Adapter tensors as Flower ArrayRecords, and the checks a received record must pass.

Only the trainable adapter tensors (PEFT's adapter state dict: LoRA A and B, no base
weight) are ever put in a record, under PEFT's own names, so a peer can load them with
`set_peft_model_state_dict` and a server can pair A with B by name.
"""

from __future__ import annotations

from ..errors import TllmError

SCALE = "@scale"  # suffix of an int8 tensor's scales in a record


def to_record(state: dict, transport: str = "fp32", reference: dict | None = None):
    """An ArrayRecord of `state` (name -> torch tensor) in `transport`'s form:
    - fp32, fp16: the tensors as numpy arrays of that dtype (fp16 halves the bytes; LoRA
      weights are small numbers, well inside its range, kept to about 0.05%);
    - int8: the update `state - reference` (the global adapter this round started from),
      rounded to 255 levels with one float32 scale per slice along the tensor's smaller
      dimension (the LoRA rank), stored under NAME@scale: a quarter of the bytes."""
    import numpy as np
    from flwr.app import Array, ArrayRecord

    if transport == "int8":
        if reference is None:
            raise TllmError("int8 transport sends the update: the global adapter is needed")
        record = {}
        for name, tensor in state.items():
            update = tensor.detach().cpu().float().numpy() - reference[name].cpu().float().numpy()
            levels, scale = _quantize(update)
            record[name], record[name + SCALE] = Array(levels), Array(scale)
        return ArrayRecord(record)
    dtype = {"fp32": np.float32, "fp16": np.float16}[transport]
    return ArrayRecord(
        {
            name: Array(np.ascontiguousarray(t.detach().cpu().float().numpy().astype(dtype)))
            for name, t in state.items()
        }
    )


def _quantize(update):
    """(int8 levels, float32 scales) with levels * scales ≈ `update`, one scale per slice
    along the smaller dimension of a matrix (per tensor otherwise)."""
    import numpy as np

    if update.ndim == 2:
        axis = 1 if update.shape[0] <= update.shape[1] else 0  # reduce over the longer one
        peak = np.abs(update).max(axis=axis, keepdims=True)
    else:
        peak = np.abs(update).max(keepdims=True).reshape((1,) * update.ndim)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    levels = np.clip(np.rint(update / scale), -127, 127).astype(np.int8)
    return np.ascontiguousarray(levels), np.ascontiguousarray(scale)


def decode(record, reference):
    """The float32 ArrayRecord a peer meant: `record` itself, or for an int8 one, the
    global adapter `reference` (an ArrayRecord) plus the dequantized update. Malformed
    scales are refused."""
    import numpy as np
    from flwr.app import Array, ArrayRecord

    keys = set(record.keys())
    if not any(key.endswith(SCALE) for key in keys):
        return float32_record(record)
    out = {}
    for name in keys:
        if name.endswith(SCALE):
            if name.removesuffix(SCALE) not in keys:
                raise TllmError(f"scales {name} without their tensor")
            continue
        if name + SCALE not in keys or name not in reference:
            raise TllmError(
                f"int8 tensor {name} without its scales or unknown to the global adapter"
            )
        levels, scale = record[name].numpy(), record[name + SCALE].numpy()
        base = reference[name].numpy().astype(np.float32)
        if levels.dtype != np.int8 or levels.shape != base.shape or scale.ndim != levels.ndim:
            raise TllmError(
                f"int8 tensor {name} is malformed (dtype {levels.dtype}, shape "
                f"{levels.shape}, scales {scale.shape})"
            )
        try:
            out[name] = Array(np.ascontiguousarray(base + levels.astype(np.float32) * scale))
        except ValueError as exc:
            raise TllmError(f"the scales of {name} do not fit it: {exc}") from None
    return ArrayRecord(out)


def float32_record(record):
    """`record` with every array as float32 (an fp16 reply; FedAdam's step and the DP noise,
    which numpy 2's promotion makes float64 and would double every later message)."""
    import numpy as np
    from flwr.app import Array, ArrayRecord

    return ArrayRecord(
        {k: Array(np.ascontiguousarray(a.numpy(), dtype=np.float32)) for k, a in record.items()}
    )


def to_tensors(record) -> dict:
    """name -> torch tensor (float32) of an ArrayRecord."""
    import torch

    return {
        name: torch.from_numpy(array.numpy().astype("float32")) for name, array in record.items()
    }


def payload_bytes(record) -> int:
    """Bytes of tensor data in `record`: what one message of it carries."""
    return sum(len(array.data) for array in record.values())


def check_fits(record, reference) -> None:
    """Refuse a record whose names, shapes or values do not fit `reference` (the global
    adapter): a peer's reply is aggregated only if it is the same adapter, finite."""
    import numpy as np

    if set(record.keys()) != set(reference.keys()):
        extra = sorted(set(record.keys()) - set(reference.keys()))[:3]
        missing = sorted(set(reference.keys()) - set(record.keys()))[:3]
        raise TllmError(
            f"tensor names differ from the global adapter (extra {extra}, missing {missing})"
        )
    for name, array in record.items():
        value = array.numpy()
        if tuple(value.shape) != tuple(reference[name].shape):
            raise TllmError(
                f"tensor {name} has shape {tuple(value.shape)}, the global "
                f"adapter's is {tuple(reference[name].shape)}"
            )
        if not np.all(np.isfinite(value)):
            raise TllmError(f"tensor {name} holds NaN or infinite values")

"""Adapter tensors as Flower ArrayRecords, and the checks a received record must pass.

Only the trainable adapter tensors (PEFT's adapter state dict: LoRA A and B, no base
weight) are ever put in a record, under PEFT's own names, so a peer can load them with
`set_peft_model_state_dict` and a server can pair A with B by name.
"""

from __future__ import annotations

from ..errors import TllmError


def to_record(state: dict):
    """An ArrayRecord of `state` (name -> torch tensor), as float32 numpy arrays."""
    import numpy as np
    from flwr.app import Array, ArrayRecord

    return ArrayRecord({name: Array(np.ascontiguousarray(t.detach().cpu().float().numpy()))
                        for name, t in state.items()})


def to_tensors(record) -> dict:
    """name -> torch tensor (float32) of an ArrayRecord."""
    import torch

    return {name: torch.from_numpy(array.numpy().copy()) for name, array in record.items()}


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
        raise TllmError(f"tensor names differ from the global adapter (extra {extra}, "
                        f"missing {missing})")
    for name, array in record.items():
        value = array.numpy()
        if tuple(value.shape) != tuple(reference[name].shape):
            raise TllmError(f"tensor {name} has shape {tuple(value.shape)}, the global "
                            f"adapter's is {tuple(reference[name].shape)}")
        if not np.all(np.isfinite(value)):
            raise TllmError(f"tensor {name} holds NaN or infinite values")

"""The processes of a run: under torchrun each is one rank of a process group (gloo on CPUs,
NCCL on GPUs); alone, the run is rank 0 of 1 and nothing here touches torch.distributed.

Only rank 0 writes files and speaks (run.py); every process trains its share (loop.py, or
the TRL Trainer through accelerate).
"""

from __future__ import annotations

import os
from typing import Any


def init_distributed() -> tuple[int, int]:
    """(world size, rank): under torchrun, join the process group."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 1, 0
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_world_size(), dist.get_rank()


def leave_distributed() -> None:
    """Under torchrun, wait for every rank (rank 0 saves after the others have finished
    training) and leave the process group cleanly: a process that exits with gloo's threads
    still running is aborted ("terminate called without an active exception")."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def current_world() -> tuple[int, int]:
    """(world size, rank) of the process group this process has joined, or (1, 0)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def to_accelerator(model: Any) -> None:
    """On a GPU machine, this process's GPU (torchrun's LOCAL_RANK); else stay on the CPU."""
    import torch

    if torch.cuda.is_available():
        model.to(torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))))


def broadcast(value: Any) -> Any:
    """Rank 0's `value`, on every process (`value` itself when there is one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]

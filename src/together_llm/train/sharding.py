"""Several processes training one model: data-parallel (DDP) or fully sharded (FSDP).

`--sharding none` (the default): under torchrun every process holds the whole model in
DistributedDataParallel, which averages the gradients. `--sharding fsdp`: torch's FSDP2
(`fully_shard`, the ZeRO-3 idea) splits each transformer layer's weights, gradients and
optimizer state across the processes and gathers a layer only while it computes, so a
model too big for one device's memory trains on several.

Sharding is invisible to the rest of the loop except in three places, all here:
- every forward pass of a sharded model is a collective (it gathers weights), so every
  process must make the same number of them: `forward_passes` pads a process's list with
  passes that count for nothing;
- gradient accumulation without communication: DDP's `no_sync`, FSDP2's
  `set_requires_gradient_sync`;
- saving: a process holds only its shard, so the weights and the optimizer state are
  gathered to rank 0 (in the very format an unsharded run writes: a checkpoint does not
  depend on how it was trained) and split again on loading.

The DeepSpeed path for the TRL stages is the Trainer's own (trl_trainer.py); only its
recipe checks live here. Heavy imports stay inside the functions.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

from ..errors import RefusedError, TllmError
from ..methods import METHODS, get_method
from .stages import get_stage

# The methods FSDP shards here (methods/registry.py says why the others do not).
FSDP_METHODS = tuple(m.name for m in METHODS.values() if m.shardable)


def check_sharding(recipe) -> None:
    """Refuse, before anything loads, sharding options that cannot work together."""
    trl = get_stage(recipe.stage).uses_trl
    if recipe.sharding == "fsdp" and not trl and not get_method(recipe.method).shardable:
        raise RefusedError(
            f"--sharding fsdp trains methods {' and '.join(FSDP_METHODS)}, not {recipe.method}"
        )
    if recipe.deepspeed is None:
        return
    if not trl:
        raise RefusedError(
            f"--deepspeed configures the TRL trainers (dpo, orpo, kto, rm, rl); "
            f"stage {recipe.stage} trains in our own loop: use --sharding fsdp, "
            "which shards as ZeRO-3 does, with torch alone"
        )
    if recipe.sharding == "fsdp":
        raise RefusedError("--deepspeed and --sharding fsdp both shard the model: choose one")
    if not Path(recipe.deepspeed).is_file():
        raise TllmError(
            f"no such DeepSpeed config: {recipe.deepspeed} (see recipes/distributed/ "
            "for zero2.json and zero3.json)"
        )
    if importlib.util.find_spec("deepspeed") is None:
        raise RefusedError(
            "--deepspeed needs the deepspeed package, which is not installed "
            "(pip install deepspeed), or use --sharding fsdp"
        )


def wrap(model, sharding: str, world: int):
    """The module to run forward passes through: `model` itself alone, DDP around it, or
    `model` sharded in place by FSDP2 (its parameters become DTensor shards, so build the
    optimizer after this)."""
    if world == 1:
        return model
    if sharding != "fsdp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)
    import torch
    from torch.distributed.fsdp import fully_shard

    if torch.cuda.is_available():  # UNTESTED here (no GPU): FSDP's mesh uses the current GPU
        torch.cuda.set_device(next(model.parameters()).device)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = set(getattr(base, "_no_split_modules", None) or ())
    # One group per transformer layer (the classes transformers never splits), then the
    # rest (embeddings, head, norms) as the root group: only one layer is whole at a time.
    for module in list(model.modules()):
        if type(module).__name__ in layers:
            fully_shard(module)
    fully_shard(model)
    return model


def is_sharded(model) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def gradient_sync(forward_model, sync: bool):
    """A context for one backward pass: reduce the gradients across processes (`sync`) or
    only accumulate them locally until the step's last backward."""
    if is_sharded(forward_model):
        forward_model.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    if not sync and hasattr(forward_model, "no_sync"):  # DDP
        return forward_model.no_sync()
    return contextlib.nullcontext()


def forward_passes(model, batches: list, spare: list | None = None) -> list[tuple]:
    """[(batch, weight)]: this process's batches at weight 1, padded when sharded to the
    most any process has with passes of weight 0 (a copy of its last batch, or of `spare`
    when it has none), since each forward pass of a sharded model waits for all processes."""
    passes = [(batch, 1.0) for batch in batches]
    if not is_sharded(model):
        return passes
    import torch
    import torch.distributed as dist

    most = torch.tensor([len(passes)])
    if dist.get_backend() == "nccl":
        most = most.cuda()
    dist.all_reduce(most, op=dist.ReduceOp.MAX)
    filler = (batches or spare or [])[-1]
    return passes + [(filler, 0.0)] * (int(most) - len(passes))


# ------------------------------------------------------------------ gathering and splitting


def gathered_weights(model, rank: int, trainable_only: bool = True) -> dict | None:
    """The full weights of a sharded model on rank 0 (None elsewhere); every process must
    call this at the same point. None too when `model` is not sharded (read it directly).
    `trainable_only=False`: the whole state dict (buffers included), for a `full` model."""
    if not is_sharded(model):
        return None
    if not trainable_only:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(
            model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        return state if rank == 0 else None
    weights = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            full = _full(param)  # a collective: every process, same order
            if rank == 0:
                weights[name] = full.contiguous()
    return weights if rank == 0 else None


def gathered_optimizer_state(model, optimizer, rank: int) -> dict | None:
    """`optimizer.state_dict()` with every sharded tensor gathered, on rank 0 (None
    elsewhere); None when `model` is not sharded."""
    if not is_sharded(model):
        return None
    state = optimizer.state_dict()
    for index in sorted(state["state"]):
        live = state["state"][index]  # the optimizer's own dict: build a new one
        state["state"][index] = {key: _full(live[key]) for key in sorted(live)}
    return state if rank == 0 else None


def copy_into(param, tensor) -> None:
    """Set `param` (a shard or a whole tensor) from the full `tensor` (under no_grad)."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(param, DTensor):
        # every process holds the full tensor: each keeps its own slice, no communication
        tensor = distribute_tensor(
            tensor.to(param.device, param.dtype),
            param.device_mesh,
            param.placements,
            src_data_rank=None,
        )
    param.copy_(tensor)


def split_optimizer_state(optimizer) -> None:
    """After `optimizer.load_state_dict` of a gathered state: turn the state of each sharded
    parameter back into shards like the parameter (a no-op when nothing is sharded)."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    for param, entry in optimizer.state.items():
        if not isinstance(param, DTensor):
            continue
        for key, value in entry.items():
            if not isinstance(value, DTensor) and getattr(value, "shape", None) == param.shape:
                entry[key] = distribute_tensor(
                    value.to(param.device), param.device_mesh, param.placements, src_data_rank=None
                )


def _full(tensor):
    """A DTensor gathered whole onto the CPU (one at a time, so a GPU never holds more than
    one whole tensor); anything else as it is."""
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor().cpu() if isinstance(tensor, DTensor) else tensor


# ------------------------------------------------------------------ the TRL stages


def trainer_arguments(recipe, world: int) -> dict:
    """What the recipe adds to the TRL stages' TrainingArguments: DeepSpeed from its JSON
    config, or FSDP2 through accelerate (one group per transformer layer: the model's
    `_no_split_modules`, as in our loop) when several processes train. Refused on CPUs,
    where accelerate would silently train unsharded (it shards only on accelerators)."""
    if not recipe.deepspeed and not (recipe.sharding == "fsdp" and world > 1):
        return {}
    import torch

    if not torch.cuda.is_available():
        what = "--deepspeed" if recipe.deepspeed else "--sharding fsdp"
        raise RefusedError(
            f"{what} for stage {recipe.stage} needs GPUs: accelerate shards the "
            "TRL trainers only on accelerators (on CPUs, --sharding fsdp "
            "works for pt, sft, seq2seq and classify)"
        )
    if recipe.deepspeed:  # UNTESTED here (no GPU, no deepspeed)
        return {"deepspeed": str(Path(recipe.deepspeed).resolve())}
    return {
        "fsdp": True,
        "fsdp_config": {
            "version": 2,
            "reshard_after_forward": True,  # UNTESTED
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "state_dict_type": "FULL_STATE_DICT",
        },
    }


def trainer_weights(trainer) -> dict | None:
    """The trained weights gathered whole on rank 0 when the Trainer sharded them (FSDP,
    DeepSpeed); every process must call this. None when nothing is sharded."""
    if not (trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled):
        return None
    return trainer.accelerator.get_state_dict(trainer.model)  # UNTESTED here (no GPU)

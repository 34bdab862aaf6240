"""Fully sharded data-parallel (--sharding fsdp, torch FSDP2): two CPU processes (gloo) under
torchrun or accelerate launch, each holding half of every weight, learn what one unsharded
process learns with twice the gradient accumulation, and write the same result and
checkpoint; a sharded run stops and resumes; what cannot work is refused."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT
from together_llm.errors import TllmError
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train

from .conftest import assert_same_adapters

# Dropout off (each process draws its own masks) and fp32 (bf16 rounding would blur the
# comparison); a checkpoint at step 2 is gathered from the shards mid-run.
COMMON = {
    "data": "sounds",
    "max_steps": "4",
    "batch_size": "3",
    "dropout": "0",
    "lr": "1e-2",
    "logging_every": "1",
    "precision": "fp32",
    "save_every": "2",
}

TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
# the shipped accelerate config, two processes (no GPU here: gloo)
ACCELERATE = [
    "-m",
    "accelerate.commands.launch",
    "--config_file",
    "recipes/distributed/accelerate-fsdp.yaml",
    "--num_processes",
    "2",
]


def launch(home, name: str, launcher=TORCHRUN, **fields) -> dict:
    """`tllm train --sharding fsdp` in two processes; rank 0's metrics."""
    flags = [
        part
        for key, value in {**COMMON, **fields}.items()
        for part in (f"--{key.replace('_', '-')}", value)
    ]
    env = {**os.environ, "TLLM_HOME": str(home.path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            *launcher,
            "-m",
            "together_llm.cli.main",
            "train",
            *flags,
            "--sharding",
            "fsdp",
            "--name",
            name,
            "--json",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(result.stdout)  # one JSON: only rank 0 reports
    assert metrics["processes"] == 2 and metrics["sharded"]
    return metrics


def checkpoint(home, metrics: dict, step: int) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    folder = home.path / "runs" / metrics["run_id"] / "checkpoints" / f"step-{step:06d}"
    state = torch.load(folder / "state.pt", weights_only=True)
    return load_file(str(folder / "trainable.safetensors")), state["optimizer"]


def test_sharded_lora_matches_one_process_with_twice_the_accumulation(tiny_home):
    from together_llm.data.split import split_dataset

    # one eval micro-batch: the second process has none, yet must join each forward pass
    split_dataset(tiny_home, "sounds", 3)
    two = launch(tiny_home, "two", eval_every="2")
    one = train(
        tiny_home,
        load_recipe(None, {**COMMON, "name": "one", "grad_accum": "2", "eval_every": "2"}),
    )
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
    assert one["eval_loss"] > 0 and two["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-5)
    adapter = assert_same_adapters(tiny_home, "one", "two", atol=1e-6)
    assert not all(torch.equal(v, torch.zeros_like(v)) for k, v in adapter.items() if "lora_B" in k)

    # the mid-run checkpoint: whole tensors, in the format an unsharded run writes
    (w1, o1), (w2, o2) = checkpoint(tiny_home, one, 2), checkpoint(tiny_home, two, 2)
    assert w1.keys() == w2.keys()
    for key in w1:
        assert torch.allclose(w1[key], w2[key], atol=1e-6), key
    assert o1["state"].keys() == o2["state"].keys()
    for index, entry in o1["state"].items():
        assert torch.allclose(entry["exp_avg"], o2["state"][index]["exp_avg"], atol=1e-6)


def test_refusals(tiny_home):
    with pytest.raises(TllmError, match="--sharding fsdp trains methods full and lora, not prefix"):
        load_recipe(None, {"data": "sounds", "name": "x", "sharding": "fsdp", "method": "prefix"})
    with pytest.raises(TllmError, match="stage sft trains in our own loop: use --sharding fsdp"):
        load_recipe(None, {"data": "sounds", "name": "x", "deepspeed": "zero3.json"})
    with pytest.raises(TllmError, match="no such DeepSpeed config: nowhere.json"):
        load_recipe(
            None, {"data": "sounds", "name": "x", "stage": "dpo", "deepspeed": "nowhere.json"}
        )


def test_sharded_run_stopped_by_sigterm_resumes_to_the_unsharded_result(tiny_home):
    """SIGTERM reaches the two processes at their own moments: they agree on the step to stop
    after, gather one checkpoint, and a sharded --resume ends where one process ends."""
    import signal
    import time

    fields = {**COMMON, "max_steps": "60", "save_every": "0"}
    flags = [
        part for key, value in fields.items() for part in (f"--{key.replace('_', '-')}", value)
    ]
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "together_llm.cli.main",
        "train",
        *flags,
        "--sharding",
        "fsdp",
        "--name",
        "cut",
        "--no-auto",  # q and v only: 60 steps of every linear layer drift past 1e-5
    ]
    env = {**os.environ, "TLLM_HOME": str(tiny_home.path), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = list((tiny_home.path / "runs").glob("*/log.jsonl"))
        if logs and len(logs[0].read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert "terminated: saved a checkpoint at step" in stderr, stderr[-3000:]
    step = int(stderr.split("checkpoint at step ")[1].split()[0])
    assert 3 <= step < 60

    resumed = subprocess.run(
        args + ["--resume", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {step} of 60" in resumed.stderr
    assert json.loads(resumed.stdout)["sharded"]
    whole = {**fields, "name": "whole", "grad_accum": "2", "auto": False}
    train(tiny_home, load_recipe(None, whole))
    assert_same_adapters(tiny_home, "whole", "cut", atol=1e-5)


def test_sharded_full_fine_tuning_under_accelerate_saves_the_whole_model(tiny_home, tiny_llama):
    from safetensors.torch import load_file

    fields = {"method": "full", "lr": "1e-3", "max_steps": "2", "save_every": "0"}
    launch(tiny_home, "two-full", launcher=ACCELERATE, **fields)
    train(tiny_home, load_recipe(None, {**COMMON, **fields, "name": "one-full", "grad_accum": "2"}))
    one = load_file(str(tiny_home.models_dir / "one-full" / "model.safetensors"))
    two = load_file(str(tiny_home.models_dir / "two-full" / "model.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-6), key
    base = load_file(str(tiny_llama / "model.safetensors"))
    assert any(not torch.equal(base[key], one[key]) for key in one)  # it did learn


def test_trl_stages_refuse_fsdp_on_cpus_instead_of_training_unsharded(tiny_home):
    """accelerate shards a Trainer only on accelerators: on CPUs it would quietly train
    unsharded (found here: Trainer.is_fsdp_enabled stays False), so the run is refused."""
    from .conftest import write_dataset
    from .test_preference import preference_rows

    write_dataset(tiny_home, "prefs", "preference", preference_rows())
    env = {**os.environ, "TLLM_HOME": str(tiny_home.path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "together_llm.cli.main",
            "train",
            "--data",
            "prefs",
            "--stage",
            "dpo",
            "--max-steps",
            "2",
            "--sharding",
            "fsdp",
            "--name",
            "two",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    assert "--sharding fsdp for stage dpo needs GPUs" in result.stderr, result.stderr[-3000:]
    assert not (tiny_home.adapters_dir / "two").exists()
    assert not list((tiny_home.path / "runs").glob("*"))  # refused before a run folder

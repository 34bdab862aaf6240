"""Data-parallel: two CPU processes under torchrun (gloo) learn exactly what one process
learns with twice the gradient accumulation."""

import json
import os
import subprocess
import sys

import torch

from tests.conftest import ROOT
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train

from .conftest import assert_same_adapters


def test_two_processes_match_one_with_twice_the_accumulation(tiny_home):
    # Dropout off: two processes draw their own dropout masks, one process draws one stream.
    common = {
        "data": "sounds",
        "max_steps": "4",
        "batch_size": "3",
        "dropout": "0",
        "lr": "1e-2",
        "logging_every": "1",
    }
    flags = [
        part for key, value in common.items() for part in (f"--{key.replace('_', '-')}", value)
    ]
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
            *flags,
            "--name",
            "two",
            "--json",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["processes"] == 2  # one JSON: only rank 0 reports

    train(tiny_home, load_recipe(None, {**common, "name": "one", "grad_accum": "2"}))
    one = assert_same_adapters(tiny_home, "one", "two", atol=1e-6)
    assert not all(torch.equal(v, torch.zeros_like(v)) for k, v in one.items() if "lora_B" in k)


def test_two_processes_resume_with_their_own_dropout_streams(tiny_home):
    """Dropout on: each process draws its own masks, so a checkpoint keeps every process's
    random state, and two processes resumed at step 2 end exactly where they ended unbroken."""
    import shutil

    from safetensors.torch import load_file

    fields = {
        "data": "sounds",
        "max_steps": "4",
        "batch_size": "3",
        "dropout": "0.3",
        "lr": "1e-2",
        "save_every": "2",
        "precision": "fp32",
        "name": "drop",
    }
    flags = [
        part for key, value in fields.items() for part in (f"--{key.replace('_', '-')}", value)
    ]
    env = {**os.environ, "TLLM_HOME": str(tiny_home.path), "OMP_NUM_THREADS": "1"}

    def two_processes(*more):
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
                *flags,
                *more,
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    two_processes()
    adapter = tiny_home.adapters_dir / "drop"
    whole = load_file(str(adapter / "adapter_model.safetensors"))
    # Make the finished run an interrupted one: its step-2 checkpoint is where it resumes.
    (run,) = (tiny_home.path / "runs").glob("*-drop")
    (run / "metrics.json").unlink()
    shutil.rmtree(adapter)
    assert "at step 2 of 4" in two_processes("--resume").stderr
    resumed = load_file(str(adapter / "adapter_model.safetensors"))
    assert whole.keys() == resumed.keys()
    for key in whole:
        assert torch.allclose(whole[key], resumed[key], atol=1e-6), key

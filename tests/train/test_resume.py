"""Resume: a run stopped mid-way (as by Ctrl-C, or a real SIGTERM) saves a checkpoint, and
`--resume` continues to the same step count with the same schedule and data position,
ending with the adapter an uninterrupted run makes."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from together_llm.errors import TllmError
from together_llm.train.recipe import load_recipe
from together_llm.train.run import train
from together_llm.train.stopping import Interrupted

from .conftest import LEARNABLE, assert_same_adapters


def recipe(name, **fields):
    # Dropout on and a cosine schedule: resuming must restore the random state and the
    # schedule too, not only the weights.
    return load_recipe(
        None,
        {
            "data": "sounds",
            "name": name,
            "max_steps": 12,
            "batch_size": 3,
            "logging_every": 1,
            "save_every": 0,
            **LEARNABLE,
            "scheduler": "cosine",
            "dropout": "0.1",
            **fields,
        },
    )


def test_interrupted_run_resumes_to_the_same_adapter(tiny_home):
    whole = train(tiny_home, recipe("whole"))

    with pytest.raises(Interrupted, match="saved a checkpoint at step 5 of 12.*--resume"):
        train(tiny_home, recipe("parts"), stop_after=5)
    assert not (tiny_home.adapters_dir / "parts").exists()
    with pytest.raises(TllmError, match="was started with a different recipe.*lr: 0.01 -> 0.02"):
        train(tiny_home, recipe("parts", resume="true", lr="0.02"))
    messages = []
    resumed = train(tiny_home, recipe("parts", resume="true"), report=messages.append)
    assert any("at step 5 of 12" in m for m in messages)

    assert resumed["steps"] == whole["steps"] == 12
    assert resumed["tokens"] == whole["tokens"]  # the same data, in the same order
    run = tiny_home.path / "runs" / resumed["run_id"]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 13))
    whole_log = [
        json.loads(line)
        for line in (tiny_home.path / "runs" / whole["run_id"] / "log.jsonl")
        .read_text()
        .splitlines()
    ]
    assert [r["lr"] for r in log] == pytest.approx([r["lr"] for r in whole_log])
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in whole_log], rel=1e-4)
    assert_same_adapters(tiny_home, "whole", "parts", atol=1e-5)
    with pytest.raises(TllmError, match="no interrupted run of 'parts'"):
        train(tiny_home, recipe("parts", resume="true", overwrite="true"))


def test_sigterm_saves_a_checkpoint_and_resume_finishes(tiny_home):
    """The real thing: `tllm train` in its own process, terminated mid-run, then resumed."""
    import os

    args = [
        sys.executable,
        "-m",
        "together_llm.cli.main",
        "train",
        "--data",
        "sounds",
        "--name",
        "killed",
        "--max-steps",
        "150",
        "--logging-every",
        "1",
        "--save-every",
        "0",
        "--batch-size",
        "2",
        "--lr",
        "1e-2",
    ]
    env = {**os.environ, "TLLM_HOME": str(tiny_home.path), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    runs = tiny_home.path / "runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = list(runs.glob("*/log.jsonl"))
        if logs and len(logs[0].read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "terminated: saved a checkpoint at step" in stderr
    step = int(stderr.split("checkpoint at step ")[1].split()[0])
    assert 3 <= step < 150

    resumed = subprocess.run(
        args + ["--resume", "--max-steps", "150", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {step} of 150" in resumed.stderr
    metrics = json.loads(resumed.stdout)
    assert metrics["steps"] == 150
    assert (tiny_home.adapters_dir / "killed" / "adapter_model.safetensors").is_file()

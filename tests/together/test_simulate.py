"""`tllm together simulate` through Flower's simulation engine (Ray), on the tiny LLaMA:
three peers, two rounds. Each run takes about a minute on two busy cores, most of it Ray
starting and each worker importing torch, hence slow."""

import json

import pytest
import torch
from click.testing import CliRunner

from tests.together.fed_home import FAST

pytestmark = pytest.mark.slow


def rounds_of(run_dir) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "round" in r]


def test_three_peers_two_rounds_through_the_simulation_engine(fed_home, tiny_llama):
    import peft
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from together_llm.cli.together import together

    flags = [
        "--rounds",
        "2",
        "--local-steps",
        str(FAST["local_steps"]),
        "--lr",
        str(FAST["lr"]),
        "--batch-size",
        "2",
        "--max-length",
        "128",
        "--target-modules",
        FAST["target_modules"],
    ]
    result = CliRunner().invoke(
        together,
        [
            "simulate",
            "--peers",
            "3",
            "--data",
            "sounds",
            "--name",
            "shared",
            *flags,
            "--json",
            "--home",
            str(fed_home.path),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["state"] == "finished" and summary["rounds_done"] == 2
    assert summary["peers"] == ["peer-1", "peer-2", "peer-3"] and summary["failures"] == 0
    run_dir = fed_home.path / "together" / summary["run_id"]

    rounds = rounds_of(run_dir)
    assert [r["round"] for r in rounds] == [0, 1, 2]
    for record in rounds[1:]:
        assert set(record["peers"]) == {"peer-1", "peer-2", "peer-3"}
        for peer in record["peers"].values():
            assert peer["train_loss"] > 0 and peer["eval_loss"] > 0 and peer["examples"] > 0
        assert record["bytes_up"] == sum(p["bytes_up"] for p in record["peers"].values())
        assert record["bytes_down"] == 2 * record["bytes_up"]  # train and evaluate messages
        assert record["seconds"] > 0
    assert rounds[2]["global_eval_loss"] < rounds[0]["global_eval_loss"]  # it learned
    assert (run_dir / "plots" / "curves.png").stat().st_size > 10_000

    adapters = []
    for home in summary["homes"]:
        folder = run_dir / "peers" / home.rsplit("/", 1)[-1] / "adapters" / "shared"
        card = json.loads((folder / "card.json").read_text())
        assert card["provenance"] == "federated"
        assert card["federated"]["run_id"] == summary["run_id"]
        assert card["federated"]["rounds"] == 2 and card["federated"]["strategy"] == "fedavg"
        assert card["federated"]["peers"] == ["peer-1", "peer-2", "peer-3"]
        # plain PEFT loads it on the base
        model = peft.PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(tiny_llama), folder
        )
        assert model.peft_config["default"].r == 8
        tensors = load_file(folder / "adapter_model.safetensors")
        adapters.append(tensors)
        # what each peer uploaded per round is this adapter (fp32, each array with its
        # small .npy header), no base weight
        uploaded, weights = (
            rounds[1]["peers"]["peer-1"]["bytes_up"],
            sum(t.numel() * 4 for t in tensors.values()),
        )
        assert weights <= uploaded <= weights + 200 * len(tensors)
    for other in adapters[1:]:  # the same global adapter in every home
        assert all(torch.equal(other[k], adapters[0][k]) for k in adapters[0])

    shown = CliRunner().invoke(together, ["status", "--home", str(fed_home.path)])
    assert shown.exit_code == 0, shown.output
    assert (
        summary["run_id"] in shown.output
        and "rounds 2/2" in shown.output
        and "peers 3" in shown.output
    )


def fail_in_round_one(message, context, call_next):
    """A Flower mod: the second peer's ClientApp raises during round 1's training."""
    from flwr.app import MessageType

    if (
        message.metadata.message_type == MessageType.TRAIN
        and int(context.node_config["partition-id"]) == 1
        and int(message.content["config"]["server-round"]) == 1
    ):
        raise RuntimeError("peer 2 lost its connection")
    return call_next(message, context)


def test_a_failing_peer_does_not_stop_the_round(fed_home):
    """FedProx with exact LoRA aggregation; peer 2 raises in round 1."""
    from together_llm.together.settings import Federation
    from together_llm.together.simulate import simulate

    fed = Federation(
        name="shared",
        data="sounds",
        rounds=2,
        strategy="fedprox",
        mu=0.1,
        aggregate="lora-exact",
        **FAST,
    )
    summary = simulate(fed_home, fed, peers=3, report=lambda record: None, mods=[fail_in_round_one])
    run_dir = fed_home.path / "together" / summary["run_id"]
    first, second = rounds_of(run_dir)[1:]
    assert set(first["peers"]) >= {"peer-1", "peer-3"} and "train_loss" not in first["peers"].get(
        "peer-2", {}
    )
    assert len(first["failures"]) == 1 and "lost its connection" in first["failures"][0]["reason"]
    assert (
        first["bytes_up"] == 2 * first["peers"]["peer-1"]["bytes_up"]
    )  # two arrived, two aggregated
    assert set(second["peers"]) == {"peer-1", "peer-2", "peer-3"} and not second["failures"]
    assert all("train_loss" in p for p in second["peers"].values())
    assert second["global_eval_loss"] < rounds_of(run_dir)[0]["global_eval_loss"]
    assert summary["state"] == "finished" and len(summary["homes"]) == 3
    for home in summary["homes"]:
        card = json.loads(
            (
                run_dir / "peers" / home.rsplit("/", 1)[-1] / "adapters" / "shared" / "card.json"
            ).read_text()
        )
        assert (
            card["federated"]["aggregate"] == "lora-exact"
            and card["federated"]["strategy"] == "fedprox"
        )


def test_fedopt_with_int8_updates_and_frozen_a_learns(fed_home):
    """The co-evolution recipe (bench/journeys/coevolution_run.py): each peer one plain gradient
    step a round, sent as an int8 update of B alone (FFA-LoRA), Adam on the server; held-out
    losses measured every second round and after the last."""
    from together_llm.cli.together import together

    flags = [
        "--rounds",
        "3",
        "--local-steps",
        "1",
        "--optimizer",
        "sgd",
        "--lr",
        "1",
        "--strategy",
        "fedadam",
        "--server-lr",
        "0.02",
        "--transport",
        "int8",
        "--freeze-a",
        "--eval-every",
        "2",
        "--batch-size",
        "4",
        "--max-length",
        "128",
        "--target-modules",
        FAST["target_modules"],
    ]
    result = CliRunner().invoke(
        together,
        [
            "simulate",
            "--peers",
            "2",
            "--data",
            "sounds",
            "--name",
            "shared",
            *flags,
            "--json",
            "--home",
            str(fed_home.path),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    run_dir = fed_home.path / "together" / summary["run_id"]
    rounds = rounds_of(run_dir)
    assert [r["global_eval_loss"] is not None for r in rounds] == [True, False, True, True]
    assert not any("eval_loss" in p for p in rounds[1]["peers"].values())
    assert rounds[3]["global_eval_loss"] < rounds[0]["global_eval_loss"]  # it learned

    from safetensors.torch import load_file

    folder = run_dir / "peers" / "peer-1" / "adapters" / "shared"
    tensors = load_file(folder / "adapter_model.safetensors")
    b_entries = sum(t.numel() for k, t in tensors.items() if ".lora_B." in k)
    for record in rounds[1:]:  # one byte an entry of B, its scales and headers: no A, no fp32
        for peer in record["peers"].values():
            assert b_entries <= peer["bytes_up"] <= 1.3 * b_entries + 400 * len(tensors)
    card = json.loads((folder / "card.json").read_text())["federated"]
    assert (
        card["transport"] == "int8" and card["freeze_a"] is True and card["strategy"] == "fedadam"
    )
    # A is still the seeded start every machine builds for itself
    from together_llm.together import local
    from together_llm.together.settings import Federation

    config = Federation(
        name="shared",
        data="sounds",
        max_length=128,
        target_modules=FAST["target_modules"],
        freeze_a=True,
    ).peer_config()
    local._CACHE.clear()
    model, _, _ = local.load_model(
        local.peer_base(fed_home)[1], local.recipe_for(config, "sounds"), True
    )
    seeded = {
        n.replace(".default.", "."): p for n, p in model.named_parameters() if ".lora_A." in n
    }
    assert seeded and all(torch.equal(tensors[n], p) for n, p in seeded.items())

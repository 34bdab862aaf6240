"""How a peer's adapter travels (arrays.py): fp16 halves the bytes, int8 sends the round's
update in a quarter of them, and the server rebuilds the adapter the peer meant within a
known error; a malformed int8 reply is refused by name."""

import pytest
import torch

from together_llm.errors import TllmError


def adapters():
    """A LoRA-shaped global adapter (rank 16) and a peer's, one small update away."""
    generator = torch.Generator().manual_seed(0)
    start = {
        "m.q_proj.lora_A.weight": torch.randn(16, 576, generator=generator) * 0.04,
        "m.q_proj.lora_B.weight": torch.randn(1536, 16, generator=generator) * 0.01,
    }
    peer = {k: v + torch.randn(v.shape, generator=generator) * 1e-3 for k, v in start.items()}
    return start, peer


def test_int8_sends_a_quarter_of_the_bytes_and_the_update_to_within_a_level():
    from together_llm.together.arrays import decode, payload_bytes, to_record, to_tensors

    start, peer = adapters()
    fp32, fp16 = to_record(peer), to_record(peer, "fp16")
    int8 = to_record(peer, "int8", start)
    assert payload_bytes(fp16) / payload_bytes(fp32) < 0.51
    assert payload_bytes(int8) / payload_bytes(fp32) < 0.26
    rebuilt = to_tensors(decode(int8, to_record(start)))
    for name, tensor in peer.items():
        update = tensor - start[name]
        # one scale per rank slice: each value within half a level of its slice's largest
        axis = 1 if update.shape[0] <= update.shape[1] else 0
        level = update.abs().amax(dim=axis, keepdim=True) / 127
        assert ((rebuilt[name] - tensor).abs() <= level / 2 + 1e-7).all()
        assert (rebuilt[name] - tensor).abs().max() < 0.01 * update.abs().max()
    half = to_tensors(decode(fp16, to_record(start)))
    assert all(
        half[k].dtype == torch.float32 and torch.allclose(half[k], peer[k], rtol=1e-3, atol=1e-6)
        for k in peer
    )


def test_a_malformed_int8_reply_is_refused_by_name():
    import numpy as np
    from flwr.app import Array, ArrayRecord

    from together_llm.together.arrays import SCALE, decode, to_record

    start, peer = adapters()
    name = "m.q_proj.lora_B.weight"
    good = to_record(peer, "int8", start)
    reference = to_record(start)

    def changed(**arrays):
        record = {k: good[k] for k in good.keys()}
        record.update(arrays)
        return ArrayRecord({k: v for k, v in record.items() if v is not None})

    cases = {
        "without its scales": changed(**{name + SCALE: None}),
        "malformed": changed(**{name: Array(good[name].numpy().astype(np.int16))}),
        "do not fit": changed(**{name + SCALE: Array(np.ones((1, 5), dtype=np.float32))}),
        "without their tensor": changed(**{name: None}),
    }
    for reason, record in cases.items():
        with pytest.raises(TllmError, match=reason):
            decode(record, reference)


def test_settings_refuse_combinations_that_cannot_work():
    from together_llm.together.settings import Federation

    with pytest.raises(TllmError, match="dp-side server"):
        Federation(transport="int8", dp_noise=0.5, dp_clip=1.0, dp_side="client").check()
    with pytest.raises(TllmError, match="fedavgm's server optimizer"):
        Federation(strategy="fedavgm", aggregate="lora-exact").check()
    with pytest.raises(TllmError, match="already makes the mean exact"):
        Federation(freeze_a=True, aggregate="lora-exact").check()
    with pytest.raises(TllmError, match="--optimizer"):
        Federation(optimizer="lion").check()
    fed = Federation.from_run_config({"freeze-a": "true", "transport": "int8", "eval-every": 5})
    assert fed.freeze_a is True and fed.transport == "int8" and fed.eval_every == 5
    with pytest.raises(TllmError, match="true or false"):
        Federation.from_run_config({"freeze-a": "maybe"})


def test_a_peer_reads_back_exactly_the_config_the_coordinator_sends():
    from together_llm.together.settings import Federation, PeerConfig

    fed = Federation(rank=4, lr=1e-3, freeze_a=True, target_modules="q_proj, v_proj").check()
    record = fed.peer_config("abc123").to_record()
    assert record["local-steps"] == 10 and record["base-fingerprint"] == "abc123"
    # Flower and the recorder add the round's own keys; the peer leaves those to the app
    peer = PeerConfig.from_record({**record, "server-round": 2, "proximal-mu": 0.1})
    assert peer == fed.peer_config("abc123") and peer.target_list == ["q_proj", "v_proj"]
    with pytest.raises(TllmError, match="unknown peer setting 'local-stepz'"):
        PeerConfig.from_record({**record, "local-stepz": 3})
    with pytest.raises(TllmError, match="invalid value 'x' for rank"):
        PeerConfig.from_record({**record, "rank": "x"})


def test_federation_flags_are_made_from_the_settings_and_checked_by_name():
    from click.testing import CliRunner

    from together_llm.cli.together import simulate

    shown = CliRunner().invoke(simulate, ["--help"]).output
    assert "--lora-alpha" in shown and "--transport [fp32|fp16|int8]" in shown
    for flags, message in (
        (["--lora-alpha", "0"], "invalid value '0' for --lora-alpha: must be greater than 0"),
        (["--fraction", "1.5"], "invalid value '1.5' for --fraction: must be above 0 and at"),
        (["--rounds", "0"], "invalid value '0' for --rounds: must be at least 1"),
        (["--strategy", "fedsgd"], "for --strategy: choose one of fedavg"),
    ):
        refused = CliRunner().invoke(simulate, ["--data", "d", *flags])
        assert isinstance(refused.exception, TllmError), refused.output
        assert message in str(refused.exception)

"""The Flower apps of a federation (Flower's Message API): one ServerApp, one ClientApp.

The same objects run in simulation (`simulate.py` builds them with its settings and its
peer homes) and across machines, where Flower loads the module-level `server_app` and
`client_app` (e.g. `together_llm.together.apps:server_app`):
- the ServerApp reads its settings from the run config (settings.Federation keys);
- the ClientApp reads its home and dataset from the SuperNode's node config
  (`--node-config "home='/path/to/home' data='mine'"`).
Everything a peer needs to train (recipe, base fingerprint, round) comes in each message.

Messages: train and evaluate carry {"arrays": the global adapter, "config": ConfigRecord};
a train reply {"arrays": the peer's adapter, "metrics": {"num-examples", "train_loss", ...},
"peer": {"name"}}; an evaluate reply {"metrics": {"num-examples", "eval_loss"}, "peer"}.
On the last round's evaluate message (config "final"), each peer saves the global adapter
into its home as adapters/<name>, with the run's provenance in its card.
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM  # what client-side DP sends

from ..adapters.card import AdapterCard, Federated
from ..errors import TllmError
from ..home import Home
from ..methods import LORA
from ..models.fingerprint import fingerprint
from ..train.model import resolve_base
from . import local, metrics
from .arrays import to_record, to_tensors
from .recorder import make_recorder
from .settings import Federation, PeerConfig
from .strategies import build_strategy

# ----------------------------------------------------------------------------- server


def make_server_app(fed: Federation | None = None, report=print) -> ServerApp:
    """A ServerApp running federation `fed` (None: from the run config); `report(record)`
    sees each round's record as it is written."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_federation(grid, fed or Federation.from_run_config(context.run_config), report)

    return app


def run_federation(grid: Grid, fed: Federation, report=print) -> AdapterCard:
    """Run all rounds; write metrics.jsonl and the final adapter into the server home.
    Returns the final adapter's card."""

    random.seed(fed.seed)  # which peers Flower samples each round
    home = Home.open(fed.server_home)
    _, hf_dir = resolve_base(home, fed.base or None, report=lambda message: None)
    peer_config = fed.peer_config(fingerprint(hf_dir))
    recipe = local.recipe_for(peer_config, fed.eval_data or fed.data)
    model, _, _ = local.load_model(hf_dir, recipe, fed.freeze_a)
    initial = to_record(local.adapter_state(model))
    run_dir = Path(fed.run_dir)

    def write(record: dict) -> None:
        metrics.append(run_dir / "metrics.jsonl", record)
        report(record)

    def global_eval(arrays):
        if not fed.eval_data:
            return None
        return local.evaluate(home, fed.eval_data, peer_config, to_tensors(arrays), split=None)

    sampled = max(1, int(fed.min_peers * fed.fraction))
    wait_for_peers(grid, fed.min_peers)
    # The quorum counts before the first round only: later rounds go on with the peers still
    # connected, so a machine that drops out does not stall the run (Flower's strategies
    # would otherwise wait for min_available_nodes forever).
    strategy = build_strategy(dataclasses.replace(fed, min_peers=1), sampled)
    recorder = make_recorder(strategy, fed.rounds, write, global_eval, fed.eval_every)
    result = recorder_start(recorder, grid, initial, fed, peer_config)
    card = _card(peer_config, fed, recorder, fingerprint(hf_dir))
    local.save(home, peer_config, to_tensors(result.arrays), card)
    return card


def wait_for_peers(grid: Grid, count: int) -> None:
    """Block until `count` peers are connected (at once in simulation, where all are)."""

    while len(list(grid.get_node_ids())) < count:
        time.sleep(1)


def recorder_start(recorder, grid, initial, fed: Federation, peer_config: PeerConfig):
    return recorder.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=fed.rounds,
        timeout=fed.timeout,
        train_config=ConfigRecord(peer_config.to_record()),
        evaluate_config=ConfigRecord(peer_config.to_record()),
        evaluate_fn=recorder.evaluate_fn,
    )


def _card(config: PeerConfig, fed: Federation, recorder, base_fingerprint: str) -> AdapterCard:
    """The final adapter's card in the coordinator's home."""
    return AdapterCard(
        base=fed.base,
        base_fingerprint=base_fingerprint,
        stage=fed.stage,
        method=LORA.name,
        rank=fed.rank,
        data=fed.data,
        steps=fed.rounds * fed.local_steps,
        provenance="federated",
        federated=_provenance(config, sorted(set(recorder.names.values()))),
    )


def _provenance(peer: PeerConfig, peers: list[str]) -> Federated:
    return Federated(
        run_id=peer.run_id,
        rounds=peer.rounds,
        peers=peers,
        strategy=peer.strategy,
        aggregate=peer.aggregate,
        local_steps=peer.local_steps,
        freeze_a=peer.freeze_a,
        transport=peer.transport,
        dp={"noise": peer.dp_noise, "clip": peer.dp_clip} if peer.dp_noise > 0 else None,
    )


# ----------------------------------------------------------------------------- client


def make_client_app(peers: list[tuple[str, str]] | None = None, mods=()) -> ClientApp:
    """A ClientApp. `peers` (simulation): (home path, dataset) by partition id; None: the
    node config's `home` and `data`. `mods`: extra Flower mods (outermost first)."""
    app = ClientApp(mods=[*mods, _clip_when_asked])

    @app.train()
    def train(message: Message, context: Context) -> Message:
        home, data = _peer(context, peers)
        config: dict[str, Any] = dict(message.content["config"])  # int, float, str, bool values
        peer = PeerConfig.from_record(config)
        _check_base(home, peer)
        global_state = to_tensors(message.content["arrays"])
        new_state, found = local.train_round(
            home,
            data,
            peer,
            global_state,
            int(config["server-round"]),
            mu=float(config.get("proximal-mu", 0.0)),
        )
        arrays = to_record(new_state, peer.transport, global_state)
        return Message(
            RecordDict({"arrays": arrays, "metrics": MetricRecord(found), "peer": _name(home)}),
            reply_to=message,
        )

    @app.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        home, data = _peer(context, peers)
        config: dict[str, Any] = dict(message.content["config"])  # int, float, str, bool values
        peer = PeerConfig.from_record(config)
        _check_base(home, peer)
        state = to_tensors(message.content["arrays"])
        found = local.evaluate(home, data, peer, state)
        if config.get("final"):
            _, _, base_fingerprint = local.peer_base(home)
            card = AdapterCard(
                base=home.load_config().model,
                base_fingerprint=base_fingerprint,
                stage=peer.stage,
                method=LORA.name,
                rank=peer.rank,
                data=data,
                steps=peer.rounds * peer.local_steps,
                metrics={k: v for k, v in found.items() if k == "eval_loss"},
                provenance="federated",
                federated=_provenance(
                    peer, [p for p in str(config.get("peers", "")).split(",") if p]
                ),
            )
            local.save(home, peer, state, card)
        return Message(
            RecordDict({"metrics": MetricRecord(found), "peer": _name(home)}), reply_to=message
        )

    return app


def _peer(context: Context, peers) -> tuple[Home, str]:
    if peers is not None:
        path, data = peers[int(context.node_config["partition-id"])]
        return Home.open(path), data
    config = context.node_config
    if "home" not in config or "data" not in config:
        raise TllmError(
            "this SuperNode has no home and data in its node config: start it with "
            "--node-config \"home='/path/to/home' data='dataset'\""
        )
    return Home.open(str(config["home"])), str(config["data"])


def _name(home: Home) -> ConfigRecord:
    return ConfigRecord({"name": home.path.name})


def _check_base(home: Home, peer: PeerConfig) -> None:
    """Refuse to train or load a global adapter made for another base model."""
    _, _, own = local.peer_base(home)
    wanted = peer.base_fingerprint
    if wanted and wanted != own:
        raise TllmError(
            f"this home's base model (fingerprint {own}) is not the federation's "
            f"({wanted}); set assistant.yaml's model to the same base"
        )


def _clip_when_asked(message: Message, context: Context, call_next) -> Message:
    """Flower's fixedclipping_mod on train messages whose config asks for client-side
    clipping (DP with --dp-side client); every other message passes untouched."""
    if message.metadata.message_type == MessageType.TRAIN and any(
        KEY_CLIPPING_NORM in record for record in message.content.config_records.values()
    ):
        return fixedclipping_mod(message, context, call_next)
    return call_next(message, context)


# Deployment entry points (`flwr`'s serverapp / clientapp components)
server_app = make_server_app()
client_app = make_client_app()

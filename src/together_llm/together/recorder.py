"""The outermost strategy: it passes every call to the real one (strategies.py) and, on the
way, keeps the round going and writes down what happened.

- A peer that failed (an error reply: it raised, crashed, or its SuperNode vanished) or sent
  tensors that do not fit the global adapter (other names or shapes, NaN) is left out of
  the aggregation and recorded with its reason; the round aggregates what arrived. Replies
  that come after the round's timeout never reach the strategy (Flower's Grid drops them).
- Per round it records each peer's training loss, examples, seconds and upload, each peer's
  loss on its held-out split, the global held-out loss (the server's `evaluate_fn`), the
  bytes sent each way and the wall time, as one line of metrics.jsonl (metrics.py).
"""

from __future__ import annotations

import time

from .arrays import check_fits, decode, float32_record, payload_bytes


def make_recorder(inner, rounds: int, write, global_eval=None, eval_every: int = 1):
    """A Recorder around strategy `inner`; `write(record)` stores and shows a round's record;
    `global_eval(arrays)` -> {"eval_loss", ...} or None. Held-out losses (the peers' and the
    global one) are measured before round 1, every `eval_every` rounds and after the last."""
    from flwr.serverapp.strategy import Strategy

    class Recorder(Strategy):
        def __init__(self) -> None:
            self.inner, self.rounds, self.write = inner, rounds, write
            self.global_eval = global_eval
            self.measured = lambda r: r == 0 or r % eval_every == 0 or r == rounds
            self.names: dict[int, str] = {}  # node id -> peer name, from its replies
            self.record: dict = {}
            self.current = None

        def summary(self) -> None:
            self.inner.summary()

        # ------------------------------------------------------------ training
        def configure_train(self, server_round, arrays, config, grid):
            self.current = arrays
            self.record = {
                "round": server_round,
                "start": time.time(),
                "peers": {},
                "failures": [],
                "bytes_down": 0,
                "bytes_up": 0,
            }
            messages = list(self.inner.configure_train(server_round, arrays, config, grid))
            self.record["sampled"] = len(messages)
            self.record["bytes_down"] += payload_bytes(arrays) * len(messages)
            return messages

        def aggregate_train(self, server_round, replies):
            good = []
            for message in replies:
                node = message.metadata.src_node_id
                arrays, reason = self._check(message)
                if reason:
                    self.record["failures"].append(
                        {
                            "peer": self.names.get(node, f"node {node}"),
                            "stage": "train",
                            "reason": reason,
                        }
                    )
                    continue
                content = message.content
                name = self._name(node, content)
                metrics = dict(content["metrics"])
                sent = payload_bytes(content["arrays"])
                content["arrays"] = arrays  # what the strategy averages: float32 adapters
                self.record["bytes_up"] += sent
                self.record["peers"][name] = {
                    "train_loss": metrics.get("train_loss"),
                    "examples": metrics.get("num-examples"),
                    "seconds": round(float(metrics.get("seconds", 0.0)), 3),
                    "drift": metrics.get("drift"),
                    "bytes_up": sent,
                }
                good.append(message)
            if not good:  # nothing usable arrived: the global adapter stays as it was
                return None, None
            arrays, found = self.inner.aggregate_train(server_round, good)
            return (None if arrays is None else float32_record(arrays)), found

        def _check(self, message):
            """(the reply's adapter as float32, None), or (None, why it is unusable)."""
            if message.has_error():
                return None, str(message.error.reason).strip().splitlines()[-1][:300]
            try:
                arrays = decode(message.content["arrays"], self.current)  # int8: an update
                check_fits(arrays, self.current)
                float(message.content["metrics"]["num-examples"])
            except Exception as exc:
                return None, f"unusable reply: {exc}"
            return arrays, None

        def _name(self, node: int, content) -> str:
            try:
                self.names[node] = str(content["peer"]["name"])
            except (KeyError, TypeError):
                self.names.setdefault(node, f"node {node}")
            return self.names[node]

        # ------------------------------------------------------------ evaluation
        def configure_evaluate(self, server_round, arrays, config, grid):
            if not self.measured(server_round):
                return []
            config["final"] = server_round == self.rounds
            config["peers"] = ",".join(sorted(set(self.names.values())))
            messages = list(self.inner.configure_evaluate(server_round, arrays, config, grid))
            self.record["bytes_down"] += payload_bytes(arrays) * len(messages)
            return messages

        def aggregate_evaluate(self, server_round, replies):
            good = []
            for message in replies:
                node = message.metadata.src_node_id
                if message.has_error():
                    self.record["failures"].append(
                        {
                            "peer": self.names.get(node, f"node {node}"),
                            "stage": "evaluate",
                            "reason": str(message.error.reason).strip().splitlines()[-1][:300],
                        }
                    )
                    continue
                name = self._name(node, message.content)
                metrics = dict(message.content["metrics"])
                if metrics.get("num-examples"):
                    self.record["peers"].setdefault(name, {})["eval_loss"] = metrics.get(
                        "eval_loss"
                    )
                    good.append(message)
            return self.inner.aggregate_evaluate(server_round, good) if good else None

        # ------------------------------------------------------------ end of a round
        def evaluate_fn(self, server_round, arrays):
            """Strategy.start calls this last in every round (and once before round 1)."""
            if server_round == 0:
                self.record = {"round": 0, "start": time.time(), "peers": {}, "failures": []}
            found = (
                self.global_eval(arrays)
                if self.global_eval and self.measured(server_round)
                else None
            )
            start = self.record.pop("start", time.time())
            record = {
                **self.record,
                "global_eval_loss": (found or {}).get("eval_loss"),
                "seconds": round(time.time() - start, 3),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            self.write(record)
            return None  # Flower keeps its own history; ours is metrics.jsonl

    return Recorder()

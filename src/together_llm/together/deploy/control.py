"""Talking to our own SuperLink's Control API (what `flwr run`, `flwr ls` and `flwr supernode
register` do, from Python, so `serve` needs no Flower config file and no extra process).

A run is a Flower App: a folder whose pyproject.toml names the package's ServerApp and
ClientApp (`together_llm.together.apps:server_app` / `:client_app`) and carries the
federation's settings as its run config. Flower bundles that folder (a FAB) and sends it to
the SuperNodes; the bundle holds no code, only the config: every peer runs the ClientApp of
its own installed together-llm.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path

import tomli_w

from ...errors import TllmError
from ..settings import Federation

APP_NAME = "together-llm-federation"
COMPONENTS = {
    "serverapp": "together_llm.together.apps:server_app",
    "clientapp": "together_llm.together.apps:client_app",
}


def write_app(folder: Path, fed: Federation) -> Path:
    """The Flower App folder of federation `fed`."""

    from flwr import __version__ as flwr_version

    project = {
        "name": APP_NAME,
        "version": "1.0.0",
        "description": "Together-LLM: federated LoRA between assistants",
        "dependencies": [f"flwr>={flwr_version}", "together-llm"],
    }
    app = {"publisher": "together-llm", "components": COMPONENTS, "config": fed.to_run_config()}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(
        tomli_w.dumps({"project": project, "tool": {"flwr": {"app": app}}}), encoding="utf-8"
    )
    return folder


class Control:
    """A Control API client for the SuperLink at `address` (TLS checked against `ca`)."""

    def __init__(self, address: str, ca: Path | None):
        from flwr.cli.typing import SuperLinkConnection
        from flwr.cli.utils import init_http_client_from_connection

        connection = SuperLinkConnection(
            name="together",
            address=address,
            root_certificates=str(ca) if ca else None,
            insecure=ca is None,
        )
        with _quiet():  # Flower's CLI prints "Using SuperLink ..." on stdout
            self.client = init_http_client_from_connection(connection)

    def close(self) -> None:
        self.client.close()

    def ready(self) -> bool:
        """Whether the SuperLink answers."""
        from flwr.proto.control_pb2 import ListRunsRequest

        try:
            with _quiet():
                self.client.ListRuns(ListRunsRequest(limit=1))
            return True
        except Exception:
            return False

    def register(self, public_key, name: str) -> int:
        """Allow the SuperNode holding the private half of `public_key`; its node id."""
        from flwr.proto.control_pb2 import RegisterNodeRequest
        from flwr.supercore.primitives.asymmetric import public_key_to_bytes

        response = self._call(
            self.client.RegisterNode,
            RegisterNodeRequest(public_key=public_key_to_bytes(public_key), name=name),
            f"registering {name}'s key",
        )
        return int(response.node_id)

    def start(self, app: Path) -> int:
        """Submit the Flower App in folder `app`; Flower's run id."""

        from flwr.cli.build import build_fab_from_disk
        from flwr.common.serde import fab_to_proto, user_config_to_proto
        from flwr.proto.control_pb2 import StartRunRequest
        from flwr.supercore.fab import Fab

        fab_bytes = build_fab_from_disk(app)
        fab = Fab(hashlib.sha256(fab_bytes).hexdigest(), fab_bytes, {})
        request = StartRunRequest(
            fab=fab_to_proto(fab),
            override_config=user_config_to_proto({}),
            federation="",
            app_spec="",
        )
        response = self._call(self.client.StartRun, request, "starting the run")
        if not response.HasField("run_id"):
            raise TllmError("the SuperLink did not start the run")
        return int(response.run_id)

    def status(self, run_id: int) -> tuple[str, str, str]:
        """(status, sub-status, details) of Flower run `run_id`: e.g. ("running", "", ""),
        ("finished", "completed", "") or ("finished", "failed", why)."""
        from flwr.common.serde import run_from_proto
        from flwr.proto.control_pb2 import ListRunsRequest

        response = self._call(
            self.client.ListRuns, ListRunsRequest(run_id=run_id), "reading the run"
        )
        for proto in response.run_dict.values():
            run = run_from_proto(proto)
            return run.status.status, run.status.sub_status, run.status.details
        raise TllmError(f"the SuperLink has no run {run_id}")

    def stop(self, run_id: int) -> None:
        from flwr.proto.control_pb2 import StopRunRequest

        with contextlib.suppress(Exception):
            self.client.StopRun(StopRunRequest(run_id=run_id))

    def _call(self, method, request, what: str):
        try:
            with _quiet():
                return method(request)
        except Exception as exc:
            raise TllmError(f"the SuperLink refused {what}: {exc}") from None


@contextlib.contextmanager
def _quiet():
    """Flower's CLI helpers print ("Using SuperLink ...") where our output goes: drop it."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield

"""Flower's SuperLink, with its Control and Runtime APIs kept to this machine.

`python -m together_llm.together.deploy.link ARGS` is `flower-superlink ARGS` (Flower 1.42)
plus one guard. In 1.42 the SuperLink serves three APIs on one HTTP port: the Fleet API that
SuperNodes use, the Control API (start runs, register SuperNodes' keys) and the Runtime API
(the ServerApp's). Open-source Flower does not authenticate the Control API, so anyone who
reaches the port could register their own SuperNode key (defeating node authentication) or
start a run of their own code. The guard answers 403 to every request outside the Fleet API
(and /health) unless it comes from this machine, which is where `tllm together serve` and its
ServerApp run.
"""

from __future__ import annotations

import ipaddress

OPEN_PREFIXES = ("/v1/fleet/", "/health")


def from_this_machine(client: str | None, server: str | None) -> bool:
    """A connection from loopback, or to this machine's own address from that address."""
    if not client:
        return False
    try:
        if ipaddress.ip_address(client).is_loopback:
            return True
    except ValueError:
        return False
    return client == server


class LocalOnlyControl:
    """ASGI middleware: the Fleet API for everyone, the rest for this machine only."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not scope["path"].startswith(OPEN_PREFIXES):
            client = (scope.get("client") or (None,))[0]
            server = (scope.get("server") or (None,))[0]
            if not from_this_machine(client, server):
                body = (
                    b'{"detail": "the Control and Runtime APIs of this SuperLink answer '
                    b'only its own machine"}'
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def main() -> None:
    import flwr.superlink.main as link_app
    from flwr.superlink.cli.flower_superlink import flower_superlink

    create_app = link_app.create_app

    def guarded(*args, **kwargs):
        app = create_app(*args, **kwargs)
        app.add_middleware(LocalOnlyControl)  # outermost: before any Flower handler
        return app

    # flower_superlink imports create_app from this module when it starts serving
    link_app.create_app = guarded
    flower_superlink()


if __name__ == "__main__":
    main()

"""Server settings: from `tllm serve` flags, the environment and assistant.yaml."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from ..errors import TllmError


@dataclass
class ServeSettings:
    """How `tllm serve` listens and what it accepts."""

    home: str | None = None  # the home to serve (default: $TLLM_HOME or ~/.together-llm)
    host: str = "127.0.0.1"  # loopback by default; anything else needs an API key
    port: int = 8000
    api_key: str | None = field(default_factory=lambda: os.environ.get("TLLM_API_KEY") or None)
    ui: bool = True  # the web chat at /
    cors_origins: list[str] = field(
        default_factory=list
    )  # browsers from these origins may call the API
    max_body_bytes: int = 2_000_000  # larger request bodies get 413
    max_n: int = 8  # most choices one request may ask for
    slots: int = 8  # requests decoded together on llama.cpp (continuous batching)
    knowledge: bool | None = (
        None  # retrieval into chat completions; None: assistant.yaml's `knowledge`
    )

    def check(self) -> None:
        """Refuse to listen beyond this machine without a key."""
        if not self.api_key and not is_loopback(self.host):
            raise TllmError(
                f"refusing to listen on {self.host} without an API key: anyone who "
                "can reach it could use the assistant. Pass --api-key KEY (or set "
                "TLLM_API_KEY), or listen on 127.0.0.1"
            )
        if not 1 <= self.slots <= 64:
            raise TllmError(f"slots must be between 1 and 64, not {self.slots}")
        if not 0 < self.port < 65536:
            raise TllmError(f"port {self.port} is not between 1 and 65535")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere

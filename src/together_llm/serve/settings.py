"""Server settings: from `tllm serve` flags, the environment and assistant.yaml."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from ..errors import TllmError
from ..settings_kit import check_fields, setting


@dataclass
class ServeSettings:
    """How `tllm serve` listens and what it accepts (each field with a flag is one option of
    `tllm serve`)."""

    home: str | None = setting(None, "the home to serve", cli=False)
    host: str = setting("127.0.0.1", "Address to listen on; anything but loopback needs --api-key.")
    port: int = setting(8000, "Port to listen on.", low=1, high=65535)
    api_key: str | None = field(
        default_factory=lambda: os.environ.get("TLLM_API_KEY") or None,
        metadata={"help": "Require 'Authorization: Bearer KEY'", "cli": False},
    )
    ui: bool = setting(True, "Serve the web app at / (--no-ui: only the API).")
    cors_origins: list[str] = setting([], "browsers from these origins may call the API", cli=False)
    max_body_bytes: int = setting(2_000_000, "Larger request bodies are refused (413).", low=1)
    max_n: int = setting(8, "Most choices (n) one request may ask for.", low=1)
    slots: int = setting(
        8, "Requests decoded together (llama.cpp continuous batching).", low=1, high=64
    )
    adapters_mib: int = setting(
        1024,
        "Adapters stay loaded beside the base model up to this many MiB; beyond it the least "
        "recently used are unloaded (and loaded again when asked for).",
        low=1,
    )
    knowledge: bool | None = setting(
        None,
        "Answer chat completions from your documents, with a `sources` field (default: "
        "assistant.yaml's `knowledge`; a request's \"knowledge\" overrides).",
    )

    def check(self) -> ServeSettings:
        """Every value against its field; and no listening beyond this machine without a key."""
        check_fields(self)
        if not self.api_key and not is_loopback(self.host):
            raise TllmError(
                f"refusing to listen on {self.host} without an API key: anyone who "
                "can reach it could use the assistant. Pass --api-key KEY (or set "
                "TLLM_API_KEY), or listen on 127.0.0.1"
            )
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere

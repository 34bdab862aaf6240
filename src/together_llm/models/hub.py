"""Hugging Face hub ids: downloaded once, safetensors only, when a model is added.

On a machine without network this fails at once with a message that says so, instead of
hanging in retries: a quick connection check runs before the download starts.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from ..errors import TllmError

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
WANTED = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]


def looks_like_hub_id(source: str) -> bool:
    return bool(HUB_ID.match(source))


def _check_reachable(endpoint: str) -> None:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise TllmError("cannot download from the Hugging Face hub: HF_HUB_OFFLINE is set")
    host = urlparse(endpoint).hostname or endpoint
    port = urlparse(endpoint).port or 443
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise TllmError(
            f"cannot download from the Hugging Face hub: this machine cannot reach "
            f"{host} ({exc.strerror or exc}); it looks offline. Copy the model "
            "directory here and run `tllm models add NAME DIR` instead"
        ) from None


def download(repo_id: str, target: Path) -> Path:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    _check_reachable(endpoint)
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, local_dir=str(target), allow_patterns=WANTED)
    except Exception as exc:  # hub errors come in many classes; the message is what matters
        raise TllmError(f"could not download {repo_id}: {exc}") from None
    if not any(target.glob("*.safetensors")):
        raise TllmError(f"{repo_id} has no safetensors weights; pickle weights are never loaded")
    return target

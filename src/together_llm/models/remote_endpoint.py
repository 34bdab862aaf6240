"""An OpenAI-compatible endpoint over HTTP (another `tllm serve`, a hosted provider, a
llama.cpp server): opening a request with the key and turning its errors into ours, and
asking which models it has. The remote engine streams answers through it; the registry asks
it which models it offers when one is added. Standard library only: no HTTP client
dependency."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from ..errors import EngineError, TllmError


class Endpoint:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 600):
        self.url, self.api_key, self.timeout = url.rstrip("/"), api_key, timeout

    def open(self, path: str, body: dict | None = None):
        """The response to GET `path` (POST when there is a `body`); a 4xx is a TllmError
        with the server's own message, a 5xx or no answer an EngineError."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, headers=headers, method="POST" if data else "GET"
        )
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            error = EngineError if exc.code >= 500 else TllmError
            raise error(f"{self.url} answered {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EngineError(f"cannot reach {self.url}: {reason}") from None

    def models(self) -> list[str]:
        with self.open("/models") as response:
            return [item["id"] for item in json.loads(response.read())["data"]]

"""Request guards: the bearer API key (compared in constant time) and the body-size bound."""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import APIError, error_response


def require_key(request: Request) -> None:
    """FastAPI dependency: refuse a missing or wrong `Authorization: Bearer KEY`."""
    expected = request.app.state.settings.api_key
    if not expected:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise APIError(
            401, "missing API key: send 'Authorization: Bearer KEY'", code="invalid_api_key"
        )
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise APIError(401, "incorrect API key", code="invalid_api_key")


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` gets 413, whether it declares its length or
    streams in chunks, and is never read past the limit."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(413, f"request body is larger than {self.max_bytes} bytes")
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope, receive, send):
        response = error_response(
            413, f"request body is larger than {self.max_bytes} bytes", code="request_too_large"
        )
        await response(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on as a 413, not a 400."""

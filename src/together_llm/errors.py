"""The one exception type users see.

Every failure a user can cause (a bad name, a missing file, a refused combination) raises
`TllmError` with a one-line message that says what was wrong and what would work instead.
The CLI prints that line and exits non-zero; anything else is a bug and shows a traceback
only under `--debug`.
"""

import re

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class TllmError(Exception):
    """A user-facing failure with a specific, actionable message."""

    exit_code = 1


class RefusedError(TllmError):
    """A request that cannot work (method × architecture, dataset kind × stage), refused
    before anything heavy is loaded."""


def check_name(name: str, what: str = "name") -> str:
    """Return `name` if it is safe to use as a file or directory name, else refuse it."""
    if not NAME_PATTERN.match(name) or name in {".", ".."}:
        raise TllmError(
            f"invalid {what} {name!r}: use 1-128 characters from letters, digits, '.', '_' and '-'"
        )
    return name


class EngineError(TllmError):
    """The model side failed (a decode error, a closed engine, an unreachable remote): not
    the request's fault, so the API answers 503, not 400."""


class ContextError(TllmError):
    """A prompt that does not fit the model's context window."""

"""One kit for every settings class: each field states its help, choices and bounds once.

A settings class is a dataclass whose fields are made by `setting(...)`. From those fields
alone the kit
- turns a raw value (YAML, a flag's text, a Flower run config) into the field's type and
  checks its choices and bounds (`coerce`),
- builds an instance from a mapping, refusing unknown keys by name (`from_mapping`),
- re-checks an instance built directly in code (`check_fields`), and
- makes the click options of a command (`click_options`), so a flag and the setting it
  fills cannot drift apart.

What one field cannot check (a minimum above a maximum, two settings that exclude each
other) stays in the class's own `check()`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

from .errors import TllmError

_EXPECTED = {
    int: "an integer",
    float: "a finite number",
    bool: "true or false",
    list: "a comma-separated list",
    str: "text",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    choices: Iterable[str] | None = None,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    below: float | None = None,
    flag: str | None = None,
    short: str | None = None,
    metavar: str | None = None,
    multiple: bool = False,
    cli: bool = True,
) -> Any:
    """A dataclass field that documents and bounds itself.

    low/high: inclusive bounds; above/below: exclusive ones. flag: the option's name when it
    is not `--field-name`; short: a one-letter alias (`-n`); multiple: a list option given
    once per item (for items that may hold commas, such as patterns); cli=False: no option
    is made (settings a command fills itself, such as the run's folder)."""
    meta = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "low": low,
        "high": high,
        "above": above,
        "below": below,
        "flag": flag,
        "short": short,
        "metavar": metavar,
        "multiple": multiple,
        "cli": cli,
    }
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _hints(cls: type) -> dict[str, Any]:
    """Each field's annotation, evaluated (this module's classes use postponed annotations)."""
    return typing.get_type_hints(cls)


def _plain(kind: Any) -> tuple[Any, bool]:
    """(the type a value is read as, whether None is allowed) of a field's annotation."""
    optional = False
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional, kind = len(args) < len(typing.get_args(kind)), args[0]
    return typing.get_origin(kind) or kind, optional


def _read(raw: Any, kind: Any) -> Any:
    """`raw` as a `kind`; ValueError when it is not one."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in _TRUE + _FALSE:
            raise ValueError
        return text in _TRUE
    if kind is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        return int(raw)
    if kind is float:
        if isinstance(raw, bool):
            raise ValueError
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError
        return value
    if kind is list:
        if isinstance(raw, str):
            return [part.strip() for part in raw.split(",") if part.strip()]
        if isinstance(raw, (list, tuple)) and all(isinstance(x, str) for x in raw):
            return list(raw)
        raise ValueError
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise ValueError
    return str(raw)


def bounds_text(meta: Mapping[str, Any]) -> str | None:
    """The bounds of a field in words ("at least 1", "above 0 and at most 1"), or None."""
    low, high, above, below = (meta.get(k) for k in ("low", "high", "above", "below"))
    lower = f"at least {low:g}" if low is not None else None
    lower = f"above {above:g}" if above is not None else lower
    upper = f"at most {high:g}" if high is not None else None
    upper = f"below {below:g}" if below is not None else upper
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    if lower and upper:
        return f"{lower} and {upper}"
    if above is not None and upper is None:
        return f"greater than {above:g}"
    return lower or upper


def _in_bounds(value: Any, meta: Mapping[str, Any]) -> bool:
    low, high, above, below = (meta.get(k) for k in ("low", "high", "above", "below"))
    return not (
        (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and not value > above)
        or (below is not None and not value < below)
    )


def coerce(key: str, raw: Any, kind: Any, meta: Mapping[str, Any]) -> Any:
    """`raw` read as the annotation `kind` and checked against the field's choices and
    bounds; a TllmError that names `key` otherwise."""
    plain, optional = _plain(kind)
    if optional and (raw is None or (isinstance(raw, str) and raw.lower() in ("", "none", "null"))):
        return None
    try:
        value = _read(raw, plain)
    except (TypeError, ValueError):
        expected = _EXPECTED.get(plain, "text")
        raise TllmError(f"invalid value {raw!r} for {key}: expected {expected}") from None
    choices = meta.get("choices")
    if choices and value not in choices:
        raise TllmError(f"invalid value {raw!r} for {key}: choose one of {', '.join(choices)}")
    if plain in (int, float) and not _in_bounds(value, meta):
        raise TllmError(f"invalid value {raw!r} for {key}: must be {bounds_text(meta)}")
    return value


def field_name(f: dataclasses.Field) -> str:
    """A setting named as in YAML files and Python: `max_steps`."""
    return f.name


def flag_name(f: dataclasses.Field) -> str:
    """A setting named as on the command line: `--max-steps` (or the field's own `flag`)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def kebab_name(f: dataclasses.Field) -> str:
    """A setting named as in a Flower run config or ConfigRecord: `max-steps`."""
    return f.name.replace("_", "-")


def option_dest(f: dataclasses.Field) -> str:
    """The keyword argument click passes a setting's option as: `--lora-alpha` -> lora_alpha."""
    return flag_name(f)[2:].replace("-", "_")


Naming = Callable[[dataclasses.Field], str]


def leaf_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of settings class `cls` that hold a value (not a nested settings class)."""
    hints = _hints(cls)
    return [
        f
        for f in dataclasses.fields(cls)
        if not (isinstance(hints[f.name], type) and dataclasses.is_dataclass(hints[f.name]))
    ]


def set_field(
    obj: Any, key: str, raw: Any, *, what: str = "setting", name: Naming = field_name
) -> None:
    """Set the field that `name` calls `key` from a raw value, checking type and bounds."""
    known = {name(f): f for f in leaf_fields(type(obj))}
    if key not in known:
        raise TllmError(f"unknown {what} {key!r}; {what}s: {', '.join(known)}")
    f = known[key]
    setattr(obj, f.name, coerce(key, raw, _hints(type(obj))[f.name], f.metadata))


def from_mapping(
    cls: type,
    values: Mapping[str, Any],
    /,
    *,
    what: str = "setting",
    name: Naming = field_name,
    **fixed: Any,
) -> Any:
    """An instance of `cls` from `values` (keys as `name` writes them), every value checked
    and unknown keys refused by name; `fixed`: field values given in code."""
    obj = cls(**fixed)
    for key, raw in values.items():
        set_field(obj, str(key), raw, what=what, name=name)
    return obj


def check_fields(obj: Any, *, name: Naming = flag_name) -> Any:
    """Check (and convert in place) every value of `obj` against its field; `obj` back."""
    hints = _hints(type(obj))
    for f in leaf_fields(type(obj)):
        value = getattr(obj, f.name)
        setattr(obj, f.name, coerce(name(f), value, hints[f.name], f.metadata))
    return obj


def to_mapping(obj: Any, *, name: Naming = field_name) -> dict[str, Any]:
    """The leaf values of `obj`, keyed as `name` writes them."""
    return {name(f): getattr(obj, f.name) for f in leaf_fields(type(obj))}


def click_options(
    cls: type, *, skip: Iterable[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one click option per field of `cls` (except `skip` and fields made
    with cli=False). Every option defaults to None, meaning "not given": the value then comes
    from the class's default (or a recipe file), and the kit checks it like any other."""
    hints = _hints(cls)
    skipped = set(skip)
    chosen = [f for f in leaf_fields(cls) if f.metadata.get("cli", True) and f.name not in skipped]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(chosen):
            func = _option(f, hints[f.name])(func)
        return func

    return decorate


def from_options(cls: type, values: Mapping[str, Any], /, **fixed: Any) -> Any:
    """An instance of `cls` from the keyword arguments of `click_options` (None: not given),
    each value checked and named by its flag in errors; `fixed`: values given in code."""
    hints = _hints(cls)
    chosen = dict(fixed)
    for f in leaf_fields(cls):
        raw = values.get(option_dest(f))
        if raw is not None and raw != ():  # () is a repeatable option given no times
            chosen[f.name] = coerce(flag_name(f), raw, hints[f.name], f.metadata)
    return cls(**chosen)


def _option(f: dataclasses.Field, kind: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    meta = f.metadata
    flag = flag_name(f)
    names = [flag] + ([meta["short"]] if meta.get("short") else [])
    default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    plain, _ = _plain(kind)
    if plain is bool:
        shown = " [default: on]" if default else ""
        return click.option(
            f"{flag}/--no-{flag[2:]}", option_dest(f), default=None, help=meta["help"] + shown
        )
    unset: tuple[Any, ...] = (None, [], "", dataclasses.MISSING)
    notes = [] if default in unset else [f"default: {default}"]
    bounds = bounds_text(meta) if plain in (int, float) else None
    notes += [bounds] if bounds else []
    return click.option(
        *names,
        option_dest(f),
        default=None,
        required=default is dataclasses.MISSING,
        multiple=bool(meta.get("multiple")),
        metavar=meta.get("metavar") or _metavar(plain, meta.get("choices")),
        help=meta["help"] + (f" [{'; '.join(notes)}]" if notes else ""),
    )


def _metavar(kind: Any, choices: tuple[str, ...] | None) -> str:
    if choices:
        return "[" + "|".join(choices) + "]"
    return {int: "N", float: "X", list: "A,B"}.get(kind, "TEXT")

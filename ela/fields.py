"""Typed reading of JSON objects that come from files (a model's metadata, a run's config).

Such a file may have been written by another version, edited by hand or damaged: each value is
checked for its JSON type and range here, so `"false"` is never read as true, `7.9` is never
truncated to an integer, and every problem is one ValueError naming the field."""
from __future__ import annotations

import math
from typing import Any

REQUIRED = object()


class FieldError(ValueError):
    """A JSON field with the wrong type or an out-of-range value; the message names it."""


def mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise FieldError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _get(d: dict, key: str, where: str, default: Any) -> Any:
    if key in d:
        return d[key]
    if default is REQUIRED:
        raise FieldError(f"{where}.{key} is missing")
    return default


def integer(d: dict, key: str, where: str, lo: int, hi: int, default: Any = REQUIRED) -> int:
    value = _get(d, key, where, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise FieldError(f"{where}.{key} must be an integer in {lo}..{hi}, got {value!r:.60}")
    return value


def number(d: dict, key: str, where: str, lo: float, hi: float, default: Any = REQUIRED,
           open_interval: bool = False) -> float:
    """A finite number in [lo, hi], or in (lo, hi) with `open_interval`."""
    value = _get(d, key, where, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    inside = ok and (lo < value < hi if open_interval else lo <= value <= hi)
    if not inside:
        span = f"({lo}, {hi})" if open_interval else f"[{lo}, {hi}]"
        raise FieldError(f"{where}.{key} must be a number in {span}, got {value!r:.60}")
    return float(value)


def boolean(d: dict, key: str, where: str, default: Any = REQUIRED) -> bool:
    value = _get(d, key, where, default)
    if not isinstance(value, bool):
        raise FieldError(f"{where}.{key} must be true or false, got {value!r:.60}")
    return value


def text(d: dict, key: str, where: str, default: Any = REQUIRED) -> str:
    value = _get(d, key, where, default)
    if not isinstance(value, str):
        raise FieldError(f"{where}.{key} must be a string, got {value!r:.60}")
    return value


def texts(d: dict, key: str, where: str, default: Any = REQUIRED) -> tuple[str, ...]:
    """A JSON array of strings, as a tuple."""
    value = _get(d, key, where, default)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise FieldError(f"{where}.{key} must be an array of strings, got {value!r:.60}")
    return tuple(value)

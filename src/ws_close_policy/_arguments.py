"""Checks of the caller's arguments, shared by every constructor and function.

A wrong type raises ``TypeError`` and a bad value raises ``ValueError``; both messages start
with the argument's name. ``bool`` is refused where an ``int`` is expected (``True`` is an
``int`` to Python, never a sensible limit or code), and any ``int`` is compared as an
``int``: a huge value is a ``ValueError``, never an ``OverflowError``.

These are errors of the code calling the library. Bad input from a *peer* never raises: it
becomes a ``Close``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = [
    "boolean",
    "callable_or_none",
    "function",
    "instance",
    "integer",
    "mapping",
    "non_negative_int",
    "positive_int",
    "positive_number",
    "text",
]

T = TypeVar("T")


def _type_name(value: object) -> str:
    return type(value).__name__


def instance(value: object, kind: type[T], name: str) -> T:
    """``value`` if it is a ``kind``, else ``TypeError`` naming ``name``."""
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__}, not {_type_name(value)}")
    return value


def integer(value: object, name: str) -> int:
    """``value`` if it is an ``int`` (not a ``bool``), else ``TypeError``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {_type_name(value)}")
    return value


def positive_int(value: object, name: str, *, upper: int | None = None) -> int:
    """A positive ``int`` (at most ``upper`` when given); ``ValueError`` otherwise."""
    number = integer(value, name)
    if number < 1:
        raise ValueError(f"{name} must be a positive int, got {number}")
    if upper is not None and number > upper:
        raise ValueError(f"{name} must be at most {upper}, got {number}")
    return number


def non_negative_int(value: object, name: str) -> int:
    """An ``int`` that is zero or more; ``ValueError`` otherwise."""
    number = integer(value, name)
    if number < 0:
        raise ValueError(f"{name} must be zero or more, got {number}")
    return number


def positive_number(value: object, name: str, *, zero: bool = False) -> float:
    """A finite ``int`` or ``float`` above zero (or zero itself when ``zero``), as a float."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, not {_type_name(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        raise ValueError(f"{name} must be finite, got an int beyond any float") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if number < 0 or (number == 0 and not zero):
        bound = "zero or more" if zero else "positive"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return number


def mapping(value: object, name: str) -> Mapping[Any, Any]:
    """``value`` if it is a mapping, else ``TypeError``."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, not {_type_name(value)}")
    return value


def boolean(value: object, name: str) -> bool:
    """``value`` if it is a ``bool`` (``1`` and ``"yes"`` are not), else ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {_type_name(value)}")
    return value


def text(value: object, name: str) -> str:
    """``value`` if it is a ``str``, else ``TypeError``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type_name(value)}")
    return value


def callable_or_none(value: T, name: str) -> T:
    """``value`` if it is callable or ``None``, else ``TypeError``."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, not {_type_name(value)}")
    return value


def function(value: T, name: str) -> T:
    """``value`` if it is callable, else ``TypeError``."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, not {_type_name(value)}")
    return value

"""JSON codecs: the stdlib (default), orjson and msgspec, and the ``Codec`` protocol.

A codec turns one message's text into a value (``decode``) and a value into text
(``encode``). The three built-in codecs accept exactly the same JSON ("strict JSON"), so
switching codec never changes a decision:

* RFC 8259 JSON only: no ``NaN``/``Infinity``, no byte-order mark, no trailing data;
* every number literal must be finite as an IEEE double (``1e400`` is refused), wherever it
  appears, even under a key that a later duplicate overrides. orjson and msgspec refuse such
  literals as they read them; the json codec does the same through ``parse_float``;
* integers have at most Python's ``int_max_str_digits`` digits (4300 by default). Integers
  beyond 64 bits decode exactly with ``json`` and ``msgspec`` and as a float with orjson;
  beyond a double's range orjson refuses them, so its codec hands those few messages to
  the strict stdlib decoder.

The other strictness rules do not depend on the codec and are checked on the message's text
by :mod:`ws_close_policy._inbound` (nesting depth, ``\\uD800``-style lone surrogate escapes,
duplicate keys when refused): see :mod:`ws_close_policy._jsontext`.

Subclass a built-in codec to change how it decodes or encodes: the decisions always call
``decode`` and ``encode``. orjson and msgspec are imported only when their codec is chosen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ._arguments import text
from ._jsontext import has_lone_surrogate_escape

__all__ = [
    "Codec",
    "DecodeFailed",
    "JsonCodec",
    "MsgspecCodec",
    "OrjsonCodec",
    "codec_named",
    "resolve_codec",
]


class DecodeFailed(ValueError):
    """Raised by a built-in codec's ``decode`` for input that is not strict JSON."""


@runtime_checkable
class Codec(Protocol):
    """What ``InboundPolicy(codec=...)`` and ``OutboundPolicy(codec=...)`` accept.

    ``decode`` turns one message (``str``, or UTF-8 ``bytes`` from a binary frame) into a
    Python value and raises any exception (preferably ``ValueError``) for input it refuses;
    the decision maps every exception to ``Violation.INVALID_JSON``, never letting it
    escape. ``encode`` serialises one message to ``str`` or UTF-8 ``bytes`` (both sent as a
    text frame), raising for values it cannot encode.
    """

    name: str

    def decode(self, data: str | bytes) -> Any:
        """The message ``data`` holds; raises (any exception) for input it refuses."""
        ...

    def encode(self, message: Any) -> str | bytes:
        """``message`` as JSON text (``str``, or UTF-8 ``bytes``)."""
        ...


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise DecodeFailed("number out of range")  # not the literal: it is the peer's data
    return value


def _no_constant(literal: str) -> float:
    raise DecodeFailed(f"{literal} is not JSON")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise DecodeFailed("duplicate key")
    return result


class JsonCodec:
    """The standard library's ``json``, made strict (the default codec).

    Encodes compactly (no spaces), as ASCII, refusing ``NaN``, infinities and strings with
    a lone surrogate (which the inbound side refuses too); a reference cycle ends in
    ``RecursionError``. The outbound decision turns each of these into a close.

    :param reject_duplicate_keys: refuse an object with a repeated key (default False).
    """

    name = "json"

    def __init__(self, *, reject_duplicate_keys: bool = False) -> None:
        self._decoder = json.JSONDecoder(
            parse_float=_finite_float,
            parse_constant=_no_constant,
            object_pairs_hook=_refuse_duplicates if reject_duplicate_keys else None,
        )
        self._encoder = json.JSONEncoder(
            allow_nan=False, check_circular=False, separators=(",", ":")
        )

    def decode(self, data: str | bytes) -> Any:
        """As ``Codec.decode``."""
        text_data = data if isinstance(data, str) else data.decode("utf-8")
        # raw_decode reads one value from the start; JSONDecoder.decode would also match
        # leading and trailing whitespace with two regular expressions first.
        try:
            value, end = self._decoder.raw_decode(text_data)
        except json.JSONDecodeError:
            return self._decoder.decode(text_data)  # leading whitespace: or it explains why
        if end != len(text_data):
            return self._decoder.decode(text_data)  # trailing whitespace, or trailing data
        return value

    def encode(self, message: Any) -> str:
        """As ``Codec.encode``."""
        text = self._encoder.encode(message)
        # As ASCII, a lone surrogate is written "\\udXXX": one search rules it out.
        if "\\ud" in text and has_lone_surrogate_escape(text):  # orjson, msgspec refuse too
            raise ValueError("a string holds a lone surrogate: it is not UTF-8 text")
        return text


class OrjsonCodec:
    """orjson (the ``fast`` extra): strict by itself, several times faster than ``json``."""

    name = "orjson"

    def __init__(self) -> None:
        import orjson

        self._loads: Callable[[str | bytes], Any] = orjson.loads
        self._dumps: Callable[[Any], bytes] = orjson.dumps
        self._error = orjson.JSONDecodeError
        self._exact = JsonCodec()

    def decode(self, data: str | bytes) -> Any:
        """As ``Codec.decode``."""
        try:
            return self._loads(data)
        except self._error as exc:
            # orjson reads every number as a double, refusing integers beyond that range
            # which json and msgspec read exactly: let the strict stdlib codec decide those.
            if "infinity" in str(exc):
                return self._exact.decode(data)
            raise

    def encode(self, message: Any) -> bytes:
        """As ``Codec.encode``."""
        return self._dumps(message)


class MsgspecCodec:
    """msgspec (the ``fast`` extra), optionally decoding straight into a typed ``Struct``.

    With ``type=`` (for example a tagged union of ``msgspec.Struct`` types) decoding and
    validation happen in one pass and ``Accept.message`` is the typed value; a value that
    does not fit the types closes with ``Violation.UNKNOWN_TYPE`` or
    ``Violation.INVALID_MESSAGE``.
    """

    name = "msgspec"

    def __init__(self, type: Any = Any) -> None:
        import msgspec

        self.type = type
        self._decoder = msgspec.json.Decoder(type)
        self._encoder = msgspec.json.Encoder()
        #: Raised by ``decode`` for valid JSON that does not fit ``type``.
        self.validation_error: type[Exception] = msgspec.ValidationError

    @property
    def typed(self) -> bool:
        """Whether messages decode into ``type`` rather than plain JSON values."""
        return self.type is not Any

    def decode(self, data: str | bytes) -> Any:
        """As ``Codec.decode``."""
        return self._decoder.decode(data)

    def encode(self, message: Any) -> bytes:
        """As ``Codec.encode``."""
        return self._encoder.encode(message)


def resolve_codec(codec: str | Codec) -> Codec:
    """A codec from a name or a ``Codec``: ``ValueError`` for an unknown name or a missing
    extra, ``TypeError`` for anything else."""
    if isinstance(codec, str):
        try:
            return codec_named(codec)
        except ImportError as exc:
            raise ValueError(
                f"codec {codec!r} needs {exc.name}: pip install 'ws-close-policy[fast]'"
            ) from exc
    if not isinstance(codec, Codec):
        raise TypeError(f"codec must be a name or implement Codec, not {type(codec).__name__}")
    return codec


def codec_named(name: str) -> Codec:
    """A built-in codec by name: ``"json"``, ``"orjson"`` or ``"msgspec"``."""
    if text(name, "codec") == "json":
        return JsonCodec()
    if name == "orjson":
        return OrjsonCodec()
    if name == "msgspec":
        return MsgspecCodec()
    raise ValueError(f"codec: unknown codec {name!r}; choose json, orjson, msgspec or raw")

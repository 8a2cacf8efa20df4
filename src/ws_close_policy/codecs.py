"""JSON codecs: the stdlib (default), orjson and msgspec, and the ``Codec`` protocol.

All three built-in codecs accept exactly the same inputs ("strict JSON"), so switching codec
never changes a decision:

* RFC 8259 JSON only: no ``NaN``/``Infinity``, no byte-order mark, no trailing data;
* every number must be finite as an IEEE double (``1e400`` is refused); integers have at most
  Python's ``int_max_str_digits`` digits (4300 by default). Integers beyond 64 bits decode
  exactly with ``json`` and ``msgspec`` and as ``float`` with ``orjson``;
* a ``\\uXXXX`` escape may not produce a lone surrogate;
* nesting depth and duplicate keys are checked by :mod:`ws_close_policy.inbound`.

orjson and msgspec are imported only when their codec is chosen.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

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
    """Raised by a codec's ``decode`` for input that is not acceptable JSON."""


@runtime_checkable
class Codec(Protocol):
    """What ``InboundPolicy(codec=...)`` and ``OutboundPolicy(codec=...)`` accept.

    ``decode`` turns one message into a Python value and raises any exception (preferably
    ``ValueError``) for input it refuses; the policy maps every exception to
    ``Violation.INVALID_JSON``, never letting it escape. ``encode`` serialises one message
    to ``str`` (sent as a text frame) or UTF-8 ``bytes``, raising for values it cannot encode.
    """

    name: str

    def decode(self, data: str | bytes) -> Any: ...

    def encode(self, message: Any) -> str | bytes: ...


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise DecodeFailed("number out of range")
    return value


def _no_constant(text: str) -> float:
    raise DecodeFailed(f"{text} is not JSON")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise DecodeFailed("duplicate key")
    return result


# A \uD800-\uDFFF escape: only then can decoding produce a surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if not node.isascii() and _is_lone(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _is_lone(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _c_encoder() -> Callable[[Any, int], Any] | None:
    """The C encoder ``json.dumps`` builds on every call, built once (``None`` without it).

    Compact, ASCII, no NaN/Infinity, no circular-reference bookkeeping: a cycle ends in
    ``RecursionError``, which the outbound decision turns into a 1011 close.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has _json
        return None
    encoder: Callable[[Any, int], Any] = make(
        None, _no_default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )
    return encoder


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class JsonCodec:
    """The standard library's ``json``, made strict (the default codec)."""

    name = "json"

    def __init__(self, *, reject_duplicate_keys: bool = False) -> None:
        self._decoder = json.JSONDecoder(
            parse_float=_finite_float,
            parse_constant=_no_constant,
            object_pairs_hook=_reject_duplicates if reject_duplicate_keys else None,
        )
        self._decode_full: Callable[[str], Any] = self._decoder.decode
        self._scan: Callable[[str, int], tuple[Any, int]] = self._decoder.scan_once  # type: ignore[attr-defined]
        self._encoder = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
        #: The C encoder (returns chunks of str to join), if there is one; the C accelerator
        #: calls it directly too.
        self.fast_encode_chunks = _c_encoder()
        #: For the C accelerator: a scanner that reads floats in C (1e400 becomes inf, which
        #: the accelerator checks for) and otherwise refuses what ``decode`` refuses or
        #: leaves the verdict to it (lone surrogates, trailing data).
        self.fast_scan: Callable[[str, int], tuple[Any, int]] | None = (
            None
            if reject_duplicate_keys
            else json.JSONDecoder(parse_constant=_no_constant).scan_once  # type: ignore[attr-defined]
        )

    def decode(self, data: str | bytes) -> Any:
        text = data if isinstance(data, str) else data.decode("utf-8")
        # Fast path: scan the value directly, skipping JSONDecoder.decode's two whitespace
        # regex matches. Anything unusual (leading or trailing whitespace, trailing data, a
        # bad first character) takes the full decoder, which accepts or explains it.
        try:
            value, end = self._scan(text, 0)
        except StopIteration:
            value, end = self._decode_full(text), -1
        if end != len(text) and end != -1:
            value = self._decode_full(text)
        # Surrogate escapes are rare: look closer only when the text has one.
        if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_surrogate(value):
            raise DecodeFailed("lone surrogate escape")
        return value

    def encode(self, message: Any) -> str:
        if self.fast_encode_chunks is None or type(message) is str:
            return self._encoder.encode(message)
        return "".join(self.fast_encode_chunks(message, 0))


class OrjsonCodec:
    """orjson (the ``fast`` extra): strict by itself, several times faster than ``json``."""

    name = "orjson"

    def __init__(self) -> None:
        import orjson

        self._loads: Callable[[str | bytes], Any] = orjson.loads
        #: The bare decoder, for the hot path; on failure call ``decode`` for the verdict.
        self.fast_decode = self._loads
        self._dumps: Callable[[Any], bytes] = orjson.dumps
        #: The bare encoder, for the C accelerator (``encode`` adds nothing to it).
        self.fast_encode = self._dumps
        self._error = orjson.JSONDecodeError
        self._fallback = JsonCodec()

    def decode(self, data: str | bytes) -> Any:
        try:
            return self._loads(data)
        except self._error as exc:
            # orjson refuses integers beyond the double range that json and msgspec read
            # exactly: let the strict stdlib codec decide those few cases.
            if "infinity" in str(exc):
                return self._fallback.decode(data)
            raise

    def encode(self, message: Any) -> bytes:
        return self._dumps(message)


class MsgspecCodec:
    """msgspec (the ``fast`` extra), optionally decoding straight into a typed ``Struct``.

    With ``type=`` (for example a tagged union of ``msgspec.Struct`` types) decoding and
    validation happen in one pass and ``Accept.message`` is the typed value.
    """

    name = "msgspec"

    def __init__(self, type: Any = Any) -> None:
        import msgspec

        self.type = type
        self._decode: Callable[[str | bytes], Any] = msgspec.json.Decoder(type).decode
        #: The bare decoder, for the hot path (``decode`` adds nothing to it).
        self.fast_decode = self._decode
        self._encode: Callable[[Any], bytes] = msgspec.json.Encoder().encode
        #: The bare encoder, for the C accelerator (``encode`` adds nothing to it).
        self.fast_encode = self._encode
        self.validation_error: type[Exception] = msgspec.ValidationError

    def decode(self, data: str | bytes) -> Any:
        return self._decode(data)

    def encode(self, message: Any) -> bytes:
        return self._encode(message)


def resolve_codec(codec: str | Codec, *, reject_duplicate_keys: bool = False) -> Codec:
    """A codec from a name or a ``Codec``; ``ValueError`` naming ``codec`` otherwise."""
    if isinstance(codec, str):
        try:
            return codec_named(codec, reject_duplicate_keys=reject_duplicate_keys)
        except ImportError as exc:
            raise ValueError(
                f"codec {codec!r} needs {exc.name}: pip install 'ws-close-policy[fast]'"
            ) from exc
    if not isinstance(codec, Codec):
        raise ValueError(f"codec must be a name or implement Codec, got {codec!r}")
    return codec


def codec_named(name: str, *, reject_duplicate_keys: bool = False) -> Codec:
    """A built-in codec by name: ``"json"``, ``"orjson"`` or ``"msgspec"``."""
    if name == "json":
        return JsonCodec(reject_duplicate_keys=reject_duplicate_keys)
    if name == "orjson":
        return OrjsonCodec()
    if name == "msgspec":
        return MsgspecCodec()
    raise ValueError(f"codec: unknown codec {name!r}; choose json, orjson, msgspec or raw")

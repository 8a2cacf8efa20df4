"""Inbound decisions: every received message is accepted or closes the connection.

``decide_inbound(data, policy)`` (see :mod:`ws_close_policy.policy`) checks, in this order:

1. size, before any decoding (``max_bytes``; exactly ``max_bytes`` is accepted);
2. binary frames when the endpoint is text-only, then UTF-8;
3. strict JSON (see :mod:`ws_close_policy.codecs`), nesting depth, duplicate keys;
4. structure: a JSON object with a non-empty string ``type`` that is allowed and whose
   validator passes.

It never raises for any ``str`` or ``bytes``, whatever the codec: every failure is a
``Close`` carrying the profile's code, a short generic reason and the ``Violation``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from ._accel import accelerate_inbound
from .actions import Accept, Close
from .codecs import Codec, JsonCodec, MsgspecCodec, OrjsonCodec, resolve_codec
from .profile import Profile, Violation

__all__ = ["DEFAULT_MAX_BYTES", "InboundPolicy", "Validator"]

#: The default inbound limit, 1 MiB: the same as the ``websockets`` library's ``max_size``.
DEFAULT_MAX_BYTES: Final = 1_048_576
#: Deepest ``max_depth`` allowed: every decoder refuses deeper input by itself (~1000).
MAX_DEPTH_LIMIT: Final = 256

#: A validator receives the decoded message and returns whether it is valid. An exception
#: counts as invalid.
Validator = Callable[[Any], bool]

Decider = Callable[[str | bytes], Accept | Close]


def _positive_int(value: object, name: str, upper: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be at most {upper}, got {value!r}")
    return value


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class InboundPolicy:
    """How received messages are checked. Every argument is validated (``ValueError``).

    :param max_bytes: largest accepted message in UTF-8 bytes (default 1 MiB, 1_048_576).
    :param accept_binary: accept binary frames (as UTF-8 JSON) instead of closing with the
        profile's ``BINARY_UNSUPPORTED`` code (default False).
    :param codec: ``"json"`` (stdlib, default), ``"orjson"``, ``"msgspec"``, ``"raw"`` (no
        decoding: ``Accept(message=data, type=None)``; binary data is passed through as is),
        or an object implementing :class:`~ws_close_policy.codecs.Codec`.
    :param type_field: the field naming the message type (default ``"type"``).
    :param allowed_types: the accepted types, or ``None`` for any non-empty string.
    :param validators: per type, a callable returning whether the message is valid; a false
        result or an exception is ``Violation.INVALID_MESSAGE``.
    :param max_depth: deepest accepted nesting of arrays and objects (default 64, at most 256).
    :param reject_duplicate_keys: treat an object with a repeated key as invalid JSON
        (default False; with orjson or msgspec this adds a second, stdlib parse).
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    accept_binary: bool = False
    codec: str | Codec = "json"
    type_field: str = "type"
    allowed_types: Collection[str] | None = None
    validators: Mapping[str, Validator] = field(default_factory=dict)
    max_depth: int = 64
    reject_duplicate_keys: bool = False
    _codec: Codec | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _positive_int(self.max_bytes, "max_bytes")
        _positive_int(self.max_depth, "max_depth", MAX_DEPTH_LIMIT)
        _flag(self.accept_binary, "accept_binary")
        _flag(self.reject_duplicate_keys, "reject_duplicate_keys")
        if not isinstance(self.type_field, str) or not self.type_field:
            raise ValueError(f"type_field must be a non-empty str, got {self.type_field!r}")
        object.__setattr__(self, "allowed_types", _type_set(self.allowed_types))
        object.__setattr__(self, "validators", _validator_map(self.validators))
        object.__setattr__(self, "_codec", _resolve_codec(self.codec, self.reject_duplicate_keys))


def _type_set(types: Iterable[str] | None) -> frozenset[str] | None:
    if types is None:
        return None
    if isinstance(types, str):
        raise ValueError("allowed_types must be a collection of str, not a str")
    result = frozenset(types)
    if not all(isinstance(t, str) and t for t in result):
        raise ValueError(f"allowed_types must hold non-empty str, got {sorted(map(repr, result))}")
    return result


def _validator_map(validators: Mapping[str, Validator]) -> Mapping[str, Validator]:
    if not isinstance(validators, Mapping):
        raise ValueError(f"validators must be a mapping of type -> callable, got {validators!r}")
    for name, check in validators.items():
        if not isinstance(name, str) or not callable(check):
            raise ValueError(f"validators: {name!r} must map a str to a callable")
    return MappingProxyType(dict(validators))


def _resolve_codec(codec: str | Codec, reject_duplicate_keys: bool) -> Codec | None:
    if codec == "raw":
        return None
    return resolve_codec(codec, reject_duplicate_keys=reject_duplicate_keys)


# --- the decision ------------------------------------------------------------------------

# Depth is measured on the raw JSON text with C-level byte operations, not by walking the
# decoded value (which costs as much as decoding again). The text is known to be valid JSON:
# 1. drop escaped backslashes and quotes, so every remaining quote delimits a string;
# 2. keep only quotes and brackets (as "(" and ")");
# 3. drop string contents: a string without brackets is now '""', removed in one pass; if a
#    quote survives, some string holds a bracket and the exact split below is used;
# 4. remove innermost "()" pairs, one nesting level per pass.
_BRACKETS: Final = bytes.maketrans(b"[{]}", b"(())")
_NOT_SYNTAX: Final = bytes(sorted(set(range(256)) - set(b'[{]}"')))


def _deeper_than(payload: str | bytes, limit: int) -> bool:
    """Whether the valid JSON text ``payload`` nests arrays/objects more than ``limit`` deep."""
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    syntax = raw.translate(_BRACKETS, _NOT_SYNTAX)
    brackets = syntax.replace(b'""', b"")
    if b'"' in brackets:
        brackets = b"".join(syntax.split(b'"')[::2])
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"()", b"")
    return bool(brackets)


def _brackets(payload: str | bytes) -> int:
    if isinstance(payload, str):
        return payload.count("[") + payload.count("{")
    return payload.count(b"[") + payload.count(b"{")


# Above this size the bracket counts are skipped and the depth measured directly.
_COUNT_LIMIT: Final = 4096

_new_accept = object.__new__
_set_message = Accept.__dict__["message"].__set__
_set_type = Accept.__dict__["type"].__set__


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def inbound_decider(
    inbound: InboundPolicy, profile: Profile, *, accelerate: bool = True
) -> Decider:
    """Build the decision function for one policy: everything it needs, looked up once.

    With ``accelerate`` (and the C extension built) its common case runs in C; see
    :mod:`ws_close_policy._accel`.
    """
    close = profile.close_for_violation
    too_big = close(Violation.TOO_BIG)
    binary_unsupported = close(Violation.BINARY_UNSUPPORTED)
    invalid_utf8 = close(Violation.INVALID_UTF8)
    limit = inbound.max_bytes
    accept_binary = inbound.accept_binary
    codec = inbound._codec
    decode = codec.decode if codec is not None else None
    # orjson / msgspec: call the C decoder itself; only a refusal goes through the codec's
    # own decode, which may still accept (orjson and integers beyond a double).
    fast_decode: Callable[[Any], Any] | None = getattr(codec, "fast_decode", None)
    max_depth = inbound.max_depth
    depth_floor = 2 * max_depth + 1
    structure = _structure_check(inbound, profile)
    typed = structure if isinstance(structure, _TypedStructureCheck) else None
    # The plain structure check is inlined below: it runs for every message.
    type_field = inbound.type_field
    allowed = inbound.allowed_types
    validators = inbound.validators
    not_an_object = close(Violation.NOT_AN_OBJECT)
    missing_type = close(Violation.MISSING_TYPE)
    unknown_type = close(Violation.UNKNOWN_TYPE)
    # orjson and msgspec read UTF-8 bytes directly; the stdlib and custom codecs get text.
    fast_codec = isinstance(codec, OrjsonCodec | MsgspecCodec)
    duplicate_check = (
        JsonCodec(reject_duplicate_keys=True).decode
        if inbound.reject_duplicate_keys and fast_codec
        else None
    )

    def decide(data: str | bytes) -> Accept | Close:
        payload: str | bytes = data
        if type(data) is str:
            if len(data) > limit:  # a character is at least one byte: no need to encode
                return too_big
            if not data.isascii():
                try:
                    encoded = data.encode("utf-8")
                except UnicodeEncodeError:  # lone surrogates: only a direct caller sends them
                    if len(data.encode("utf-8", "surrogatepass")) > limit:
                        return too_big
                    return invalid_utf8
                if len(encoded) > limit:
                    return too_big
                if fast_codec:
                    payload = encoded
        elif isinstance(data, bytes | bytearray | memoryview):
            payload = bytes(data)
            if len(payload) > limit:
                return too_big
            if not accept_binary:
                return binary_unsupported
            if decode is None:
                return Accept(payload, None)
            if not payload.isascii():
                try:
                    text = payload.decode("utf-8")
                except UnicodeDecodeError:
                    return invalid_utf8
                if not fast_codec:
                    payload = text
            elif not fast_codec:
                payload = payload.decode("ascii")
        else:
            raise ValueError(f"data must be str or bytes, not {type(data).__name__}")

        if decode is None:
            return Accept(payload, None)
        try:
            message = fast_decode(payload) if fast_decode is not None else decode(payload)
        except RecursionError:
            return close(Violation.INVALID_JSON, "nesting too deep for the decoder")
        except Exception as exc:  # any codec failure is the peer's bad JSON
            if fast_decode is None:
                return structure.on_decode_error(payload, exc)
            try:
                message = decode(payload)
            except RecursionError:
                return close(Violation.INVALID_JSON, "nesting too deep for the decoder")
            except Exception as exc2:
                return structure.on_decode_error(payload, exc2)
        # Depth: text shorter than 2 * max_depth + 2 cannot nest too deep; a short text with
        # at most max_depth brackets cannot either (two cheap counts); anything else is
        # measured on the raw text (the counts would cost as much as measuring).
        size = len(payload)
        if (
            size > depth_floor
            and (size > _COUNT_LIMIT or _brackets(payload) > max_depth)
            and _deeper_than(payload, max_depth)
        ):
            return close(Violation.INVALID_JSON, f"nesting deeper than {max_depth}")
        if duplicate_check is not None:
            try:
                duplicate_check(payload)
            except ValueError as exc:
                return close(Violation.INVALID_JSON, _detail(exc))
        if typed is not None:
            return typed.check(message)

        if type(message) is not dict:
            return not_an_object
        kind = message.get(type_field)
        if type(kind) is not str or not kind:
            return missing_type
        if allowed is not None and kind not in allowed:
            return unknown_type
        if validators:
            return structure.validate(message, kind)
        # Accept is valid by construction here: skip the dataclass __init__ (hot path).
        accept = _new_accept(Accept)
        _set_message(accept, message)
        _set_type(accept, kind)
        return accept

    if not accelerate:
        return decide
    return accelerate_inbound(
        decide,
        codec=codec,
        hooks=bool(validators) or inbound.reject_duplicate_keys or typed is not None,
        limit=limit,
        max_depth=max_depth,
        type_field=type_field,
        allowed=allowed,  # type: ignore[arg-type]
        closes=(not_an_object, missing_type, unknown_type),
    )


class _StructureCheck:
    """The object / type / allowed / validator checks, after a successful decode."""

    def __init__(self, inbound: InboundPolicy, profile: Profile) -> None:
        close = profile.close_for_violation
        self.type_field = inbound.type_field
        self.allowed = inbound.allowed_types
        self.validators = inbound.validators
        self.not_an_object = close(Violation.NOT_AN_OBJECT)
        self.missing_type = close(Violation.MISSING_TYPE)
        self.unknown_type = close(Violation.UNKNOWN_TYPE)
        self.invalid_message = close(Violation.INVALID_MESSAGE)
        self.close = close

    def check(self, message: Any) -> Accept | Close:
        if type(message) is not dict:
            return self.not_an_object
        kind = message.get(self.type_field)
        if type(kind) is not str or not kind:
            return self.missing_type
        if self.allowed is not None and kind not in self.allowed:
            return self.unknown_type
        return self.validate(message, kind)

    def validate(self, message: Any, kind: str) -> Accept | Close:
        validator = self.validators.get(kind)
        if validator is not None:
            try:
                valid = validator(message)
            except Exception as exc:  # a validator that raises has said "invalid"
                return self.close(Violation.INVALID_MESSAGE, _detail(exc))
            if not valid:
                return self.invalid_message
        return Accept(message, kind)

    def on_decode_error(self, payload: str | bytes, exc: Exception) -> Close:  # noqa: ARG002
        return self.close(Violation.INVALID_JSON, _detail(exc))


class _TypedStructureCheck(_StructureCheck):
    """msgspec with a ``type=``: the decoder has validated; classify its refusals."""

    def __init__(self, inbound: InboundPolicy, profile: Profile, codec: MsgspecCodec) -> None:
        super().__init__(inbound, profile)
        self.codec = codec
        self.loose = MsgspecCodec()

    def check(self, message: Any) -> Accept | Close:
        if isinstance(message, dict):
            return super().check(message)
        config = getattr(message, "__struct_config__", None)
        tag = getattr(config, "tag", None)
        if not isinstance(tag, str) or not tag:
            return super().check(message)
        if self.allowed is not None and tag not in self.allowed:
            return self.unknown_type
        return self.validate(message, tag)

    def on_decode_error(self, payload: str | bytes, exc: Exception) -> Close:
        if not isinstance(exc, self.codec.validation_error):
            return super().on_decode_error(payload, exc)
        # Valid JSON that does not fit the types: find out which rule it breaks.
        generic = super().check(self.loose.decode(payload))
        if isinstance(generic, Close):
            return generic
        tag = generic.type
        tags = _struct_tags(self.codec.type)
        if tags is not None and tag not in tags:
            return self.close(Violation.UNKNOWN_TYPE, _detail(exc))
        return self.close(Violation.INVALID_MESSAGE, _detail(exc))


def _struct_tags(typ: Any) -> frozenset[str] | None:
    members = getattr(typ, "__args__", None) or (typ,)
    tags = {getattr(getattr(m, "__struct_config__", None), "tag", None) for m in members}
    return frozenset(t for t in tags if isinstance(t, str)) or None


def _structure_check(inbound: InboundPolicy, profile: Profile) -> _StructureCheck:
    codec = inbound._codec
    if isinstance(codec, MsgspecCodec) and codec.type is not Any:
        return _TypedStructureCheck(inbound, profile, codec)
    return _StructureCheck(inbound, profile)


def __getattr__(name: str) -> Any:
    # decide_inbound lives with Policy (it needs the DEFAULT policy); re-exported lazily.
    if name == "decide_inbound":
        from .policy import decide_inbound

        return decide_inbound
    raise AttributeError(name)

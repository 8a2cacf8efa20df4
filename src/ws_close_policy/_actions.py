"""The actions every decision returns: ``Accept``, ``Send``, ``Close`` and ``Reject``.

They are immutable, slotted and valid by construction: an adapter can act on one without
checking it again. ``Close`` in particular can only hold a code that may be sent and a
reason that fits in a close frame. ``Close`` and ``Reject`` are frozen dataclasses;
``Accept`` and ``Send``, built for every message, are named tuples, whose checked
construction costs about half as much.
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Self

from ._arguments import boolean, integer, non_negative_int, text
from ._enums import Outcome, Violation
from .codes import CloseCode, describe, is_sendable, truncate_reason

_SENDABLE_RANGES = "1000-1003, 1007-1014 or 3000-4999"


def sendable_code(code: object, name: str = "code") -> int:
    """``code`` as a ``CloseCode`` member (or a plain ``int`` for 3000-4999) if it may be
    sent; ``TypeError`` for a non-int, ``ValueError`` naming the allowed ranges otherwise."""
    number = integer(code, name)
    if not is_sendable(number):
        raise ValueError(
            f"{name} {describe(number)} cannot be sent in a close frame; use {_SENDABLE_RANGES}"
        )
    return CloseCode(number) if number < 3000 else int(number)


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with ``code`` and ``reason``.

    ``code`` must be sendable (1000-1003, 1007-1014, 3000-4999): ``TypeError`` for a
    non-int, ``ValueError`` for any other int. ``reason`` (a ``str``) is cut to at most 123
    UTF-8 bytes on a character boundary and lone surrogates are replaced, so
    ``len(close.reason.encode()) <= 123`` always holds. Every reason in the library is cut
    this way, a profile's ``Rule`` included.

    ``violation``, ``outcome`` and ``detail`` say why, for logs and metrics; they are never
    sent and do not take part in equality.
    """

    code: int
    reason: str = ""
    violation: Violation | None = field(default=None, compare=False)
    outcome: Outcome | None = field(default=None, compare=False)
    detail: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", sendable_code(self.code))
        object.__setattr__(self, "reason", truncate_reason(text(self.reason, "reason")))
        if self.violation is not None and not isinstance(self.violation, Violation):
            raise TypeError(f"violation must be a Violation or None, not {self.violation!r}")
        if self.outcome is not None and not isinstance(self.outcome, Outcome):
            raise TypeError(f"outcome must be an Outcome or None, not {self.outcome!r}")
        if self.detail is not None:
            text(self.detail, "detail")


def utf8_size(data: str | bytes, *, strict: bool = False) -> int:
    """The length of ``data`` on the wire, in bytes: ``str`` is measured as UTF-8.

    The package's one size function. ASCII text (what the stdlib JSON encoder writes) is
    one byte a character, so measuring it costs nothing; other text is encoded once. A lone
    surrogate, which no valid UTF-8 holds, counts as the three bytes it would take; with
    ``strict`` it raises ``UnicodeEncodeError`` instead, so that one pass measures the text
    and checks it.
    """
    if isinstance(data, bytes) or data.isascii():
        return len(data)
    return len(data.encode("utf-8") if strict else data.encode("utf-8", "surrogatepass"))


class _SendFields(NamedTuple):
    data: str | bytes
    size: int
    text: bool
    large: bool
    degraded: bool


class Send(_SendFields):
    """Send ``data`` as one message.

    ``data`` is exactly what goes on the wire, serialised once: a ``str`` (always a text
    frame) or ``bytes``. ``size`` is its length in bytes, UTF-8 for text, and must be exact.
    ``text`` selects a text frame; ``bytes`` sent as text must be valid UTF-8 (orjson's and
    msgspec's output is). ``large`` is true above the outbound policy's soft limit;
    ``degraded`` is true when ``data`` is the summary form of a message that was too large.

    Every field is checked (``TypeError`` for a wrong type, ``ValueError`` for a size that
    does not match, a ``str`` in a binary frame, or bytes that are not UTF-8 in a text
    frame), so an adapter can put any ``Send`` on the wire as it is.

    A ``Send`` is built for every message sent, so it is an immutable named tuple: its
    checked construction costs about half a frozen dataclass's. Its fields are read by name;
    like any tuple it also unpacks and compares as ``(data, size, text, large, degraded)``.
    ``_replace`` and ``_make`` build through the same checks.
    """

    __slots__ = ()

    def __new__(
        cls,
        data: str | bytes,
        size: int,
        text: bool = True,
        large: bool = False,
        degraded: bool = False,
    ) -> Self:
        # Exact type tests first: this runs for every message sent.
        if not (
            type(size) is int
            and type(text) is bool
            and type(large) is bool
            and type(degraded) is bool
        ):
            non_negative_int(size, "size")
            boolean(text, "text")
            boolean(large, "large")
            boolean(degraded, "degraded")
        if type(data) is str:
            if not text:
                raise ValueError("text must be True for str data: a str is a text frame")
            if data.isascii():
                actual = len(data)
            else:
                try:
                    actual = len(data.encode("utf-8"))
                except UnicodeEncodeError:
                    lone = "data is not valid UTF-8 (it holds a lone surrogate)"
                    raise ValueError(lone) from None
        elif type(data) is bytes:
            if text and not data.isascii():
                _require_utf8(data)
            actual = len(data)
        else:  # a subclass of either too: what goes on the wire is the plain type
            raise TypeError(f"data must be exactly str or bytes, not {type(data).__name__}")
        if size != actual:
            raise ValueError(f"size must be the data's length in bytes ({actual}), got {size}")
        return tuple.__new__(cls, (data, size, text, large, degraded))

    @classmethod  # the named tuple's own _make would skip the checks
    def _make(cls, iterable: Iterable[Any]) -> Self:  # type: ignore[override]
        return cls(*iterable)

    def _replace(self, **changes: Any) -> Self:
        return type(self)(**{**self._asdict(), **changes})


def _require_utf8(data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("data sent as text must be valid UTF-8") from None


class _AcceptFields(NamedTuple):
    message: Any
    type: str | None
    size: int


class Accept(_AcceptFields):
    """A validated inbound message, its type and its size.

    ``type`` is the message's non-empty type string, or ``None`` when the inbound codec is
    ``"raw"`` (no decoding; ``message`` is then the received ``str`` or ``bytes``). ``size``
    is the message's length on the wire in bytes, as the decision measured it.

    Checked when built (``TypeError``, ``ValueError``) and immutable; a named tuple, as
    ``Send`` is, because one is built for every message received.
    """

    __slots__ = ()

    def __new__(cls, message: Any, type: str | None, size: int) -> Self:
        if type is not None and (type.__class__ is not str or not type):
            if not isinstance(type, str):
                raise TypeError(f"type must be a str or None, not {type.__class__.__name__}")
            if not type:
                raise ValueError("type must not be empty")
        if size.__class__ is not int or size < 0:
            non_negative_int(size, "size")
        return tuple.__new__(cls, (message, type, size))

    @classmethod  # the named tuple's own _make would skip the checks
    def _make(cls, iterable: Iterable[Any]) -> Self:  # type: ignore[override]
        return cls(*iterable)

    def _replace(self, **changes: Any) -> Self:
        return type(self)(**{**self._asdict(), **changes})


def _standard_error_status(status: object) -> http.HTTPStatus:
    status = integer(status, "status")
    try:
        value = http.HTTPStatus(status)
    except ValueError:
        raise ValueError(f"status {status} is not a standard HTTP status") from None
    if not 400 <= value <= 599:
        raise ValueError(f"status {status} is not an HTTP error status (400-599)")
    return value


def _header_pairs(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = tuple((text(name, "headers"), text(value, "headers")) for name, value in items)
    for name, value in pairs:
        if not name or any(c in name for c in ":\r\n\0 ") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"headers: invalid header {name!r}: {value!r}")
    return pairs


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the handshake with an HTTP response, before the upgrade.

    ``status`` must be a standard HTTP error status (some servers turn others into 500);
    ``headers`` is a mapping or a sequence of pairs, stored as a tuple of pairs.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", _standard_error_status(self.status))
        object.__setattr__(self, "headers", _header_pairs(self.headers))
        if not isinstance(self.body, bytes):
            raise TypeError(f"body must be bytes, not {type(self.body).__name__}")

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    @classmethod
    def unauthorized(cls, realm: str = "websocket", error: str | None = None) -> Reject:
        """401 with ``WWW-Authenticate: Bearer realm="..."`` (RFC 6750): a missing/bad token.

        ``error`` is the RFC 6750 error code, e.g. ``"invalid_token"``.
        """
        challenge = f'Bearer realm="{_quoted(realm, "realm")}"'
        if error is not None:
            challenge += f', error="{_quoted(error, "error")}"'
        return cls(401, (("WWW-Authenticate", challenge), *_TEXT), b"Unauthorized\n")

    @classmethod
    def forbidden(cls) -> Reject:
        """403: authenticated, but not allowed here."""
        return cls(403, _TEXT, b"Forbidden\n")

    @classmethod
    def upgrade_required(cls) -> Reject:
        """426 with ``Upgrade: websocket`` and ``Sec-WebSocket-Version: 13``."""
        headers = (("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"), *_TEXT)
        return cls(426, headers, b"Upgrade Required\n")

    @classmethod
    def too_many_requests(cls, retry_after: int | None = None) -> Reject:
        """429 (rate limited), with ``Retry-After`` in seconds when given."""
        return cls(429, (*_retry_after(retry_after), *_TEXT), b"Too Many Requests\n")

    @classmethod
    def unavailable(cls, retry_after: int | None = None) -> Reject:
        """503 (overloaded or restarting), with ``Retry-After`` in seconds when given."""
        return cls(503, (*_retry_after(retry_after), *_TEXT), b"Service Unavailable\n")


_TEXT = (("Content-Type", "text/plain; charset=utf-8"),)


def _quoted(value: str, name: str) -> str:
    if any(c in text(value, name) for c in '"\\') or not value.isprintable():
        raise ValueError(f"{name} must be printable text without quotes or backslashes")
    return value


def _retry_after(seconds: int | None) -> tuple[tuple[str, str], ...]:
    if seconds is None:
        return ()
    return (("Retry-After", str(non_negative_int(seconds, "retry_after"))),)

"""The actions every decision returns: ``Accept``, ``Send``, ``Close`` and ``Reject``.

They are frozen, slotted and valid by construction: an adapter can act on one without
checking it again. ``Close`` in particular can only hold a code that may be sent and a
reason that fits in a close frame.
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .codes import (
    MAX_REASON_BYTES,
    CloseCode,
    describe,
    is_receivable,
    is_sendable,
    truncate_reason,
)

if TYPE_CHECKING:
    from .profile import Outcome, Violation

__all__ = ["Accept", "Close", "InvalidClose", "Reject", "Send"]

#: A close frame's payload is at most 125 bytes: it is a control frame.
MAX_CLOSE_PAYLOAD: Final = 2 + MAX_REASON_BYTES

_SENDABLE_RANGES = "1000-1003, 1007-1014 or 3000-4999"


def _as_code(code: object, *, name: str) -> int:
    # bool is an int and 1000.0 == 1000: refuse both rather than send something surprising.
    if not isinstance(code, int) or isinstance(code, bool):
        raise ValueError(f"{name} must be an int, not {type(code).__name__}")
    try:
        return CloseCode(code)
    except ValueError:
        return int(code)


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with ``code`` and ``reason``.

    ``code`` must be sendable (1000-1003, 1007-1014, 3000-4999), else ``ValueError``.
    ``reason`` is cut to at most 123 UTF-8 bytes on a character boundary and lone surrogates
    are replaced, so ``len(close.reason.encode()) <= 123`` always holds.

    ``violation``, ``outcome`` and ``detail`` say why, for logs and metrics; they are never
    sent and do not take part in equality.
    """

    code: int
    reason: str = ""
    violation: Violation | None = field(default=None, compare=False)
    outcome: Outcome | None = field(default=None, compare=False)
    detail: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        code = _as_code(self.code, name="code")
        if not is_sendable(code):
            raise ValueError(
                f"code {describe(code)} cannot be sent in a close frame; use {_SENDABLE_RANGES}"
            )
        if not isinstance(self.reason, str):
            raise ValueError(f"reason must be a str, not {type(self.reason).__name__}")
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "reason", truncate_reason(self.reason))

    def payload(self) -> bytes:
        """The exact close-frame payload: the code as 2 bytes big-endian, then the reason."""
        return self.code.to_bytes(2, "big") + self.reason.encode("utf-8")

    @classmethod
    def parse(cls, payload: bytes) -> Close | InvalidClose | None:
        """Read a received close frame's payload, never raising.

        Returns the ``Close`` it carries; ``None`` for an empty payload (a valid close with no
        status code, which applications report as 1005); or ``InvalidClose`` saying why the
        payload is invalid and which code to answer with.
        """
        size = len(payload)
        if size == 0:
            return None
        if size == 1:
            return InvalidClose("close payload of 1 byte", CloseCode.PROTOCOL_ERROR)
        if size > MAX_CLOSE_PAYLOAD:
            return InvalidClose(
                f"close payload of {size} bytes, over {MAX_CLOSE_PAYLOAD}",
                CloseCode.PROTOCOL_ERROR,
            )
        code = int.from_bytes(payload[:2], "big")
        if not is_receivable(code):
            return InvalidClose(
                f"close code {describe(code)} may not be received", CloseCode.PROTOCOL_ERROR
            )
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            return InvalidClose("close reason is not valid UTF-8", CloseCode.INVALID_DATA)
        return cls(code, reason)


@dataclass(frozen=True, slots=True)
class InvalidClose:
    """A received close payload that breaks RFC 6455; answer with ``close``."""

    why: str
    code: CloseCode

    @property
    def close(self) -> Close:
        """The close to send back: 1002, or 1007 for a reason that is not UTF-8."""
        reason = "Invalid close frame" if self.code == CloseCode.PROTOCOL_ERROR else "Invalid UTF-8"
        return Close(self.code, reason, detail=self.why)


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` as one message.

    ``data`` is exactly what goes on the wire, serialised once; ``size`` is its length in
    UTF-8 bytes; ``text`` selects a text frame (else binary); ``large`` is true above the
    outbound policy's soft limit; ``degraded`` is true when ``data`` is the summary form of
    a message that was too large.
    """

    data: str | bytes
    size: int
    text: bool = True
    large: bool = False
    degraded: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.data, str | bytes):
            raise ValueError(f"data must be str or bytes, not {type(self.data).__name__}")
        if not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"size must be a non-negative int, got {self.size!r}")


@dataclass(frozen=True, slots=True)
class Accept:
    """A validated inbound message and its type (``None`` when the codec is ``"raw"``)."""

    message: Any
    type: str | None


def _standard_error_status(status: object) -> http.HTTPStatus:
    if not isinstance(status, int) or isinstance(status, bool):
        raise ValueError(f"status must be an int, not {type(status).__name__}")
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
    pairs = tuple((str(name), str(value)) for name, value in items)
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
            raise ValueError(f"body must be bytes, not {type(self.body).__name__}")

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
    if not isinstance(value, str) or any(c in value for c in '"\\') or not value.isprintable():
        raise ValueError(f"{name} must be printable text without quotes or backslashes")
    return value


def _retry_after(seconds: int | None) -> tuple[tuple[str, str], ...]:
    if seconds is None:
        return ()
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError(f"retry_after must be a non-negative int of seconds, got {seconds!r}")
    return (("Retry-After", str(seconds)),)

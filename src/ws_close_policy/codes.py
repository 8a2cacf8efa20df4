"""The close-code registry: every IANA code 1000-1015, the range rules and reason encoding.

Sources: RFC 6455 section 7.4 (status codes) and the IANA "WebSocket Close Code Number"
registry, which added 1012-1015 after the RFC.

Two sets matter on the wire:

* a code is *sendable* when this endpoint may put it in a close frame it sends;
* a code is *receivable* when a peer may put it in a close frame we accept (RFC 6455 7.4.1
  and 7.4.2: 1004-1006 and 1015 must never appear in a frame, 0-999 are not used, 1016-2999
  are reserved for future standards, and nothing at or above 5000 is defined).

Today the two sets coincide; they are separate functions because they answer different
questions and a future registration could be receivable before this library sends it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "CODE_CLASSES",
    "LABELS",
    "MAX_REASON_BYTES",
    "CodeInfo",
    "CodeRange",
    "close_label",
    "code_class",
    "code_info",
    "code_range",
    "describe",
    "encode_reason",
    "is_receivable",
    "is_sendable",
    "truncate_reason",
]

#: A control frame carries at most 125 bytes; the close code takes two of them.
MAX_REASON_BYTES: Final = 123


class CloseCode(enum.IntEnum):
    """Every close code in the IANA registry's 1000-1015 block.

    Names follow :class:`websockets.frames.CloseCode`, plus ``RESERVED`` for 1004.
    """

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    RESERVED = 1004
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


class CodeRange(enum.Enum):
    """The range an integer falls in, per RFC 6455 7.4.2."""

    UNUSED = "unused"  # 0-999: "not used"
    PROTOCOL = "protocol"  # 1000-2999: this protocol and its extensions
    REGISTERED = "registered"  # 3000-3999: libraries and frameworks, registered with IANA
    PRIVATE = "private"  # 4000-4999: private use, by prior agreement
    INVALID = "invalid"  # negative, or 5000 and above: no meaning at all


Sender = Literal["either", "server", "client", "nobody"]


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What the registry says about one of the sixteen codes."""

    code: CloseCode
    short: str
    meaning: str
    sent_by: Sender
    on_wire: bool
    source: str


def _info(code: CloseCode, short: str, meaning: str, sent_by: Sender, source: str) -> CodeInfo:
    return CodeInfo(code, short, meaning, sent_by, sent_by != "nobody", source)


_RFC = "RFC 6455 7.4.1"
_IANA = "IANA registry"

_REGISTRY: Final[dict[int, CodeInfo]] = {
    info.code: info
    for info in (
        _info(
            CloseCode.NORMAL_CLOSURE,
            "normal closure",
            "The purpose for which the connection was established has been fulfilled.",
            "either",
            _RFC,
        ),
        _info(
            CloseCode.GOING_AWAY,
            "going away",
            "The endpoint is going away: a server going down or a browser leaving the page.",
            "either",
            _RFC,
        ),
        _info(
            CloseCode.PROTOCOL_ERROR,
            "protocol error",
            "The endpoint is terminating the connection due to a protocol error.",
            "either",
            _RFC,
        ),
        _info(
            CloseCode.UNSUPPORTED_DATA,
            "unsupported data",
            "The endpoint received a type of data it cannot accept (e.g. binary on a text-only "
            "endpoint).",
            "either",
            _RFC,
        ),
        _info(
            CloseCode.RESERVED,
            "reserved",
            "Reserved; the meaning might be defined in the future. Never sent.",
            "nobody",
            _RFC,
        ),
        _info(
            CloseCode.NO_STATUS_RCVD,
            "no status received",
            "Reported locally when a close frame carried no status code. Never sent.",
            "nobody",
            _RFC,
        ),
        _info(
            CloseCode.ABNORMAL_CLOSURE,
            "abnormal closure",
            "Reported locally when the connection dropped without a close frame. Never sent.",
            "nobody",
            _RFC,
        ),
        _info(
            CloseCode.INVALID_DATA,
            "invalid frame payload data",
            "The endpoint received data inconsistent with the message type (e.g. non-UTF-8 in "
            "a text message).",
            "either",
            _RFC,
        ),
        _info(
            CloseCode.POLICY_VIOLATION,
            "policy violation",
            "The endpoint received a message that violates its policy (e.g. authentication "
            "failed after the upgrade).",
            "either",
            _RFC,
        ),
        _info(
            CloseCode.MESSAGE_TOO_BIG,
            "message too big",
            "The endpoint received a message too big for it to process.",
            "either",
            _RFC,
        ),
        _info(
            CloseCode.MANDATORY_EXTENSION,
            "mandatory extension",
            "The client expected the server to negotiate an extension it did not.",
            "client",
            _RFC,
        ),
        _info(
            CloseCode.INTERNAL_ERROR,
            "internal error",
            "The server met an unexpected condition that prevented it from fulfilling the request.",
            "server",
            _RFC,
        ),
        _info(
            CloseCode.SERVICE_RESTART,
            "service restart",
            "The service is restarting; the client may reconnect after a randomised 5-30 s delay.",
            "server",
            _IANA,
        ),
        _info(
            CloseCode.TRY_AGAIN_LATER,
            "try again later",
            "The service is overloaded or rate limited; the client should reconnect later, "
            "with backoff.",
            "server",
            _IANA,
        ),
        _info(
            CloseCode.BAD_GATEWAY,
            "bad gateway",
            "A gateway or proxy received an invalid response from the upstream server.",
            "server",
            _IANA,
        ),
        _info(
            CloseCode.TLS_HANDSHAKE,
            "TLS handshake failure",
            "Reported locally when the TLS handshake failed. Never sent.",
            "nobody",
            _IANA,
        ),
    )
}

_WIRE_CODES: Final = frozenset(code for code, info in _REGISTRY.items() if info.on_wire)


def code_info(code: int) -> CodeInfo | None:
    """Registry metadata for one of the sixteen codes 1000-1015, or ``None`` for any other."""
    return _REGISTRY.get(code)


def code_range(code: int) -> CodeRange:
    """Classify any integer by the RFC 6455 7.4.2 ranges."""
    if 0 <= code <= 999:
        return CodeRange.UNUSED
    if 1000 <= code <= 2999:
        return CodeRange.PROTOCOL
    if 3000 <= code <= 3999:
        return CodeRange.REGISTERED
    if 4000 <= code <= 4999:
        return CodeRange.PRIVATE
    return CodeRange.INVALID


def is_sendable(code: int) -> bool:
    """True when this endpoint may send ``code``: 1000-1003, 1007-1014 or 3000-4999."""
    return code in _WIRE_CODES or 3000 <= code <= 4999


def is_receivable(code: int) -> bool:
    """True when a received close frame may carry ``code`` (RFC 6455 7.4, IANA registry).

    A close frame carrying any other code is a protocol error: answer it with 1002.
    """
    if 1000 <= code <= 2999:
        return code in _WIRE_CODES
    return 3000 <= code <= 4999


def describe(code: int) -> str:
    """A short human label for any integer, e.g. ``"1008 (policy violation)"``.

    Other examples: ``"4001 (private use)"``, ``"1004 (reserved)"``, ``"70000 (invalid)"``.
    """
    info = _REGISTRY.get(code)
    if info is not None:
        return f"{code} ({info.short})"
    kind = code_range(code)
    label = {
        CodeRange.UNUSED: "unused",
        CodeRange.PROTOCOL: "unassigned, reserved for the protocol",
        CodeRange.REGISTERED: "registered use",
        CodeRange.PRIVATE: "private use",
        CodeRange.INVALID: "invalid",
    }[kind]
    return f"{code} ({label})"


def encode_reason(text: str) -> bytes:
    """Encode a close reason for the wire: at most 123 UTF-8 bytes, never raises.

    Lone surrogates become U+FFFD. A reason that is too long is cut at the last character
    boundary that fits, so the result is always valid UTF-8 and the longest prefix that fits.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = _replace_surrogates(text).encode("utf-8")
    if len(data) <= MAX_REASON_BYTES:
        return data
    end = MAX_REASON_BYTES
    # Step back over UTF-8 continuation bytes (0b10xxxxxx) to a character start.
    while data[end] & 0xC0 == 0x80:
        end -= 1
    return data[:end]


def truncate_reason(text: str) -> str:
    """``encode_reason`` as text: what a peer will read."""
    if len(text) <= MAX_REASON_BYTES and text.isascii():
        return text  # fast path: ASCII is one byte a character
    return encode_reason(text).decode("utf-8")


def _replace_surrogates(text: str) -> str:
    # A surrogate pair that made it into a str is joined into its character; a lone
    # surrogate becomes U+FFFD. UTF-16 with surrogatepass is the one codec that does both.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


#: Every label :func:`close_label` gives: one per named code, plus three ranges. A fixed
#: set, so a peer cannot grow metric cardinality with made-up codes.
LABELS: Final = frozenset(
    {code.name.lower() for code in CloseCode} | {"registered", "private", "invalid"}
)


def close_label(code: int) -> str:
    """A bounded label for any code, for logs and metrics: ``"policy_violation"`` for
    1008, and ``"registered"`` (3000-3999), ``"private"`` (4000-4999) or ``"invalid"`` for
    every code outside the registry."""
    if code in _REGISTRY:
        return _REGISTRY[code].code.name.lower()
    kind = code_range(code)
    if kind is CodeRange.REGISTERED:
        return "registered"
    if kind is CodeRange.PRIVATE:
        return "private"
    return "invalid"


_CLASSES: Final[dict[int, str]] = {
    **dict.fromkeys((1000, 1001), "normal"),
    **dict.fromkeys((1002, 1003, 1007, 1008, 1009, 1010), "client_error"),
    **dict.fromkeys((1011, 1014), "server_error"),
    **dict.fromkeys((1012, 1013), "retry_later"),
    **dict.fromkeys((1005, 1006, 1015), "abnormal"),
}

#: Every class :func:`code_class` gives.
CODE_CLASSES: Final = frozenset({*_CLASSES.values(), "application", "invalid"})


def code_class(code: int) -> str:
    """What kind of end a code means, for metrics: ``normal`` (1000, 1001),
    ``client_error`` (1002, 1003, 1007-1010: what was sent broke a rule), ``server_error``
    (1011, 1014), ``retry_later`` (1012, 1013), ``abnormal`` (1005, 1006, 1015: no code,
    no close frame, TLS), ``application`` (3000-4999) or ``invalid``."""
    if code in _CLASSES:
        return _CLASSES[code]
    if code_range(code) in (CodeRange.REGISTERED, CodeRange.PRIVATE):
        return "application"
    return "invalid"

"""The vocabulary shared by every other module: why a connection closes, how it ended, and
what a client should do next. A leaf: it imports nothing from the package.

The values are stable string ids, safe for logs and metric labels.
"""

from __future__ import annotations

import enum

__all__ = ["Outcome", "ReconnectAction", "Violation"]


class Violation(enum.StrEnum):
    """Why a connection is closed because of what was sent or received."""

    TOO_BIG = "too_big"
    BINARY_UNSUPPORTED = "binary_unsupported"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_TYPE = "missing_type"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_MESSAGE = "invalid_message"
    POLICY = "policy"
    OUTBOUND_TOO_BIG = "outbound_too_big"
    INTERNAL = "internal"


class Outcome(enum.StrEnum):
    """How a connection ends when nothing went wrong on the wire."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    GOING_AWAY = "going_away"
    RESTARTING = "restarting"
    OVERLOADED = "overloaded"
    POLICY_VIOLATION = "policy_violation"


class ReconnectAction(enum.StrEnum):
    """What a client should do after a close."""

    STOP = "stop"
    RETRY = "retry"
    REFRESH_CREDENTIALS = "refresh_credentials"  # refresh, then reconnect
    REDUCE_PAYLOAD = "reduce_payload"  # reconnect asking for summary-only payloads

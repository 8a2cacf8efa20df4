"""One log line per close, on the ``ws_close_policy`` logger, at the level that fits.

- INFO: a normal end, an outcome, an application code, a peer's close, a dropped
  connection, a server's shutdown;
- WARNING: a policy violation (what was received or sent broke the policy), with the
  violation and the operator-only ``detail``;
- ERROR: 1011 because the handler raised or a message could not be serialised. The
  handler's exception then propagates to the server, which logs it with its traceback: the
  close's line names it in ``detail`` and does not repeat the traceback.

No message content is logged: ``detail`` is the library's own description of what was
wrong (a decoder's error text, a size), cut to 200 characters and written with ``repr`` so
that no control character reaches the log. The close reason a peer sent (``ws_reason``) has
its control characters escaped. Every record carries the fields below in
``extra`` (as attributes of the ``LogRecord``), for JSON formatters and structlog.
"""

from __future__ import annotations

import logging
from typing import Any

from .._enums import Outcome, Violation
from ..session import CloseEvent

logger = logging.getLogger("ws_close_policy")

#: The ``extra`` fields of every close record.
FIELDS = (
    "ws_connection",  # an id for the connection, 8 hex digits, also on its other records
    "ws_peer",  # the client's address, "host:port", or None
    "ws_code",
    "ws_label",
    "ws_reason",
    "ws_closed_by",  # local, peer, server or transport
    "ws_inferred",  # whether closed_by was read from a code the server reported
    "ws_violation",  # a Violation value, or None
    "ws_outcome",  # an Outcome value, or None
    "ws_detail",  # the operator-only detail, or None
    "ws_duration",  # seconds
    "ws_messages_in",
    "ws_messages_out",
    "ws_bytes_in",
    "ws_bytes_out",
)


def close_fields(event: CloseEvent, connection: str, peer: str | None) -> dict[str, Any]:
    """The ``extra`` fields of ``event``'s record."""
    return {
        "ws_connection": connection,
        "ws_peer": peer,
        "ws_code": event.code,
        "ws_label": event.label,
        "ws_reason": _printable(event.reason),
        "ws_closed_by": event.closed_by,
        "ws_inferred": event.inferred,
        "ws_violation": None if event.violation is None else str(event.violation),
        "ws_outcome": None if event.outcome is None else str(event.outcome),
        "ws_detail": event.detail,
        "ws_duration": event.duration,
        "ws_messages_in": event.messages_in,
        "ws_messages_out": event.messages_out,
        "ws_bytes_in": event.bytes_in,
        "ws_bytes_out": event.bytes_out,
    }


def _printable(text: str) -> str:
    """The text, with any control character escaped: a peer writes close reasons."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _level_of(event: CloseEvent) -> int:
    """ERROR for a 1011 of ours, WARNING for a policy violation, INFO for the rest."""
    if event.closed_by == "local" and (
        event.outcome is Outcome.FAILED or event.violation is Violation.INTERNAL
    ):
        return logging.ERROR
    if event.violation is not None:
        return logging.WARNING
    return logging.INFO


def log_close(event: CloseEvent, connection: str, peer: str | None) -> None:
    """Log ``event``, once per connection."""
    level = _level_of(event)
    if not logger.isEnabledFor(level):
        return
    why = event.violation or event.outcome
    because = "" if why is None else f" ({why}"
    if event.detail is not None:
        because += f": {event.detail!r}"
    because += ")" if because else ""
    logger.log(
        level,
        "websocket %s closed: %s %s by %s%s after %.3f s, %d in / %d out",
        connection,
        event.code,
        event.label,
        event.closed_by,
        because,
        event.duration or 0.0,
        event.messages_in,
        event.messages_out,
        extra=close_fields(event, connection, peer),
    )

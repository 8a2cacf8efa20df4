"""A decided outbound action as bytes for a message bus, and back: sans-IO, no Redis here.

The publisher decides once (``decide_outbound`` or ``close_for``) and ``pack`` turns the
result into one payload; every subscribing process ``unpack`` s it into the same action
and delivers it as it is. A ``Send``'s data travels as the bytes that go on the wire: it is
never decoded, re-serialised or re-measured on the way (building the ``Send`` again checks
its bytes once per process, not once per watcher).

Version 1 of the payload, one header byte for the version, one for the kind:

* ``b"1T" + flags + data``: a ``Send`` in a text frame, ``data`` its UTF-8 bytes;
* ``b"1B" + flags + data``: a ``Send`` in a binary frame;
* ``b"1C" + json``: a ``Close``, its fields as a JSON object (code, reason, and for logs
  violation, outcome and detail).

``flags`` is one ASCII digit: 1 for ``large`` plus 2 for ``degraded``.
"""

from __future__ import annotations

import json
from typing import Any

from ._actions import Close, Send
from ._arguments import instance, text
from ._enums import Outcome, Violation

VERSION = b"1"
_TEXT, _BINARY, _CLOSE = b"1T", b"1B", b"1C"
_FLAGS = (b"0", b"1", b"2", b"3")
#: The longest topic name accepted, in characters (a Redis channel can be longer).
MAX_TOPIC = 1024


def channel(prefix: str, topic: str) -> str:
    """The bus channel of ``topic``: ``prefix + topic``; ``TypeError`` or ``ValueError``
    naming ``topic`` for anything but a non-empty ``str`` of at most 1024 characters."""
    text(topic, "topic")
    if not 0 < len(topic) <= MAX_TOPIC:
        raise ValueError(f"topic must be 1 to {MAX_TOPIC} characters, got {len(topic)}")
    return prefix + topic


def pack(action: Send | Close) -> bytes:
    """``action`` as one payload (see the module's docstring)."""
    if isinstance(action, Send):
        flags = _FLAGS[action.large + 2 * action.degraded]
        data = action.data if isinstance(action.data, bytes) else action.data.encode()
        return (_TEXT if action.text else _BINARY) + flags + data
    instance(action, Close, "action")
    fields = {
        "code": int(action.code),
        "reason": action.reason,
        "violation": action.violation,
        "outcome": action.outcome,
        "detail": action.detail,
    }
    return _CLOSE + json.dumps(fields, separators=(",", ":")).encode()


def unpack(payload: bytes) -> Send | Close:
    """The action ``pack`` made of ``payload``; ``ValueError`` for anything else (another
    writer on the channel, another version)."""
    head = payload[:2]
    if head in (_TEXT, _BINARY) and payload[2:3] in _FLAGS:
        flags = _FLAGS.index(payload[2:3])
        data = payload[3:]
        return Send(data, len(data), head == _TEXT, bool(flags & 1), bool(flags & 2))
    if head == _CLOSE:
        return _close(payload[2:])
    raise ValueError(f"not a version-{VERSION.decode()} ws-close-policy payload")


def _close(body: bytes) -> Close:
    try:
        fields: Any = json.loads(body)
        return Close(
            fields["code"],
            fields["reason"],
            violation=None if fields["violation"] is None else Violation(fields["violation"]),
            outcome=None if fields["outcome"] is None else Outcome(fields["outcome"]),
            detail=fields["detail"],
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a ws-close-policy close: {type(exc).__name__}") from None

"""``ws-close-policy probe URL``: send common bad inputs to any server, one connection each,
all at once, and say for each what the profile expects, what the server did instead, and
the fix.

What a server did is one of: closed as expected; closed with the expected code but another
reason; closed with another code; echoed the message back and kept the connection open;
answered something else and kept it open; ignored it; dropped the connection without a
close frame; or closed before reading it, the way it closes a connection that sends
nothing (then the input was never checked, and no fix is suggested for it). A refused
handshake stops the probe with one message (see :class:`Refused`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from .. import Close, Profile, Violation
from ..codes import describe
from .client import Observation, handshake, observe

__all__ = ["BAD_INPUTS", "ProbeResult", "Refused", "diagnose", "probe_inputs", "run_probe"]


#: Bad inputs servers commonly mishandle (and a binary frame), with the violation each is,
#: and what the server must do, for the fix line.
BAD_INPUTS: list[tuple[str, str | bytes, Violation, str]] = [
    ("malformed JSON", '{"invalid": "json"', Violation.INVALID_JSON, "on text that is not JSON"),
    ("null", "null", Violation.NOT_AN_OBJECT, "on JSON that is not an object"),
    ("empty object", "{}", Violation.MISSING_TYPE, 'on an object without a string "type"'),
    ("type is a number", '{"type": 123}', Violation.MISSING_TYPE, 'when "type" is not a string'),
    ("not an object", '"not an object"', Violation.NOT_AN_OBJECT, "on a JSON string"),
    (
        "binary frame",
        b'{"type": "ping"}',
        Violation.BINARY_UNSUPPORTED,
        "on a binary frame (or accept_binary=True if your protocol has them)",
    ),
]


@dataclass
class ProbeResult:
    """One bad input: what was expected, what was seen, what it means and the fix."""

    name: str
    expected: Close
    seen: Observation
    diagnosis: str
    ok: bool
    fix: str | None
    read: bool = True  # False: the server closed before reading the input

    def as_dict(self) -> dict[str, Any]:
        seen = self.seen
        return {
            "name": self.name,
            "expected": {"code": int(self.expected.code), "reason": self.expected.reason},
            "seen": {
                "code": seen.code,
                "reason": seen.reason,
                "messages": len(seen.messages),
                "kept_open": seen.kept_open is not None,
            },
            "diagnosis": self.diagnosis,
            "ok": self.ok,
            "read": self.read,
            "fix": self.fix,
        }


class Refused(Exception):
    """The server refused the handshake (or could not be reached): nothing was probed."""


def probe_inputs(max_bytes: int) -> list[tuple[str, str | bytes, Violation, str]]:
    """The bad inputs, then a message one byte over ``max_bytes``."""
    oversized = '{"type":"ping","pad":"' + "x" * max_bytes + '"}'
    when = f"above {max_bytes} bytes (and the server's own limit above that: docs/adapters.md)"
    return [*BAD_INPUTS, (f"message over {max_bytes} bytes", oversized, Violation.TOO_BIG, when)]


def unread(seen: Observation, silent: Observation) -> bool:
    """Whether the server closed as it closes a connection that sends nothing
    (``silent``): it never read the input."""
    return silent.code is not None and (seen.code, seen.reason) == (silent.code, silent.reason)


def diagnose(
    sent: str | bytes, expected: Close, seen: Observation, when: str
) -> tuple[str, bool, str | None]:
    """What the server did with ``sent``, against the ``expected`` close: (diagnosis, ok,
    the fix in one line or ``None``)."""
    want = f"{int(expected.code)} {expected.reason!r}"
    fix = f"close with {want} {when}: decide_inbound(data, policy) returns that close"
    if seen.code is not None:
        got = _close(seen)
        if seen.code != expected.code:
            return f"closed with {got}", False, fix
        if seen.reason != expected.reason:
            return f"closed with {got}: the code, another reason", False, fix
        return f"closed with {got}", True, None
    if seen.kept_open is None:
        return "dropped the connection without a close frame (the client sees 1006)", False, fix
    if any(_same(message, sent) for message in seen.messages):
        did = "echoed the message and kept the connection open"
    elif seen.messages:
        did = f"answered ({len(seen.messages)} message(s)) and kept the connection open"
    else:
        did = "ignored it: no answer and no close"
    return f"{did} (waited {seen.kept_open:g} s)", False, fix


def _close(seen: Observation) -> str:
    assert seen.code is not None
    return f"{seen.code} {seen.reason!r}" if seen.reason else describe(seen.code)


def _same(message: Any, sent: str | bytes) -> bool:
    """Whether a received message (decoded as JSON when it was) is what was sent."""
    if message == sent:
        return True
    try:
        return bool(message == json.loads(sent))
    except ValueError:
        return False


async def run_probe(
    url: str,
    profile: Profile,
    *,
    max_bytes: int = 1_048_576,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
    credentials: bool = False,
) -> list[ProbeResult]:
    """Probe ``url`` with every bad input at once, waiting at most ``timeout`` seconds for
    each close (however many messages the server sends meanwhile); raises :class:`Refused`
    when the handshake is refused or the server cannot be reached. ``credentials``: whether
    the caller passed any (for the message of a refusal)."""
    first = await handshake(url, timeout=timeout, headers=headers)
    if first.error is not None:
        raise Refused(first.error)
    if first.status is not None:
        raise Refused(_refusal(first, credentials))
    cases = probe_inputs(max_bytes)
    # One more connection sends nothing: a close it gets too was not about any input.
    silent, *seen = await asyncio.gather(
        observe(url, [], timeout=timeout, headers=headers, total=timeout),
        *(
            observe(url, [data], timeout=timeout, headers=headers, total=timeout)
            for _, data, _, _ in cases
        ),
    )
    results = []
    for (name, data, violation, when), observed in zip(cases, seen, strict=True):
        expected = profile.close_for_violation(violation)
        if unread(observed, silent):
            diagnosis = (
                f"closed with {_close(observed)} before reading it, as it closes a connection "
                "that sends nothing: this input was never checked"
            )
            results.append(ProbeResult(name, expected, observed, diagnosis, False, None, False))
            continue
        diagnosis, ok, fix = diagnose(data, expected, observed, when)
        results.append(ProbeResult(name, expected, observed, diagnosis, ok, fix))
    return results


def _refusal(seen: Observation, credentials: bool) -> str:
    status = seen.status
    if status == 401:
        how = seen.headers.get("www-authenticate", "")
        wants = f" ({how})" if how else ""
        if credentials:
            return f"HTTP 401{wants}: the server refused the credentials given"
        return f"HTTP 401{wants}: pass --token TOKEN or --header 'Authorization: Bearer ...'"
    if status == 403:
        return "HTTP 403: the server refused this client (an Origin check? try --header Origin:...)"
    return f"HTTP {status}: the server refused the handshake"

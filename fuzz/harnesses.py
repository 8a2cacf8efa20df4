"""Fuzz harnesses: pure functions of one byte string, so the corpus replays without atheris.

Invariants, for any input: no exception escapes; every close code is sendable; every
reason is at most 123 UTF-8 bytes and is one of the profile's generic reasons (so it holds
no byte of the input).
"""

from __future__ import annotations

from ws_close_policy import (
    Accept,
    Close,
    InboundPolicy,
    OutboundPolicy,
    Outcome,
    Policy,
    Send,
    Session,
    decide_inbound,
)
from ws_close_policy.codes import is_sendable
from ws_close_policy.profile import PRESETS
from ws_close_policy.session import Disconnect

PROFILES = list(PRESETS.values())
CODECS = ("json", "orjson", "msgspec", "raw")
POLICIES = [
    Policy(
        InboundPolicy(
            codec=codec,
            accept_binary=binary,
            max_bytes=limit,
            max_depth=depth,
            reject_duplicate_keys=dups,
            allowed_types=allowed,
        ),
        OutboundPolicy(max_bytes=max(limit, 64), warn_bytes=32),
        profile,
    )
    for codec in CODECS
    for binary, limit, depth, dups, allowed in (
        (True, 1 << 20, 64, False, None),
        (False, 64, 3, True, frozenset({"ping", "cancel"})),
    )
    for profile in PROFILES
]
GENERIC_REASONS = frozenset(
    rule.reason
    for profile in PROFILES
    for rule in (*profile.violations.values(), *profile.outcomes.values())
)


def check_close(close: Close) -> None:
    assert is_sendable(close.code), close
    assert len(close.reason.encode("utf-8")) <= 123, close
    assert close.reason in GENERIC_REASONS, close.reason


def _split(data: bytes) -> tuple[int, bytes]:
    return (data[0] if data else 0), data[1:]


def check_inbound(data: bytes) -> None:
    """decide_inbound under every codec and profile, on bytes and on text."""
    selector, payload = _split(data)
    policy = POLICIES[selector % len(POLICIES)]
    candidates: list[str | bytes] = [payload]
    try:
        candidates.append(payload.decode("utf-8"))
    except UnicodeDecodeError:
        candidates.append(payload.decode("utf-8", "surrogateescape"))  # lone surrogates
    for candidate in candidates:
        result = decide_inbound(candidate, policy)
        if isinstance(result, Close):
            check_close(result)
        else:
            assert isinstance(result, Accept), result


def check_session(data: bytes) -> None:
    """A Session driven by a fuzzed sequence of events: at most one close, counts agree."""
    selector, rest = _split(data)
    session = Session(POLICIES[selector % len(POLICIES)], clock=lambda: 0.0)
    closes = 0
    sent = 0
    outcomes = list(Outcome)
    while rest:
        op, rest = _split(rest)
        size, rest = _split(rest)
        chunk, rest = rest[: size % 48], rest[size % 48 :]
        kind = op % 6
        result: object
        if kind == 0:
            result = session.receive(chunk)
        elif kind == 1:
            result = session.receive(chunk.decode("utf-8", "replace"))
        elif kind == 2:
            result = session.send({"type": "x", "data": chunk.decode("latin-1")})
        elif kind == 3:
            result = session.finish(outcomes[size % len(outcomes)])
        elif kind == 4:
            result = session.fail(RuntimeError(chunk.decode("latin-1")))
        else:
            code = int.from_bytes(chunk[:2] or b"\x03\xe8", "big")
            event = session.ended(Disconnect.from_code(code, "bye"))
            assert session.ended() is event  # once
            result = None
        if isinstance(result, Close):
            closes += 1
            check_close(result)
        elif isinstance(result, Send):
            sent += 1
    session.ended()
    assert closes <= 1
    assert session.messages_out == sent
    assert session.event is not None


HARNESSES = {
    "inbound": check_inbound,
    "session": check_session,
}

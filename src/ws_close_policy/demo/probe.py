"""``ws-close-policy probe URL``: send common bad inputs to any server, one connection
each, and compare the close it answers with to what the profile expects."""

from __future__ import annotations

from dataclasses import dataclass

from .. import Profile, Violation
from .client import Observation, observe


@dataclass
class ProbeResult:
    name: str
    expected: str
    observed: Observation
    ok: bool


#: Bad inputs servers commonly ignore (and a binary frame), with the violation each one is.
BAD_INPUTS: list[tuple[str, str | bytes, Violation]] = [
    ("malformed JSON", '{"invalid": "json"', Violation.INVALID_JSON),
    ("null", "null", Violation.NOT_AN_OBJECT),
    ("empty object", "{}", Violation.MISSING_TYPE),
    ("type is a number", '{"type": 123}', Violation.MISSING_TYPE),
    ("not an object", '"not an object"', Violation.NOT_AN_OBJECT),
    ("binary frame", b'{"type": "ping"}', Violation.BINARY_UNSUPPORTED),
]


def probe_inputs(max_bytes: int) -> list[tuple[str, str | bytes, Violation]]:
    """The bad inputs, then a message one byte over ``max_bytes``."""
    oversized = '{"type":"ping","pad":"' + "x" * max_bytes + '"}'
    return [*BAD_INPUTS, (f"message over {max_bytes} bytes", oversized, Violation.TOO_BIG)]


async def run_probe(
    url: str, profile: Profile, *, max_bytes: int = 1_048_576, timeout: float = 5.0
) -> list[ProbeResult]:
    """Probe ``url``; a result is ok when the close code is the profile's."""
    results = []
    for name, data, violation in probe_inputs(max_bytes):
        close = profile.close_for_violation(violation)
        seen = await observe(url, [data], timeout=timeout)
        ok = seen.error is None and seen.code == close.code
        results.append(ProbeResult(name, f"{int(close.code)} {close.reason!r}", seen, ok))
        if seen.error is not None and seen.error.startswith("cannot connect"):
            break  # the server is unreachable: say so once
    return results

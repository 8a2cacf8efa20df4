"""Where the time of a 200-byte decision goes, piece by piece, for each codec.

Run: .venv/bin/python benchmarks/breakdown.py. Each row times one piece of
decide_inbound / decide_outbound on its own (fastest of 7 repeats), so the rows of one
codec add up to about the whole; "glue" is what is left: the calls between the steps,
the size and frame checks, the structure checks. Figures move with the machine; compare
rows within one run.
"""

from __future__ import annotations

import json
import sys
import timeit
from collections.abc import Callable

from _harness import header
from baselines import DECODERS, ENCODERS, hand_inbound, hand_outbound
from ws_close_policy import (
    Accept,
    InboundPolicy,
    OutboundPolicy,
    Policy,
    Send,
    decide_inbound,
    decide_outbound,
)
from ws_close_policy._jsontext import has_lone_surrogate_escape, nests_deeper_than

MESSAGE = {
    "type": "job_progress",
    "jobId": "ok-3f2a9c1e",
    "pipeline": "csv_import",
    "timestamp": 1764172800123,
    "version": "1.0.0",
    "payload": {"progress": 0.42, "processed": 420, "total": 1000, "status": "Row 420"},
}
TEXT = json.dumps(MESSAGE, separators=(",", ":"))


def ns(func: Callable[[], object]) -> float:
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    return min(timer.repeat(number=number, repeat=7)) / number * 1e9


def row(label: str, value: float) -> None:
    print(f"  {label:40} {value:8.0f} ns")


def inbound(codec: str) -> None:
    policy = Policy(InboundPolicy(codec=codec))
    decoder = policy.inbound.decoder
    assert decoder is not None
    by_hand = hand_inbound(codec)
    bare = DECODERS[codec]
    message = bare(TEXT)
    total = ns(lambda: decide_inbound(TEXT, policy))
    pieces = {
        "decoder alone": ns(lambda: bare(TEXT)),
        "the codec's decode (strict)": ns(lambda: decoder.decode(TEXT)),
        "lone surrogate escapes (text)": ns(lambda: has_lone_surrogate_escape(TEXT)),
        "nesting depth (text)": ns(lambda: nests_deeper_than(TEXT, 64)),
        "Accept(message, type)": ns(lambda: Accept(message, "job_progress")),
    }
    print(f"inbound, {codec}, {len(TEXT)} bytes")
    row("by hand (the baseline)", ns(lambda: by_hand(TEXT)))
    row("decide_inbound", total)
    for label, value in pieces.items():
        if label != "decoder alone":
            row(label, value)
    glue = total - sum(v for k, v in pieces.items() if k != "decoder alone")
    row("glue (calls, size, frame, structure)", glue)
    row("  (the decoder alone, inside the codec)", pieces["decoder alone"])


def outbound(codec: str) -> None:
    policy = Policy(outbound=OutboundPolicy(codec=codec))
    encoder = policy.outbound.encoder
    by_hand = hand_outbound(codec)
    data = encoder.encode(MESSAGE)
    total = ns(lambda: decide_outbound(MESSAGE, policy))
    pieces = {
        "the codec's encode": ns(lambda: encoder.encode(MESSAGE)),
        "Send(data, size, ...)": ns(lambda: Send(data, len(data), True, False)),
    }
    print(f"outbound, {codec}, {len(data)} bytes")
    row("by hand (the baseline)", ns(lambda: by_hand(MESSAGE)))
    row("decide_outbound", total)
    for label, value in pieces.items():
        row(label, value)
    row("glue (calls, type checks, measure)", total - sum(pieces.values()))
    row("  (the encoder alone, inside the codec)", ns(lambda: ENCODERS[codec](MESSAGE)))


def main() -> int:
    header(("orjson", "msgspec"))
    for codec in ("json", "orjson", "msgspec"):
        inbound(codec)
    for codec in ("json", "orjson", "msgspec"):
        outbound(codec)
    return 0


if __name__ == "__main__":
    sys.exit(main())

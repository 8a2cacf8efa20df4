"""decide_outbound against the hand-written equivalent, interleaved in one run; prints ratios.

Run: make bench (or .venv/bin/python benchmarks/outbound.py [--quick]). The baseline is
benchmarks/baselines.py: the same encoder, len, and a comparison with the limit. Targets:
at most 1.10x with the json codec at every size (200 B, 8 KB, 1 MB, 8 MB), and with orjson
and msgspec at 8 KB and above; 200 B with orjson and msgspec is reported.
"""

from __future__ import annotations

import json
import sys

from _harness import compare, header, report, self_check
from baselines import hand_outbound
from ws_close_policy import OutboundPolicy, Policy, decide_outbound


def message(size: int) -> dict[str, object]:
    rows = []
    text_size = 0
    i = 0
    while text_size < size:
        row = {"id": i, "title": f"Book {i}", "isbn": f"978-{i:010d}", "score": i * 0.5}
        rows.append(row)
        text_size += len(json.dumps(row)) + 1
        i += 1
    return {"type": "job_complete", "jobId": "ok-1", "version": "1.0.0", "payload": rows}


def main() -> int:
    quick = "--quick" in sys.argv
    header(("orjson", "msgspec"))
    small = {
        "type": "job_progress",
        "jobId": "ok-3f2a9c1e",
        "pipeline": "csv_import",
        "timestamp": 1764172800123,
        "version": "1.0.0",
        "payload": {"progress": 0.42, "processed": 420, "total": 1000, "status": "Row 420"},
    }
    messages = {
        "200 B": small,
        "8 KB": message(8_000),
        "1 MB": message(1_000_000),
        "8 MB": message(8_000_000),
    }
    codecs = ("json", "orjson", "msgspec")
    policies = {name: Policy(outbound=OutboundPolicy(codec=name)) for name in codecs}
    by_hand = {name: hand_outbound(name) for name in codecs}
    cases = [self_check("200 B json", lambda: by_hand["json"](small))]
    targets = {}
    for label, msg in messages.items():
        for name in codecs:
            case = f"{label} {name}: decide_outbound / by hand"
            cases.append(
                (
                    case,
                    lambda h=by_hand[name], m=msg: h(m),
                    lambda p=policies[name], m=msg: decide_outbound(m, p),
                )
            )
            if name == "json" or label != "200 B":
                targets[case] = 1.10
    results = compare(cases, rounds=21 if quick else 101)
    missed = report(results, targets)
    print(f"targets missed: {missed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""decide_outbound against the bare encoders, interleaved in one run; prints ratios.

Run: make bench (or .venv/bin/python benchmarks/outbound.py [--quick]).
Target (issue 4): at most 1.05x the bare codec at every size (200 B, 1 MB, 8 MB).
"""

from __future__ import annotations

import json
import sys

import orjson

from _harness import compare, header, report, self_check
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
    header(("orjson",))
    small = {
        "type": "job_progress",
        "jobId": "ok-3f2a9c1e",
        "pipeline": "csv_import",
        "timestamp": 1764172800123,
        "version": "1.0.0",
        "payload": {"progress": 0.42, "processed": 420, "total": 1000, "status": "Row 420"},
    }
    messages = {"200 B": small, "1 MB": message(1_000_000), "8 MB": message(8_000_000)}
    json_policy = Policy()
    orjson_policy = Policy(outbound=OutboundPolicy(codec="orjson"))
    encoder = json.JSONEncoder(separators=(",", ":"))
    cases = []
    for label, msg in messages.items():
        cases.append(
            (
                f"{label} json: decide_outbound / bare encode",
                lambda m=msg: encoder.encode(m),
                lambda m=msg: decide_outbound(m, json_policy),
            )
        )
        cases.append(
            (
                f"{label} orjson: decide_outbound / bare dumps",
                lambda m=msg: orjson.dumps(m),
                lambda m=msg: decide_outbound(m, orjson_policy),
            )
        )
    targets = {name: 1.05 for name, *_ in cases}  # every decide_outbound case
    cases.insert(0, self_check("200 B orjson", lambda: orjson.dumps(small)))
    results = compare(cases, rounds=21 if quick else 101)
    missed = report(results, targets)
    print(f"targets missed: {missed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""decide_inbound against the bare decoders, interleaved in one run; prints ratios.

Run: make bench (or .venv/bin/python benchmarks/inbound.py [--quick]).
Targets (issue 3): stdlib path <= 1.10x json.loads on ~200 bytes; orjson and msgspec paths
<= 1.3x their bare decoder and faster than json.loads; refusing a 64 MiB str under the 1 MiB
limit in under 5 microseconds.
"""

from __future__ import annotations

import json
import sys
import timeit

import msgspec
import orjson

from _harness import compare, header, report, self_check
from ws_close_policy import InboundPolicy, Policy, decide_inbound


def progress(i: int) -> dict[str, object]:
    return {
        "type": "job_progress",
        "jobId": f"ok-{i:08x}",
        "pipeline": "csv_import",
        "timestamp": 1764172800123 + i,
        "version": "1.0.0",
        "payload": {"progress": 0.42, "processed": 420, "total": 1000, "status": "Row 420"},
    }


def batch(size: int) -> str:
    rows = []
    text = json.dumps({"type": "upload", "rows": rows})
    i = 0
    while len(text) < size:
        rows.append({"id": i, "name": f"row {i}", "values": [i, i * 2.5, None, True]})
        i += 1
        if i % 64 == 0:
            text = json.dumps({"type": "upload", "rows": rows})
    return json.dumps({"type": "upload", "rows": rows})


def main() -> int:
    quick = "--quick" in sys.argv
    header(("orjson", "msgspec"))
    messages = {
        "200 B": json.dumps(progress(1), separators=(",", ":")),
        "8 KB": batch(8_000),
        "512 KB": batch(512_000),
    }
    for label, text in messages.items():
        print(f"# {label}: {len(text)} bytes")
    policies = {name: Policy(InboundPolicy(codec=name)) for name in ("json", "orjson", "msgspec")}
    bare = {"json": json.loads, "orjson": orjson.loads, "msgspec": msgspec.json.decode}
    small = messages["200 B"]
    cases = [self_check("200 B orjson", lambda: orjson.loads(small))]
    for label, text in messages.items():
        for name, policy in policies.items():
            decode = bare[name]
            cases.append(
                (
                    f"{label} {name}: decide_inbound / bare",
                    lambda d=decode, t=text: d(t),
                    lambda p=policy, t=text: decide_inbound(t, p),
                )
            )
        for name in ("orjson", "msgspec"):
            cases.append(
                (
                    f"{label} {name}: decide_inbound / json.loads",
                    lambda t=text: json.loads(t),
                    lambda p=policies[name], t=text: decide_inbound(t, p),
                )
            )
    results = compare(cases, rounds=21 if quick else 101)
    targets = {"200 B json: decide_inbound / bare": 1.10}
    for label in messages:
        for name in ("orjson", "msgspec"):
            targets[f"{label} {name}: decide_inbound / bare"] = 1.30
            targets[f"{label} {name}: decide_inbound / json.loads"] = 1.00
    missed = report(results, targets)

    huge = "x" * (64 * 1024 * 1024)
    n = 20000
    reject = min(timeit.repeat(lambda: decide_inbound(huge), number=n, repeat=5)) / n
    ok = reject < 5e-6
    missed += not ok
    verdict = "ok" if ok else "MISSED"
    print(f"refuse a 64 MiB str under 1 MiB: {reject * 1e9:.0f} ns (target < 5 us: {verdict})")
    print(f"targets missed: {missed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

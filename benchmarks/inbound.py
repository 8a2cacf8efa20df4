"""decide_inbound against the hand-written equivalent, interleaved in one run; prints ratios.

Run: make bench (or .venv/bin/python benchmarks/inbound.py [--quick]). The baseline is
benchmarks/baselines.py: a size check, the same decoder in a try, and the two isinstance
checks a careful server writes by hand. Targets: the json codec at most 1.10x its
hand-written equivalent at 200 B, 8 KB and 512 KB; orjson and msgspec at most 1.10x at
8 KB and 512 KB (200 B is reported, with benchmarks/breakdown.py saying where the time
goes); refusing a 64 MiB str under the 1 MiB limit in under 5 microseconds; and
Session.receive refusing a 32 Mi-character non-ASCII str in under a millisecond (issue 21:
it used to encode the text in full before the size check, about 100 ms).
"""

from __future__ import annotations

import json
import sys
import timeit

from _harness import compare, header, report, self_check
from baselines import hand_inbound
from ws_close_policy import InboundPolicy, Policy, Session, decide_inbound
from ws_close_policy._jsontext import nests_deeper_than


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
    codecs = ("json", "orjson", "msgspec")
    policies = {name: Policy(InboundPolicy(codec=name)) for name in codecs}
    small = messages["200 B"]
    by_hand = {name: hand_inbound(name) for name in codecs}
    cases = [self_check("200 B json", lambda: by_hand["json"](small))]
    targets = {}
    for label, text in messages.items():
        for name in codecs:
            case = f"{label} {name}: decide_inbound / by hand"
            cases.append(
                (
                    case,
                    lambda h=by_hand[name], t=text: h(t),
                    lambda p=policies[name], t=text: decide_inbound(t, p),
                )
            )
            if name == "json" or label != "200 B":
                targets[case] = 1.10
    results = compare(cases, rounds=21 if quick else 101)
    missed = report(results, targets)

    block = "[" * 65 + "]" * 65  # one level deeper than the default limit, many times
    deep = '{"type": "x", "d": [' + ",".join([block] * (1_000_000 // 131)) + "]}"
    worst = compare(
        [
            (
                "worst-case depth: 1 MB of 65-deep arrays",
                lambda: json.loads(deep),
                lambda: nests_deeper_than(deep, 64),
            )
        ],
        rounds=5 if quick else 21,
    )
    print("\n# the depth check alone against json.loads decoding the same text")
    missed += report(worst, {"worst-case depth: 1 MB of 65-deep arrays": 1.5})

    huge = "x" * (64 * 1024 * 1024)
    n = 20000
    reject = min(timeit.repeat(lambda: decide_inbound(huge), number=n, repeat=5)) / n
    ok = reject < 5e-6
    missed += not ok
    verdict = "ok" if ok else "MISSED"
    print(f"refuse a 64 MiB str under 1 MiB: {reject * 1e9:.0f} ns (target < 5 us: {verdict})")

    wide = "é" * (32 * 1024 * 1024)
    policy = Policy()
    n = 2000
    # A refused session ignores what follows, so each call builds a fresh one; the time
    # includes building it (about a microsecond, far inside the target).
    refuse = min(timeit.repeat(lambda: Session(policy).receive(wide), number=n, repeat=5)) / n
    ok = refuse < 1e-3
    missed += not ok
    verdict = "ok" if ok else "MISSED"
    print(
        f"Session.receive refuses 32 Mi non-ASCII characters: {refuse * 1e9:.0f} ns"
        f" (target < 1 ms: {verdict})"
    )
    print(f"targets missed: {missed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

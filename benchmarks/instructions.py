"""Instructions per call (callgrind) of each decision against its hand-written equivalent.

Run: make bench-instructions (or .venv/bin/python benchmarks/instructions.py [--calls N]
[--only TEXT], TEXT picking the cases whose label contains it, e.g. "outbound"). Needs
valgrind. N calls at 200 B, a tenth at 8 KB, a 100th at 512 KB (at least 2). The
baselines are benchmarks/baselines.py, as in the timed benchmarks.

Unlike the timed benchmarks, the counts do not depend on what else the machine is doing:
the same process gives the same count every time, and ratios agree to about 2% between
environments (the heap's layout moves a little of the allocator's work). They do not see
memory stalls or branch mispredictions, so a ratio here can be lower than the timed one;
the two together show whether extra time is extra work.

Each case runs in its own process under callgrind making N calls after one warm-up call
(the garbage collector off, as timeit runs); the same process with no call after the
warm-up is subtracted. The difference divided by N is the cost of one call: interpreter
start-up, imports and one-time costs of a first call (memory arenas, caches) cancel out.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable

from baselines import hand_inbound, hand_outbound
from inbound import batch, progress

CODECS = ("json", "orjson", "msgspec")
SIZES = ("200 B", "8 KB", "512 KB")
# Calls per case are divided by this, so that a large message costs minutes, not hours.
FEWER = {"200 B": 1, "8 KB": 10, "512 KB": 100}
TARGETS = {  # (direction, size, codec) -> the bound on the ratio
    ("inbound", "200 B", "json"): 1.10,
    **{("inbound", size, "json"): 1.20 for size in ("8 KB", "512 KB")},
    **{("inbound", size, c): 1.30 for size in ("8 KB", "512 KB") for c in CODECS[1:]},
    **{("outbound", size, "json"): 1.10 for size in SIZES},
    **{("outbound", size, c): 1.10 for size in ("8 KB", "512 KB") for c in CODECS[1:]},
}


def _texts() -> dict[str, Callable[[], str]]:
    return {
        "200 B": lambda: json.dumps(progress(1), separators=(",", ":")),
        "8 KB": lambda: batch(8_000),
        "512 KB": lambda: batch(512_000),
    }


def _pairs() -> list[tuple[str, str, str, str, float | None]]:
    """(label, baseline, candidate, size, target): names of entries in _calls()."""
    pairs = []
    for direction in ("inbound", "outbound"):
        for size in SIZES:
            for codec in CODECS:
                label = f"{size} {codec}: decide_{direction} / by hand"
                target = TARGETS.get((direction, size, codec))
                pairs.append((label, f"hand {direction} {codec} {size}", label, size, target))
    return pairs


def _calls(size: str) -> dict[str, Callable[[], object]]:
    """The cases of one size: a child builds only its own size's text, so that start-up
    (subtracted) stays small and the same in every child."""
    from ws_close_policy import InboundPolicy, OutboundPolicy, Policy
    from ws_close_policy import decide_inbound as inbound
    from ws_close_policy import decide_outbound as outbound

    calls: dict[str, Callable[[], object]] = {}
    text = _texts()[size]()
    message = json.loads(text)
    for codec in CODECS:
        policy = Policy(InboundPolicy(codec=codec), OutboundPolicy(codec=codec))
        receive, send = hand_inbound(codec), hand_outbound(codec)
        calls[f"hand inbound {codec} {size}"] = lambda r=receive, t=text: r(t)
        calls[f"hand outbound {codec} {size}"] = lambda s=send, m=message: s(m)
        by = f"{size} {codec}: decide_"
        calls[f"{by}inbound / by hand"] = lambda p=policy, t=text: inbound(t, p)
        calls[f"{by}outbound / by hand"] = lambda p=policy, m=message: outbound(m, p)
    return calls


def _child(size: str, name: str, calls: int) -> None:
    call = _calls(size)[name]
    call()  # warm-up: one-time costs (arenas, caches) are not the call's
    gc.disable()
    for _ in range(calls):
        call()


def _instructions(size: str, name: str, calls: int) -> int:
    """Instructions callgrind counts for a whole child process making ``calls`` calls."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--child", size, name, str(calls)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _per_call(size: str, name: str, calls: int) -> float:
    """One call's instructions: the same child with ``calls`` calls and with none (each
    after one warm-up call), so that start-up and imports cancel out."""
    return (_instructions(size, name, calls) - _instructions(size, name, 0)) / calls


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls at 200 B (fewer above)")
    parser.add_argument("--only", default="", help="only the cases whose label holds this")
    args = parser.parse_args()
    calls, only = args.calls, args.only
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts (apt-get install valgrind)")
        return 1
    print(f"# CPython {sys.version.split()[0]}")
    print(f"# instructions per call (callgrind, {calls} calls, PYTHONHASHSEED=0)")
    print(f"{'case':44} {'by hand':>12} {'decision':>12} {'ratio':>7}  target")
    for label, baseline, candidate, size, target in [p for p in _pairs() if only in p[0]]:
        n = max(2, calls // FEWER[size])
        base, cand = _per_call(size, baseline, n), _per_call(size, candidate, n)
        ratio = cand / base
        verdict = (
            "" if target is None else f"<= {target:.2f} {'ok' if ratio <= target else 'MISSED'}"
        )
        print(f"{label:44} {base:12,.0f} {cand:12,.0f} {ratio:7.3f}  {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

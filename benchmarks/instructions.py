"""Instructions per call (callgrind) of each decision against its bare codec; prints ratios.

Run: make bench-instructions (or .venv/bin/python benchmarks/instructions.py [--calls N]
[--only TEXT], TEXT picking the cases whose label contains it, e.g. "outbound").
Needs valgrind. Unlike the timed benchmarks, the counts do not depend on what else the
machine is doing: a process gives the same count every time, and the same build the same
ratios to within about 2% (the environment shifts the heap's layout, and with it a little
of the allocator's work). They do not see memory stalls or branch mispredictions, so a
ratio here can be lower than the timed one; the two together show whether extra time is
extra work.

Each case runs in its own process under callgrind making N calls (with the garbage
collector off, as timeit runs); one more process makes none. The difference divided by N
is the cost of one call: interpreter start-up and imports cancel out.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable

from inbound import progress

TEXT = json.dumps(progress(1), separators=(",", ":"))  # 189 bytes
MESSAGE = progress(1)

# (label, baseline, candidate): names of entries in _calls().
PAIRS = [
    ("200 B json: decide_inbound / json.loads", "json.loads", "decide_inbound json"),
    ("200 B orjson: decide_inbound / bare", "orjson.loads", "decide_inbound orjson"),
    ("200 B msgspec: decide_inbound / bare", "msgspec decode", "decide_inbound msgspec"),
    ("200 B json: decide_outbound / bare encode", "json encode", "decide_outbound json"),
    ("200 B orjson: decide_outbound / bare dumps", "orjson.dumps", "decide_outbound orjson"),
    ("200 B msgspec: decide_outbound / bare", "msgspec encode", "decide_outbound msgspec"),
]


def _calls() -> dict[str, Callable[[], object]]:
    import msgspec
    import orjson

    from ws_close_policy import InboundPolicy, OutboundPolicy, Policy
    from ws_close_policy import decide_inbound as inbound
    from ws_close_policy import decide_outbound as outbound

    codecs = ("json", "orjson", "msgspec")
    policies = {c: Policy(InboundPolicy(codec=c), OutboundPolicy(codec=c)) for c in codecs}
    decode, encode = msgspec.json.decode, msgspec.json.Encoder().encode
    encoder = json.JSONEncoder(separators=(",", ":"))
    calls: dict[str, Callable[[], object]] = {
        "json.loads": lambda: json.loads(TEXT),
        "orjson.loads": lambda: orjson.loads(TEXT),
        "msgspec decode": lambda: decode(TEXT),
        "json encode": lambda: encoder.encode(MESSAGE),
        "orjson.dumps": lambda: orjson.dumps(MESSAGE),
        "msgspec encode": lambda: encode(MESSAGE),
    }
    for codec, policy in policies.items():
        calls[f"decide_inbound {codec}"] = lambda p=policy: inbound(TEXT, p)
        calls[f"decide_outbound {codec}"] = lambda p=policy: outbound(MESSAGE, p)
    return calls


def _child(name: str, calls: int) -> None:
    call = _calls()[name]
    gc.disable()
    for _ in range(calls):
        call()


def _instructions(name: str, calls: int) -> int:
    """Instructions callgrind counts for a whole child process making `calls` calls."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--child", name, str(calls)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts (apt install valgrind)")
        return 1
    calls = int(_option("--calls", "10000"))
    only = _option("--only", "")
    from ws_close_policy import _accel

    print(f"# CPython {sys.version.split()[0]}; C accelerator in use: {_accel.ENABLED}")
    print(f"# instructions per call (callgrind, {calls} calls, PYTHONHASHSEED=0)")
    print(f"{'case':44} {'baseline':>10} {'candidate':>10} {'ratio':>7}")
    start_up = _instructions("json.loads", 0)
    counts: dict[str, float] = {}
    for label, baseline, candidate in [pair for pair in PAIRS if only in pair[0]]:
        for name in (baseline, candidate):
            if name not in counts:
                counts[name] = (_instructions(name, calls) - start_up) / calls
        base, cand = counts[baseline], counts[candidate]
        print(f"{label:44} {base:10,.0f} {cand:10,.0f} {cand / base:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

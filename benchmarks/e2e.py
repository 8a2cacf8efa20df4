"""End-to-end: the guarded servers against the bare transports, on the wire, in one run.

Run: make bench (full) or make bench-quick. Each server runs in its own process
(benchmarks/e2e_server.py), pinned to one core; this process is the client, on 127.0.0.1,
pinned to the other. For each pair both servers stay up and short bursts of every workload
alternate between them (bare, guarded, bare, guarded ...). Printed: the medians of the
bursts and, for throughput and p99, the median of the burst-by-burst ratios guarded/bare
with their spread (half the interquartile range). A verdict is "inconclusive" when the
spread is wider than the distance from the ratio to its target: noise could flip it, so
run more bursts (the full run has 25; --quick has 5).

Workloads, with a ~200-byte JSON message: request/response over 1 connection (throughput,
p50 and p99 round trip) and over 50 connections (throughput); a one-way stream of 100,000
messages. Then resident memory with 1,000 idle connections, per connection.

Targets, on every pair: guarded throughput >= 0.95x bare, p99 <= 1.10x, memory overhead
under 2 KiB per connection. The bare servers call json.loads / json.dumps themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

SERVER = Path(__file__).with_name("e2e_server.py")
MESSAGE = json.dumps(
    {
        "type": "echo",
        "jobId": "ok-3f2a9c1e",
        "pipeline": "csv_import",
        "timestamp": 1764172800123,
        "version": "1.0.0",
        "payload": {"progress": 0.42, "processed": 420, "total": 1000, "status": "Row 420"},
    }
)
PAIRS = [
    ("bare-websockets", "guard-websockets"),
    ("bare-websockets", "guard-websockets-orjson"),
    ("bare-starlette", "guard-starlette"),
    ("bare-starlette", "guard-starlette-orjson"),
]


@dataclass
class Sizes:
    echo_1: int  # round trips over one connection, per burst
    echo_50: int  # round trips per connection over 50 connections, per burst
    stream: int  # messages in one one-way stream, per burst
    idle: int  # idle connections for the memory measure
    rounds: int  # alternated bursts per server


FULL = Sizes(echo_1=1500, echo_50=60, stream=30_000, idle=1000, rounds=25)
QUICK = Sizes(echo_1=500, echo_50=20, stream=10_000, idle=300, rounds=5)

# The servers run on one core and this client on the other, so neither competes with the
# other (or with itself across runs) for a core: the largest source of noise on 2 cores.
SERVER_CPU, CLIENT_CPU = 0, 1


def _pin(pid: int, cpu: int) -> bool:
    available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if len(available) < 2 or cpu not in available:
        return False
    os.sched_setaffinity(pid, {cpu})
    return True


@dataclass
class Samples:
    """Every burst's figures for one server; latencies pooled over all bursts."""

    echo_1: list[float] = field(default_factory=list)  # messages per second
    echo_50: list[float] = field(default_factory=list)
    stream: list[float] = field(default_factory=list)
    rtts: list[float] = field(default_factory=list)  # seconds, pooled over the bursts
    p99: list[float] = field(default_factory=list)  # seconds, one per burst
    per_conn_kib: float = 0.0

    def figures(self) -> dict[str, float]:
        rtts = sorted(self.rtts)
        return {
            "echo_1": statistics.median(self.echo_1),
            "p50_ms": rtts[len(rtts) // 2] * 1000,
            "p99_ms": rtts[int(len(rtts) * 0.99)] * 1000,
            "echo_50": statistics.median(self.echo_50),
            "stream": statistics.median(self.stream),
            "per_conn_kib": self.per_conn_kib,
        }


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextmanager
def server(mode: str) -> Iterator[tuple[str, int]]:
    with subprocess.Popen(
        [sys.executable, str(SERVER), mode], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            _pin(proc.pid, SERVER_CPU)
            yield f"ws://127.0.0.1:{port}/", proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def _connect(uri: str) -> ClientConnection:
    return await connect(uri, compression=None, max_size=None, open_timeout=30)


async def echo_one(uri: str, count: int, rtts: list[float]) -> float:
    async with await _connect(uri) as ws:
        for _ in range(50):  # warm up
            await ws.send(MESSAGE)
            await ws.recv()
        start = time.perf_counter()
        for _ in range(count):
            sent = time.perf_counter()
            await ws.send(MESSAGE)
            await ws.recv()
            rtts.append(time.perf_counter() - sent)
        return count / (time.perf_counter() - start)


async def echo_many(uri: str, connections: int, each: int) -> float:
    sockets = [await _connect(uri) for _ in range(connections)]

    async def run(ws: ClientConnection) -> None:
        for _ in range(each):
            await ws.send(MESSAGE)
            await ws.recv()

    start = time.perf_counter()
    await asyncio.gather(*(run(ws) for ws in sockets))
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(ws.close() for ws in sockets))
    return connections * each / elapsed


async def stream(uri: str, count: int) -> float:
    async with await _connect(uri) as ws:
        start = time.perf_counter()
        await ws.send(json.dumps({"type": "stream", "count": count}))
        received = 0
        async for _ in ws:
            received += 1
        assert received == count, received
        return count / (time.perf_counter() - start)


async def idle_memory(uri: str, pid: int, count: int) -> float:
    await asyncio.sleep(0.3)
    before = _rss_kib(pid)
    sockets = []
    for _ in range(count):
        sockets.append(await _connect(uri))
    await asyncio.sleep(0.5)
    after = _rss_kib(pid)
    await asyncio.gather(*(ws.close() for ws in sockets))
    return (after - before) / count


def burst(uri: str, sizes: Sizes, samples: Samples) -> None:
    rtts: list[float] = []
    samples.echo_1.append(asyncio.run(echo_one(uri, sizes.echo_1, rtts)))
    samples.rtts.extend(rtts)
    samples.p99.append(sorted(rtts)[int(len(rtts) * 0.99)])
    samples.echo_50.append(asyncio.run(echo_many(uri, 50, sizes.echo_50)))
    samples.stream.append(asyncio.run(stream(uri, sizes.stream)))


def measure_pair(modes: tuple[str, str], sizes: Sizes) -> dict[str, Samples]:
    """Both servers up at once; bursts alternate between them (A B A B ...)."""
    samples = {mode: Samples() for mode in modes}
    with server(modes[0]) as (uri_a, _), server(modes[1]) as (uri_b, _):
        uris = {modes[0]: uri_a, modes[1]: uri_b}
        for mode in modes:  # warm up: the first burst of a fresh process is not measured
            burst(uris[mode], QUICK, Samples())
        for _ in range(sizes.rounds):
            for mode in modes:
                burst(uris[mode], sizes, samples[mode])
    for mode in modes:  # memory: a fresh server each, nothing else connected
        with server(mode) as (uri, pid):
            samples[mode].per_conn_kib = asyncio.run(idle_memory(uri, pid, sizes.idle))
    return samples


PER_BURST = {"echo_1": "echo_1", "echo_50": "echo_50", "stream": "stream", "p99_ms": "p99"}


def paired_ratio(bare: Samples, guarded: Samples, key: str) -> tuple[float, float]:
    """(ratio, spread). Per-burst figures: the median of burst-by-burst ratios (each guarded
    burst against the bare burst just before it, so slow drifts of the machine cancel) and
    half their interquartile range; else guarded / bare, with no spread."""
    if key in PER_BURST:
        attr = PER_BURST[key]
        pairs = zip(getattr(bare, attr), getattr(guarded, attr), strict=True)
        ratios = [g / b for b, g in pairs]
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        return statistics.median(ratios), (q3 - q1) / 2
    figures_bare, figures_guarded = bare.figures()[key], guarded.figures()[key]
    return (figures_guarded / figures_bare if figures_bare else float("nan")), 0.0


def verdict(ratio: float, spread: float, target: float, at_least: bool) -> str:
    """ok, MISSED, or inconclusive when the spread is wider than the margin to the target."""
    margin = ratio - target if at_least else target - ratio
    if spread > abs(margin):
        return "inconclusive"
    return "ok" if margin >= 0 else "MISSED"


TARGETS = {"echo_1": (0.95, True), "echo_50": (0.95, True), "p99_ms": (1.10, False)}


METRICS = [
    ("echo_1", "echo, 1 connection (msg/s)"),
    ("p50_ms", "round trip p50 (ms)"),
    ("p99_ms", "round trip p99 (ms)"),
    ("echo_50", "echo, 50 connections (msg/s)"),
    ("stream", "one-way stream (msg/s)"),
    ("per_conn_kib", "memory per idle connection (KiB)"),
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    packages = ("websockets", "starlette", "uvicorn", "orjson")
    print(
        f"# {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {platform.platform()}"
    )
    print("# " + ", ".join(f"{p} {version(p)}" for p in packages))
    pinned = _pin(0, CLIENT_CPU)
    print(
        f"# {sizes.rounds} alternated bursts per server; medians (latency: pooled samples), "
        "throughput ratios: median of burst-by-burst ratios; "
        + (f"servers on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU}" if pinned else "not pinned")
    )
    counts = {"ok": 0, "MISSED": 0, "inconclusive": 0}
    for bare_mode, guard_mode in PAIRS:
        samples = measure_pair((bare_mode, guard_mode), sizes)
        bare_figures, guard_figures = samples[bare_mode].figures(), samples[guard_mode].figures()
        print(f"\n{guard_mode} vs {bare_mode}")
        print(f"  {'metric':36} {'bare':>10} {'guarded':>10} {'ratio':>15}  target")
        for key, label in METRICS:
            bare, guarded = bare_figures[key], guard_figures[key]
            ratio, spread = paired_ratio(samples[bare_mode], samples[guard_mode], key)
            shown = f"{ratio:7.3f} ± {spread:5.3f}" if key in PER_BURST else f"{ratio:7.3f}"
            target = ""
            if key in TARGETS:
                limit, at_least = TARGETS[key]
                result = verdict(ratio, spread, limit, at_least)
                counts[result] += 1
                target = f"{'>=' if at_least else '<='} {limit:.2f} {result}"
            elif key == "per_conn_kib":
                overhead = guarded - bare
                result = "ok" if overhead < 2.0 else "MISSED"
                counts[result] += 1
                target = f"overhead {overhead:+.2f} KiB (< 2) {result}"
            print(f"  {label:36} {bare:10.2f} {guarded:10.2f} {shown:>15}  {target}")
    print(
        f"\ntargets: {counts['ok']} met, {counts['MISSED']} missed, "
        f"{counts['inconclusive']} inconclusive (spread wider than the margin)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

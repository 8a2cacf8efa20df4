"""Load test: 1,000 concurrent clients against `serve-demo`, half of them hostile.

Run: make load (both adapters) or .venv/bin/python benchmarks/load.py --adapter websockets
[--clients 1000] [--seconds 60]. Outside the default test run.

Good clients run an `ok-*` job and must see 1000. Hostile ones send malformed JSON, wrong
structures, binary frames, oversized messages, floods of pings, stop reading for a while,
or vanish without closing. Reported: every client's close against its profile code, 1006s
seen by clients that did not drop themselves, server memory before and after (after two
warm-up runs of the same load), and leaked tasks and sockets (counted in the server process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

TOKEN = "demo-token"


@dataclass
class Outcome:
    kind: str
    expected: int | None  # None: the client drops itself; anything goes
    code: int | None = None
    error: str | None = None


async def _read_to_close(ws: ClientConnection) -> int | None:
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    return None if received is None else int(received.code)


def _good(ws: ClientConnection) -> Awaitable[int | None]:
    return _read_to_close(ws)


def _sender(*messages: str | bytes) -> Callable[[ClientConnection], Awaitable[int | None]]:
    async def run(ws: ClientConnection) -> int | None:
        for message in messages:
            await ws.send(message)
        return await _read_to_close(ws)

    return run


async def _ping_flood(ws: ClientConnection) -> int | None:
    for _ in range(200):
        await ws.send('{"type": "ping"}')
    return await _read_to_close(ws)


async def _stops_reading(ws: ClientConnection) -> int | None:
    await asyncio.sleep(3.0)  # the server keeps sending meanwhile
    return await _read_to_close(ws)


async def _vanishes(ws: ClientConnection) -> int | None:
    await asyncio.sleep(random.random() * 0.5)
    ws.transport.abort()
    return None


# kind -> (job id prefix, behaviour, expected code under SEED)
KINDS: dict[str, tuple[str, Callable[[ClientConnection], Awaitable[int | None]], int | None]] = {
    "good": ("ok", _good, 1000),
    "malformed JSON": ("slow", _sender('{"invalid": "json"'), 1002),
    "wrong structure": ("slow", _sender('{"type": 123}'), 1002),
    "binary": ("slow", _sender(b"\x00\x01\x02"), 1003),
    "oversized": ("slow", _sender("x" * (1024 * 1024 + 1)), 1009),
    "ping flood": ("ok", _ping_flood, 1000),
    "stops reading": ("ok", _stops_reading, 1000),
    "vanishes": ("slow", _vanishes, None),
}


class Concurrency:
    """Counts the connections open at once and the peak; ``all_open`` once all were."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.now = 0
        self.peak = 0
        self.all_open = asyncio.Event()

    def opened(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        if self.peak >= self.total:
            self.all_open.set()

    def closed(self) -> None:
        self.now -= 1


async def client(
    uri: str, kind: str, index: int, gate: asyncio.Semaphore, live: Concurrency
) -> Outcome:
    prefix, behaviour, expected = KINDS[kind]
    result = Outcome(kind, expected)
    try:
        async with gate:
            ws = await connect(
                f"{uri}/jobs/{prefix}-{index}?token={TOKEN}", open_timeout=30, max_size=None
            )
        live.opened()
        try:
            async with ws:
                # Hold every connection until all are open: 1,000 concurrent, not in turn.
                # (Clients that drop themselves may leave early: wait at most 20 s.)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(live.all_open.wait(), 20)
                result.code = await asyncio.wait_for(behaviour(ws), 60)
        finally:
            live.closed()
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:80]
    return result


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _sockets(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))


class ServerOutput:
    """The server's stdout, read by a thread: each wait is bounded, so that a server that
    says something unexpected, or nothing, fails the run with what it said instead of
    hanging it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stdout: Iterable[str]) -> None:
        for line in stdout:
            self.lines.put(line)

    def next_line(self, starting: str, timeout: float = 15.0) -> str:
        """The next line that starts with ``starting`` (others are kept for the error)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if line.startswith(starting):
                return line
        raise RuntimeError(f"no line starting {starting!r} within {timeout} s: {self.seen[-5:]}")


def _stats(proc: subprocess.Popen[str], output: ServerOutput) -> dict[str, int]:
    proc.send_signal(signal.SIGUSR1)  # serve-demo prints one JSON line of statistics
    return dict(json.loads(output.next_line("{")))


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError("the server did not exit within 30 s of SIGTERM") from None


async def run_load(uri: str, clients: int) -> tuple[list[Outcome], int]:
    """Every client at once; returns the outcomes and the peak of concurrent connections."""
    kinds = ["good"] * (clients // 2)
    hostile = [k for k in KINDS if k != "good"]
    kinds += [hostile[i % len(hostile)] for i in range(clients - len(kinds))]
    random.Random(7).shuffle(kinds)
    gate = asyncio.Semaphore(100)  # connection attempts in flight, not connections held
    live = Concurrency(clients)
    results = await asyncio.gather(*(client(uri, k, i, gate, live) for i, k in enumerate(kinds)))
    return list(results), live.peak


def report(
    adapter: str, results: list[Outcome], before: dict[str, int], after: dict[str, int]
) -> int:
    by_kind: dict[str, Counter[str]] = {}
    failures = 0
    abnormal = 0
    for r in results:
        seen = r.error or str(r.code)
        by_kind.setdefault(r.kind, Counter())[seen] += 1
        if r.expected is not None and (r.code != r.expected or r.error):
            failures += 1
        if r.expected is not None and r.code is None:
            abnormal += 1
    print(f"\n== {adapter}: {len(results)} clients")
    print(f"{'client kind':16} {'n':>5} {'expected':>9}  observed")
    for kind, counts in by_kind.items():
        expected = KINDS[kind][2]
        shown = ", ".join(f"{code} x{n}" for code, n in counts.most_common())
        print(f"{kind:16} {sum(counts.values()):5d} {expected or 'any'!s:>9}  {shown}")
    growth = (after["rss_kib"] - before["rss_kib"]) / before["rss_kib"]
    checks = {
        "every client saw its profile code": failures == 0,
        "no 1006 for clients that did not drop": abnormal == 0,
        f"server memory within 10% ({growth:+.1%})": growth <= 0.10,
        f"tasks back to {before['tasks']} (now {after['tasks']})": after["tasks"]
        <= before["tasks"],
        f"sockets back to {before['sockets']} (now {after['sockets']})": after["sockets"]
        <= before["sockets"],
        f"no guarded connection left (now {after['guarded']})": after["guarded"] == 0,
    }
    for check, ok in checks.items():
        print(f"  {'ok    ' if ok else 'FAILED'} {check}")
    return sum(not ok for ok in checks.values())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", choices=("websockets", "starlette"), action="append")
    parser.add_argument("--clients", type=int, default=1000)
    args = parser.parse_args()
    _raise_fd_limit()
    failed = 0
    for adapter in args.adapter or ["websockets", "starlette"]:
        command = [sys.executable, "-m", "ws_close_policy", "serve-demo", "--port", "0"]
        command += ["--adapter", adapter, "--max-connections", str(args.clients * 2)]
        command += ["--job-seconds", "15"]  # long enough for every client to connect first
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=_raise_fd_limit,
        )
        try:
            output = ServerOutput(proc)
            uri = output.next_line("serving ").split()[1].split("/jobs")[0]
            # Warm up with the same load twice first: one-time allocations (imports, caches,
            # the allocator's arenas) are not leaks. Measured here, RSS settles after two
            # rounds and then moves by a few percent either way; "before" is taken then.
            for _ in range(2):
                asyncio.run(run_load(uri, args.clients))
            time.sleep(1.0)
            before = {
                **_stats(proc, output),
                "rss_kib": _rss_kib(proc.pid),
                "sockets": _sockets(proc.pid),
            }
            start = time.monotonic()
            results, peak = asyncio.run(run_load(uri, args.clients))
            elapsed = time.monotonic() - start
            time.sleep(1.0)
            after = {
                **_stats(proc, output),
                "rss_kib": _rss_kib(proc.pid),
                "sockets": _sockets(proc.pid),
            }
        finally:
            _stop(proc)
        print(f"(run took {elapsed:.1f} s; peak {peak} connections open at once)")
        failed += report(adapter, results, before, after)
    print(f"\nchecks failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Fan-out through Redis to 1,000 watchers over 2 processes: latency and server work.

Run: .venv/bin/python benchmarks/fanout_redis.py [--quick] [--only latency|instructions]
[--adapter websockets|starlette]. Needs redis-server; valgrind for the instructions.

The script starts its own redis-server (no persistence) on a free port and, for each way,
two server processes of benchmarks/fanout_redis_server.py with 500 watchers each
(websockets clients, all in this process), watching one topic:

- guarded: ``fanout.Publisher`` (default policy) decides a ~190-byte dict and publishes
  it; each server's ``Subscriber`` delivers it to its watchers (``Connections.forward``);
- bare: the same dict ``json.dumps``-ed once and published with redis-py; each server's
  hand-written redis-py reader passes the payload to ``websockets.broadcast`` (or, on
  Starlette, awaits ``send_text`` on each socket).

**Latency** (servers at full speed): messages at 20 a second, each stamped with
``time.time_ns()`` before it is decided or serialised; each client notes ``time.time_ns()``
as it reads one; p50 and p99 over every delivery. Rounds alternate the two ways; the
spread is that of the per-round ratios. Wall-clock figures: they move with the machine's
load, and include the clients' own work: 1,000 of them in this process (its garbage
collector off meanwhile), on the same cores, reading each message one after the other.
Their CPU time per delivery is printed: about as much per message as the p50 itself.

**Instructions** (servers under callgrind): after a warm-up, ``callgrind_control --zero``
on both servers of a way, messages one at a time (each published once every watcher has
read the one before), ``--dump``: the two counts summed, divided by the deliveries
(messages x 1,000). Counts depend on the code run, not on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Data

from _harness import callgrind_count, callgrind_zero, header, under_callgrind
from ws_close_policy.fanout import DEFAULT_PREFIX, Publisher

SERVER = Path(__file__).with_name("fanout_redis_server.py")
PROCESSES, PER_PROCESS = 2, 500
WATCHERS = PROCESSES * PER_PROCESS
RATE = 20.0  # messages a second, for the latency
WAIT = 120.0  # seconds: any one step, at most (a server under callgrind is slow)
Figures = dict[str, list[list[int]]]  # each way's latencies (ns), a list per round
Publish = Callable[[dict[str, object]], int]  # a message to its channel: how many got it


def message(seq: int) -> dict[str, object]:
    """A job's progress, stamped as it is published."""
    return {
        "type": "job_progress",
        "jobId": "ok-1",
        "pipeline": "csv_import",
        "seq": seq,
        "sent": time.time_ns(),
        "version": "1.0.0",
        "payload": {"progress": 0.42, "processed": 420, "total": 1000, "status": "Row 420"},
    }


def compact(m: dict[str, object]) -> str:
    return json.dumps(m, separators=(",", ":"))


def stop(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=WAIT)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server of our own on a free port, without persistence; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        ["redis-server", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        with redis.Redis.from_url(url, socket_timeout=1.0) as client:
            for _ in range(200):
                with contextlib.suppress(redis.ConnectionError):
                    client.ping()
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError("redis-server did not start within 10 s")
        yield url
    finally:
        stop(process)


class Server:
    """A server process of fanout_redis_server.py, its stderr in ``out.log``; under
    callgrind (its output in ``out``) it is counted between ``zero()`` and ``count()``."""

    def __init__(self, mode: str, url: str, name: str, out: Path, callgrind: bool) -> None:
        command = [sys.executable, str(SERVER), mode, url, name]
        if callgrind:
            command = under_callgrind(command, out)
        self.out, self.dumps, self.log = out, 0, out.with_suffix(".log")
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": "0"},
                start_new_session=True,
            )

    def port(self) -> int:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], WAIT)
        line = self.process.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            raise RuntimeError(f"no port from {self.out.name}: {self.log.read_text()[-2000:]}")
        return int(line)

    def zero(self) -> None:
        callgrind_zero(self.process.pid, WAIT)

    def count(self) -> int:
        """Instructions since the last ``zero()``."""
        self.dumps += 1
        return callgrind_count(self.process.pid, self.out, self.dumps, WAIT)


class Way:
    """One way of fanning out: its publisher, its servers, and what each watcher read."""

    def __init__(self, mode: str, channel: str, publish: Publish) -> None:
        self.name = mode.split("-")[0]
        self.mode, self.channel, self._publish = mode, channel, publish
        self.servers: list[Server] = []
        self.logs: list[list[tuple[int, Data]]] = [[] for _ in range(WATCHERS)]

    def publish(self, seq: int) -> None:
        receivers = self._publish(message(seq))
        if receivers != PROCESSES:
            raise RuntimeError(f"{self.mode}: {receivers} processes subscribed, not {PROCESSES}")

    def counts(self) -> list[int]:
        return [len(log) for log in self.logs]

    async def settle(self, expected: list[int]) -> None:
        """Until every watcher has read as many messages as ``expected`` says."""
        async with asyncio.timeout(WAIT):
            while any(len(log) < n for log, n in zip(self.logs, expected, strict=True)):
                await asyncio.sleep(0.005)

    async def deliver(self, messages: int) -> None:
        """``messages`` one at a time, each once every watcher has read the one before."""
        for seq in range(messages):
            expected = [n + 1 for n in self.counts()]
            await asyncio.to_thread(self.publish, seq)
            await self.settle(expected)

    async def warm_up(self, wait: float) -> None:
        """Until every watcher has read the same latest message (so each is watching and
        nothing is in flight), then a few more."""
        for seq in range(-1, -11, -1):
            await asyncio.to_thread(self.publish, seq)
            try:
                async with asyncio.timeout(wait):
                    while not all(log and _seq(log[-1][1]) == seq for log in self.logs):
                        await asyncio.sleep(0.05)
            except TimeoutError:
                continue
            return await self.deliver(3)
        raise RuntimeError(f"{self.mode}: some watchers read no message")


def _seq(data: Data) -> int:
    return int(json.loads(data)["seq"])


async def _connect(uri: str) -> ClientConnection:
    return await connect(uri, compression=None, ping_interval=None, open_timeout=WAIT)


async def _read(ws: ClientConnection, log: list[tuple[int, Data]]) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for data in ws:
            log.append((time.time_ns(), data))


@contextlib.asynccontextmanager
async def watched(
    url: str, directory: str, adapter: str, callgrind: bool
) -> AsyncIterator[list[Way]]:
    """The bare and the guarded way on ``adapter``, each server with its watchers, all
    watching and warmed up."""
    publisher = Publisher(url)
    bare = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    name = f"bench-{adapter}"
    ways = [
        Way(f"bare-{adapter}", name, lambda m: bare.publish(name, compact(m))),
        Way(
            f"guard-{adapter}",
            DEFAULT_PREFIX + name,
            lambda m: publisher.publish(name, m).receivers,
        ),
    ]
    tasks: list[asyncio.Task[None]] = []
    clients: list[ClientConnection] = []
    try:
        for way in ways:
            for i in range(PROCESSES):
                out = Path(directory) / f"{way.mode}-{i}"
                way.servers.append(Server(way.mode, url, name, out, callgrind))
        for way in ways:
            for i, server in enumerate(way.servers):
                uri = f"ws://127.0.0.1:{await asyncio.to_thread(server.port)}/"
                async with asyncio.timeout(WAIT):
                    opened = await asyncio.gather(*(_connect(uri) for _ in range(PER_PROCESS)))
                clients += opened
                logs = way.logs[i * PER_PROCESS : (i + 1) * PER_PROCESS]
                tasks += [
                    asyncio.create_task(_read(ws, log))
                    for ws, log in zip(opened, logs, strict=True)
                ]
        async with asyncio.timeout(WAIT):  # a Subscriber subscribes for its first watcher
            while any(bare.pubsub_numsub(w.channel)[0][1] < PROCESSES for w in ways):
                await asyncio.sleep(0.1)
        for way in ways:
            await way.warm_up(wait=WAIT / 4 if callgrind else 5.0)
        yield ways
    finally:
        for task in tasks:
            task.cancel()
        for server in [server for way in ways for server in way.servers]:
            stop(server.process)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
        publisher.close()
        bare.close()


def _paced(way: Way, messages: int) -> None:
    start = time.monotonic()
    for seq in range(messages):
        time.sleep(max(0.0, start + seq / RATE - time.monotonic()))
        way.publish(seq)


async def latency(
    url: str, directory: str, adapter: str, rounds: int, messages: int
) -> tuple[Figures, float]:
    """Each way's publish-to-delivery times (ns), a list per round; the CPU time of this
    process (the clients and the publishers) per delivery, in seconds."""
    async with watched(url, directory, adapter, callgrind=False) as ways:
        found: Figures = {way.name: [] for way in ways}
        cpu = 0.0
        for r in range(rounds):
            for way in ways if r % 2 == 0 else ways[::-1]:
                before = way.counts()
                gc.collect()
                gc.disable()  # a collection among 1,000 clients stalls them for up to 0.1 s
                start = time.process_time()
                try:
                    await asyncio.to_thread(_paced, way, messages)
                    await way.settle([n + messages for n in before])
                finally:
                    gc.enable()
                cpu += time.process_time() - start
                found[way.name].append(
                    [
                        arrived - int(json.loads(data)["sent"])
                        for log, n in zip(way.logs, before, strict=True)
                        for arrived, data in log[n:]
                    ]
                )
        return found, cpu / (2 * rounds * messages * WATCHERS)


async def instructions(
    url: str, directory: str, adapter: str, repeats: int, messages: int
) -> dict[str, list[float]]:
    """Each way's instructions per delivery (its 2 servers summed), one figure a repeat."""
    async with watched(url, directory, adapter, callgrind=True) as ways:
        found: dict[str, list[float]] = {way.name: [] for way in ways}
        for r in range(repeats):
            for way in ways if r % 2 == 0 else ways[::-1]:
                for server in way.servers:
                    await asyncio.to_thread(server.zero)
                await way.deliver(messages)
                counts = [await asyncio.to_thread(server.count) for server in way.servers]
                found[way.name].append(sum(counts) / (messages * WATCHERS))
        return found


def _ms(times: list[int], percentile: int) -> float:
    return statistics.quantiles(times, n=100)[percentile - 1] / 1e6


def _row(label: str, bare: float, guarded: float, ratios: list[float], digits: int) -> None:
    spread = (max(ratios) - min(ratios)) / 2 / statistics.fmean(ratios)
    figures = f"{bare:10,.{digits}f} {guarded:10,.{digits}f}"
    print(f"{label:52} {figures} {guarded / bare:7.3f} {f'±{spread:.1%}':>7}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--only", choices=["latency", "instructions"], help="one part only")
    parser.add_argument("--adapter", choices=["websockets", "starlette"], help="one only")
    args = parser.parse_args()
    rounds, per_round = (2, 20) if args.quick else (4, 50)
    repeats, measured = (2, 10) if args.quick else (3, 20)
    adapters = [args.adapter] if args.adapter else ["websockets", "starlette"]
    if shutil.which("redis-server") is None:
        print("redis-server is not installed: no Redis to fan out through")
        return 1
    counted = args.only != "latency"
    if counted and not all(shutil.which(t) for t in ("valgrind", "callgrind_control")):
        print("valgrind is not installed: no instruction counts (apt-get install valgrind)")
        if args.only:
            return 1
        counted = False
    found = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    header(("websockets", "redis", "starlette", "uvicorn"))
    print(f"# redis-server {found.stdout.split()[2][2:]}; {WATCHERS:,} watchers over", end="")
    print(f" {PROCESSES} processes; {len(compact(message(0)))} B messages")
    print("# guarded: fanout.Publisher + Subscriber; bare: redis-py + websockets.broadcast")
    print("# (Starlette: a send_text on each socket)")
    print(f"{'case':52} {'bare':>10} {'guarded':>10} {'ratio':>7} {'spread':>7}")
    with redis_server() as url, tempfile.TemporaryDirectory() as directory:
        for adapter in adapters:
            if args.only != "instructions":
                times, cpu = asyncio.run(latency(url, directory, adapter, rounds, per_round))
                for q in (50, 99):
                    pooled = {
                        way: _ms([t for r in each for t in r], q) for way, each in times.items()
                    }
                    pairs = zip(times["bare"], times["guard"], strict=True)
                    ratios = [_ms(g, q) / _ms(b, q) for b, g in pairs]
                    label = f"{adapter}: p{q} latency, ms ({rounds * per_round} at {RATE:.0f}/s)"
                    _row(label, pooled["bare"], pooled["guard"], ratios, 2)
                print(
                    f"# {adapter}: this process's CPU (the clients), {cpu * 1e6:.1f} us a delivery"
                )
            if counted:
                counts = asyncio.run(instructions(url, directory, adapter, repeats, measured))
                bare, guarded = counts["bare"], counts["guard"]
                ratios = [g / b for b, g in zip(bare, guarded, strict=True)]
                label = f"{adapter}: instructions per delivery ({repeats} x {measured})"
                _row(label, statistics.fmean(bare), statistics.fmean(guarded), ratios, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

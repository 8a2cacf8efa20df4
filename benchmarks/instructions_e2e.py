"""A server's instructions per message under callgrind: guarded against bare, end to end.

Run: make bench-instructions (or .venv/bin/python benchmarks/instructions_e2e.py
[--only TEXT] [--repeats N]). Needs valgrind.

Each server of benchmarks/e2e_server.py runs under callgrind in its own process; the
client runs here, at full speed, so the server's one core is always the bottleneck, as in
a busy server. After a warm-up, ``callgrind_control --zero`` starts the count and
``--dump`` ends it around a known number of messages: start-up, imports and handshakes are
left out, and the count divided by the messages is the server's work per message. Counts
depend on the code run, not on the machine's load: the same run repeats within about 1%.

- **echo**: ~190 B JSON echoed, on 1 connection, then 50 connections each with one message
  in flight (what the server does per echo: read, decide, serialise, write);
- **fan-out**: a 189 B message to 1,000 connections of one websockets server:
  ``Connections.broadcast`` (the message decided once) against ``websockets.broadcast``
  of the same message already serialised; instructions per connection reached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from _harness import callgrind_count, callgrind_zero, under_callgrind
from e2e import MESSAGE

SERVER = Path(__file__).with_name("e2e_server.py")
PAIRS = [
    ("bare-websockets", "guard-websockets"),
    ("bare-websockets", "guard-websockets-orjson"),
    ("bare-starlette", "guard-starlette"),
    ("bare-starlette", "guard-starlette-orjson"),
]
TARGETS = {
    "guard-websockets": 1.05,
    "guard-starlette": 1.08,
    "guard-websockets-orjson": 1.00,
    "guard-starlette-orjson": 1.00,
    "fan-out": 1.10,
}
ECHOES = 2000  # per measurement
FANOUT_CLIENTS = 1000
FANOUT_ROUNDS = 10  # per measurement, back to back (2 KB a connection: no write buffering)
WAIT = 120.0  # seconds: any one step under callgrind, at most


class Callgrind:
    """One process under callgrind, counted between ``zero()`` and ``count()``."""

    def __init__(self, command: list[str], out: Path) -> None:
        self.out = out
        self.dumps = 0
        self.process = subprocess.Popen(
            under_callgrind(command, out),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            start_new_session=True,
        )

    def first_line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def zero(self) -> None:
        callgrind_zero(self.process.pid, WAIT)

    def count(self) -> int:
        """Instructions since the last ``zero()``."""
        self.dumps += 1
        return callgrind_count(self.process.pid, self.out, self.dumps, WAIT)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=WAIT)


@contextmanager
def server(mode: str, directory: str) -> Iterator[tuple[Callgrind, str]]:
    cg = Callgrind([sys.executable, str(SERVER), mode], Path(directory) / mode)
    try:
        port = cg.first_line()
        if not port.isdigit():
            raise RuntimeError(f"{mode}: no port from the server under callgrind")
        yield cg, f"ws://127.0.0.1:{port}/"
    finally:
        cg.stop()


async def _echo(ws: ClientConnection, times: int) -> None:
    for _ in range(times):
        await ws.send(MESSAGE)
        await ws.recv()


async def _echoes(uri: str, cg: Callgrind, connections: int, repeats: int) -> list[float]:
    """Instructions per echo, ``repeats`` times, with ``connections`` in flight."""
    async with asyncio.timeout(WAIT * (repeats + 1)):
        clients = [await connect(uri, compression=None) for _ in range(connections)]
        try:
            await asyncio.gather(*(_echo(ws, 20) for ws in clients))  # warm-up
            each = ECHOES // connections
            figures = []
            for _ in range(repeats):
                await asyncio.to_thread(cg.zero)
                await asyncio.gather(*(_echo(ws, each) for ws in clients))
                figures.append(await asyncio.to_thread(cg.count) / (each * connections))
            return figures
        finally:
            await asyncio.gather(*(ws.close() for ws in clients))


def echo_figures(mode: str, directory: str, repeats: int) -> dict[int, list[float]]:
    with server(mode, directory) as (cg, uri):
        return {n: asyncio.run(_echoes(uri, cg, n, repeats)) for n in (1, 50)}


async def _fanout(uri: str, cg: Callgrind, repeats: int) -> dict[str, list[float]]:
    """Instructions per connection reached, for each way of broadcasting."""
    async with asyncio.timeout(WAIT * (2 * repeats + 2)):
        clients = [await connect(uri, compression=None) for _ in range(FANOUT_CLIENTS)]
        control = await connect(uri + "control", compression=None)
        received = [0] * FANOUT_CLIENTS

        async def read(i: int, ws: ClientConnection) -> None:
            async for _ in ws:
                received[i] += 1

        readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(clients)]
        figures: dict[str, list[float]] = {"websockets.broadcast": [], "Connections.broadcast": []}
        try:
            await control.send(f"ready {FANOUT_CLIENTS}")
            await control.recv()  # every connection is registered
            for way in ["warm-up", *figures] * repeats:
                command = "guard" if way == "Connections.broadcast" else "bare"
                expected = received[0] + FANOUT_ROUNDS
                await asyncio.to_thread(cg.zero)
                await control.send(f"{command} {FANOUT_ROUNDS}")
                await control.recv()
                while min(received) < expected:
                    await asyncio.sleep(0.01)
                count = await asyncio.to_thread(cg.count)
                if way in figures:
                    figures[way].append(count / (FANOUT_ROUNDS * FANOUT_CLIENTS))
            return figures
        finally:
            for task in readers:
                task.cancel()
            await control.close()
            await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


def fanout_figures(directory: str, repeats: int) -> dict[str, list[float]]:
    with server("fanout", directory) as (cg, uri):
        return asyncio.run(_fanout(uri, cg, repeats))


def _spread(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"±{(high - low) / 2 / (sum(values) / len(values)):.1%}"


def _row(label: str, bare: list[float], guarded: list[float], target: float | None) -> None:
    base, cand = sum(bare) / len(bare), sum(guarded) / len(guarded)
    ratio = cand / base
    verdict = "" if target is None else f"<= {target:.2f} {'ok' if ratio <= target else 'MISSED'}"
    spread = _spread([g / b for b, g in zip(bare, guarded, strict=False)])
    print(f"{label:62} {base:10,.0f} {cand:10,.0f} {ratio:7.3f} {spread:>7}  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--only", default="", help="only the cases whose label holds this")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per case")
    args = parser.parse_args()
    only, repeats = args.only, args.repeats
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: no instruction counts (apt-get install valgrind)")
            return 1
    print(f"# CPython {sys.version.split()[0]}; server instructions under callgrind")
    print(f"# {ECHOES} echoes of {len(MESSAGE)} B a measurement, {repeats} measurements")
    print(f"{'case':62} {'bare':>10} {'guarded':>10} {'ratio':>7} {'spread':>7}")
    with tempfile.TemporaryDirectory() as directory:
        bare_figures: dict[str, dict[int, list[float]]] = {}
        for bare, guarded in PAIRS:
            if only not in guarded:
                continue
            if bare not in bare_figures:
                bare_figures[bare] = echo_figures(bare, directory, repeats)
            figures = echo_figures(guarded, directory, repeats)
            for n in (1, 50):
                label = f"echo, {n} connection{'s' if n > 1 else ''}: {guarded} / {bare}"
                _row(label, bare_figures[bare][n], figures[n], TARGETS[guarded])
        if only in "fan-out":
            ways = fanout_figures(directory, repeats)
            label = f"fan-out to {FANOUT_CLIENTS}: Connections / websockets.broadcast"
            _row(label, ways["websockets.broadcast"], ways["Connections.broadcast"], 1.10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

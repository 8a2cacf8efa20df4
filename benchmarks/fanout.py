"""Fan-out: Connections.broadcast of a ~200-byte message to 1,000 guarded connections,
against websockets.broadcast of the same message pre-encoded, in one run; prints the ratio.

Run: make bench (or .venv/bin/python benchmarks/fanout.py [--quick]). One process holds a
websockets server with 1,000 connections and their 1,000 clients on 127.0.0.1; each round
times one call of each, alternated (A B, then B A), after the clients have read what the
previous round sent. The message is a dict for broadcast (decided and serialised once) and
the str json.dumps makes of it for websockets.broadcast. Target: at most 1.10x.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

from _harness import header
from inbound import progress
from ws_close_policy import Policy
from ws_close_policy.adapters.websockets import Connections, guard, serve_options

MESSAGE = progress(1)  # 189 bytes as JSON, the micro-benchmarks' 200 B message
TARGET = 1.10


async def main(clients: int, rounds: int) -> int:
    policy = Policy()
    connections = Connections(policy)
    server_side: list[ServerConnection] = []
    pre_encoded = json.dumps(MESSAGE, separators=(",", ":"))

    async def handler(ws: ServerConnection) -> None:
        server_side.append(ws)
        async with guard(ws, policy, connections=connections) as conn:
            await conn.receive()

    async with serve(handler, "127.0.0.1", 0, **serve_options(policy)) as server:
        uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        sockets: list[ClientConnection] = [await connect(uri) for _ in range(clients)]
        while len(connections) < clients:
            await asyncio.sleep(0.01)
        received = [0]

        async def read(ws: ClientConnection) -> None:
            async for _ in ws:
                received[0] += 1

        readers = [asyncio.create_task(read(ws)) for ws in sockets]

        async def settle(expected: int) -> None:
            while received[0] < expected:
                await asyncio.sleep(0.001)

        async def ours() -> float:
            start = time.perf_counter()
            await connections.broadcast(MESSAGE)
            return time.perf_counter() - start

        async def theirs() -> float:
            start = time.perf_counter()
            broadcast(server_side, pre_encoded)
            return time.perf_counter() - start

        ratios, ours_s, theirs_s = [], [], []
        expected = 0
        for i in range(rounds):
            pair = []
            for run in (theirs, ours) if i % 2 == 0 else (ours, theirs):
                pair.append((run, await run()))
                expected += clients
                await settle(expected)
            times = dict(pair)
            ratios.append(times[ours] / times[theirs])
            ours_s.append(times[ours])
            theirs_s.append(times[theirs])
        await connections.drain(window=0)
        await asyncio.gather(*readers, return_exceptions=True)

    ratio = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    spread = (q3 - q1) / 2
    margin = TARGET - ratio
    verdict = "inconclusive" if spread > abs(margin) else ("ok" if margin >= 0 else "MISSED")
    print(f"# {clients} connections, {rounds} alternated rounds, {len(pre_encoded)}-byte message")
    print(f"websockets.broadcast (pre-encoded): {statistics.median(theirs_s) * 1e3:8.3f} ms")
    print(f"Connections.broadcast:              {statistics.median(ours_s) * 1e3:8.3f} ms")
    print(f"ratio {ratio:.3f} ± {spread:.3f}  (target <= {TARGET:.2f}: {verdict})")
    return 0


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    header(("websockets",))
    sys.exit(asyncio.run(main(1000, 15 if quick else 61)))

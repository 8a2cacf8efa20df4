"""``serve-demo --redis URL --workers 2``: the reference server as a fleet, run as users run
it (``make test-redis``), on a real redis-server. The demo's wire contract holds whichever
worker a client reaches, with every job run by the jobs process: progress then 1000, 1011,
the policy's 1009 or its summary, 1001 on cancel; a SIGTERM drains every worker with 1012
and the whole fleet exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.adapters.stacks import free_port, started
from tests.fanout.redis_server import redis_server
from tests.wire import Seen, close_received, exchange, run

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]
WAIT = 10.0


def kinds(seen: Seen) -> list[str]:
    return [json.loads(message)["type"] for message in seen.received]


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=5)
    return [int(line) for line in found.stdout.split()]


@pytest.mark.parametrize("adapter", ["websockets", "starlette"])
def test_serve_demo_with_redis_runs_as_a_fleet(adapter: str, tmp_path: Path) -> None:
    progress = ["job_started"] + ["job_progress"] * 5
    with redis_server(tmp_path) as redis:
        port = free_port()
        argv = [sys.executable, "-m", "ws_close_policy", "serve-demo", "--adapter", adapter,
                "--port", str(port), "--redis", redis.url, "--workers", "2"]  # fmt: skip
        base = f"ws://127.0.0.1:{port}/jobs"

        async def scenario() -> list[Seen]:
            return list(
                await asyncio.gather(
                    *(exchange(f"{base}/ok-1?token=demo-token", wait=WAIT) for _ in range(4)),
                    exchange(f"{base}/fail-2?token=demo-token", wait=WAIT),
                    exchange(f"{base}/big-3?token=demo-token", wait=WAIT),
                    exchange(f"{base}/big-4?token=demo-token&summary=1", wait=WAIT),
                    exchange(f"{base}/slow-5?token=demo-token", '{"type": "cancel"}', wait=WAIT),
                )
            )

        async def drained() -> tuple[int, str] | None:
            async with connect(f"{base}/slow-6?token=demo-token", open_timeout=WAIT) as ws:
                await asyncio.wait_for(ws.recv(), WAIT)  # job_started
                await asyncio.wait_for(ws.recv(), WAIT)  # the jobs process's first progress
                fleet.process.send_signal(signal.SIGTERM)
                return await close_received(ws, WAIT)

        with started("fleet", argv, port, tmp_path) as fleet:
            # Two workers and a jobs process, forked after the socket listens.
            deadline = time.monotonic() + WAIT
            while len(children(fleet.process.pid)) < 3:
                assert time.monotonic() < deadline, children(fleet.process.pid)
                time.sleep(0.05)
            assert len(children(fleet.process.pid)) == 3
            *same_job, failed, big, summary, cancelled = run(scenario(), timeout=60)
            closed = run(drained(), timeout=30)
            assert fleet.process.wait(20) == 0, fleet.output()
    for seen in same_job:  # one job run, every watcher
        assert (kinds(seen), seen.code) == ([*progress, "job_complete"], 1000)
    assert (kinds(failed), failed.code) == ([*progress, "error"], 1011)
    assert (kinds(big), big.code, big.reason) == (progress, 1009, "Message too large")
    summarised = json.loads(summary.received[-1])["payload"]
    assert (summarised["summary"], summary.code) == (True, 1000)
    assert (kinds(cancelled)[:1], cancelled.code) == (["job_started"], 1001)
    assert closed == (1012, "Service restarting")

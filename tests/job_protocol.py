"""The test job protocol every adapter's wire tests serve: each client message names the
scenario the server plays."""

from __future__ import annotations

import asyncio
from typing import Any

from ws_close_policy import Outcome
from ws_close_policy.adapters import Closed, PolicyConnection

OUTBOUND_LIMIT = 10_000
PUSH_INTERVAL = 0.02  # seconds between two pushes of a push-only loop
JOB_STEPS = 3


async def serve_job(conn: PolicyConnection, stats: dict[str, Any] | None = None) -> None:
    """Answer each client message as the scenario it names."""
    async for message in conn:
        kind = message["type"]
        if kind == "ping":
            await conn.send({"type": "pong"})
        elif kind == "cancel":
            await conn.close(Outcome.CANCELLED)
        elif kind == "complete":
            await conn.send({"type": "job_complete"})
            return
        elif kind == "crash":
            raise RuntimeError("database password is hunter2")
        elif kind == "big":
            await conn.send({"type": "job_complete", "rows": "x" * OUTBOUND_LIMIT})
        elif kind == "long_reason":
            await conn.close(Outcome.CANCELLED, reason="é" * 150)  # 300 bytes
        elif kind == "refresh_token" and message.get("token") != "good":
            await conn.close(Outcome.POLICY_VIOLATION)
        elif kind == "app_close":
            await conn.close(4004, "Job not found")
        elif kind == "push":
            await push_until_gone(conn, stats)
        elif kind.startswith("job"):  # the job-progress pattern: the loop reads on meanwhile
            conn.run(job(conn, kind, stats))


async def push_until_gone(conn: PolicyConnection, stats: dict[str, Any] | None) -> None:
    """A push-only loop with no boilerplate: it ends when send() raises Closed."""
    sent = 0
    try:
        while True:
            await conn.send({"type": "progress", "n": sent})
            sent += 1
            await asyncio.sleep(PUSH_INTERVAL)
    finally:
        if stats is not None:
            stats["pushes"].append({"sent": sent})


async def job(conn: PolicyConnection, kind: str, stats: dict[str, Any] | None) -> int | None:
    """A producer for ``conn.run``: ``job`` pushes JOB_STEPS progress messages and returns
    (1000); ``job_fails`` raises after one (1011); ``job_app_code`` returns 4010 after one;
    ``job_slow`` pushes until it is cancelled. Each records how it ended."""
    sent, ended = 0, "cancelled"  # unless it gets further
    try:
        while kind == "job_slow" or sent < (JOB_STEPS if kind == "job" else 1):
            await conn.send({"type": "progress", "n": sent})
            sent += 1
            await asyncio.sleep(PUSH_INTERVAL)
        if kind == "job_fails":
            ended = "failed"
            raise RuntimeError("the job's database password is hunter2")
        ended = "returned"
        return 4010 if kind == "job_app_code" else None
    except Closed:
        ended = "closed"  # a send found the connection over
        raise
    finally:
        if stats is not None:
            stats["jobs"].append({"kind": kind, "sent": sent, "ended": ended})

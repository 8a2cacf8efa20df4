"""The reference job: the job-progress contract, on any adapter's PolicyConnection.

Wire contract (``docs/demo.md``): ``ws://HOST:PORT/jobs/{job_id}?token=TOKEN[&summary=1]``.
Server messages use the envelope ``{"type", "jobId", "pipeline", "timestamp", "version",
"payload"}``. Jobs by id prefix: ``ok-`` about a second of progress then ``job_complete``
and 1000; ``fail-`` an ``error`` then 1011; ``big-`` a result over the outbound hard limit
(1009, or with ``summary=1`` a summary-only ``job_complete`` and 1000); ``slow-`` runs until
cancelled or drained. Client messages: ``ping`` -> ``pong``; ``cancel`` -> 1001 (the
default profile); ``refresh_token`` with a valid token continues, else 1008.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from .. import InboundPolicy, OutboundPolicy, Outcome, Policy, Profile, ReconnectPolicy
from ..adapters import PolicyConnection

VERSION = "1.0.0"
PIPELINE = "csv_import"
CLIENT_TYPES = frozenset({"ping", "cancel", "refresh_token"})
PROGRESS_STEPS = 5
STEP_SECONDS = 0.2


@dataclass(frozen=True)
class DemoSettings:
    """How the reference server runs.

    ``refusal``: how a bad token is refused, ``"http"`` (HTTP 401 before the upgrade; a
    browser sees only 1006) or ``"close"`` (accept, then close 1008, which a browser reads).
    ``restart_delay``: the reconnect window after 1012 that the page is told (5-30 s).
    ``origins``: the ``Origin`` values allowed (``None``: any; a list as for
    ``lifecycle.Origins``), refused the way ``refusal`` says (HTTP 403, or 1008 "Origin not
    allowed").
    ``quiet``: the servers' own log lines are hidden (the demo's table says what happened).
    """

    token: str = "demo-token"
    profile: Profile = Profile.ACTIONABLE
    max_connections: int | None = None
    step_seconds: float = STEP_SECONDS
    refusal: Literal["http", "close"] = "http"
    restart_delay: tuple[float, float] = (5.0, 30.0)
    origins: tuple[str | None, ...] | None = None
    quiet: bool = False

    def reconnect(self) -> ReconnectPolicy:
        """The reconnect policy the page follows."""
        return ReconnectPolicy(restart_delay=self.restart_delay, profile=self.profile)

    def policy(self, summary: bool) -> Policy:
        """The policy of one connection: ``summary=1`` adds the summary-only fallback."""
        return Policy(
            InboundPolicy(allowed_types=CLIENT_TYPES),
            OutboundPolicy(degrade=summarise if summary else None),
            self.profile,
        )


def envelope(kind: str, job_id: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": kind,
        "jobId": job_id,
        "pipeline": PIPELINE,
        "timestamp": int(time.time() * 1000),
        "version": VERSION,
        "payload": {"type": kind, "pipeline": PIPELINE, **(payload or {})},
    }


def summarise(message: dict[str, Any]) -> dict[str, Any] | None:
    """The summary-only form of a result, for clients that asked for ``summary=1``."""
    if message.get("type") != "job_complete":
        return None
    rows = message.get("payload", {}).get("rows", [])
    return {**message, "payload": {"type": "job_complete", "summary": True, "rows": len(rows)}}


def big_result_rows(limit: int) -> list[str]:
    """Rows whose JSON is just over ``limit`` bytes."""
    row = "r" * 1000
    return [row] * (limit // (len(row) + 3) + 1)


async def run_job(conn: PolicyConnection, job_id: str, settings: DemoSettings) -> Outcome:
    """The job: its progress, then its result; what it returns closes the connection."""
    kind = job_id.split("-", 1)[0]
    if kind == "slow":
        while True:  # until cancelled, drained or the client leaves: run() cancels it
            await asyncio.sleep(settings.step_seconds)
            await conn.send(envelope("job_progress", job_id, {"progress": None}))
    for step in range(1, PROGRESS_STEPS + 1):
        await asyncio.sleep(settings.step_seconds)
        progress = {"progress": step / PROGRESS_STEPS, "processed": step, "total": PROGRESS_STEPS}
        await conn.send(envelope("job_progress", job_id, progress))
    if kind == "fail":
        await conn.send(envelope("error", job_id, {"error": "Job failed"}))
        return Outcome.FAILED
    limit = conn.policy.outbound.max_bytes
    rows = big_result_rows(limit) if kind == "big" else ["row 1", "row 2"]
    await conn.send(envelope("job_complete", job_id, {"rows": rows}))  # 1009 if too big
    return Outcome.COMPLETED


async def handle(conn: PolicyConnection, job_id: str, settings: DemoSettings) -> None:
    """One connection: the job runs while the client's messages are answered."""
    await conn.send(envelope("job_started", job_id))
    async for message in conn.run(run_job(conn, job_id, settings)):
        await answer(conn, job_id, message, settings)


async def answer(
    conn: PolicyConnection,
    job_id: str,
    message: dict[str, Any],
    settings: DemoSettings,
    cancel: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """A client message: ``ping`` -> ``pong``; ``cancel`` -> 1001 (after ``cancel()``, which
    stops a job run elsewhere; ``run`` cancels its own); ``refresh_token`` with a wrong
    token -> 1008."""
    kind = message["type"]
    if kind == "ping":
        await conn.send(envelope("pong", job_id))
    elif kind == "cancel":
        if cancel is not None:
            await cancel()
        await conn.close(Outcome.CANCELLED)  # 1001
    elif kind == "refresh_token" and message.get("token") != settings.token:
        await conn.close(Outcome.POLICY_VIOLATION)

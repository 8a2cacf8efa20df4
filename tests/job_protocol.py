"""The test job protocol both adapters' wire tests serve: the review's scenarios on demand."""

from __future__ import annotations

from ws_close_policy import Outcome
from ws_close_policy.adapters.connection import PolicyConnection

OUTBOUND_LIMIT = 10_000


async def serve_job(conn: PolicyConnection) -> None:
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

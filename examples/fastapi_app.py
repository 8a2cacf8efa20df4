"""A job-progress endpoint on FastAPI with the close policy: uvicorn examples.fastapi_app:app"""

import asyncio
import hmac
from typing import Annotated

from fastapi import Depends, FastAPI, WebSocket

from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters import Connections, PolicyConnection
from ws_close_policy.adapters.starlette import (
    admit,
    authenticate,
    check_origin,
    guard,
    lifespan,
)

TOKEN = b"demo-token"
policy = Policy()
connections = Connections(policy, max_open=1000)  # this app's connections, nothing global
app = FastAPI(lifespan=lifespan(connections))  # SIGTERM: each client gets 1012 within 5 s


def token_ok(websocket: WebSocket) -> bool:
    token = websocket.query_params.get("token", "")
    return hmac.compare_digest(token.encode(), TOKEN)  # exact, in constant time


def known_jobs() -> set[str]:  # a dependency of the app's own: it runs after the checks
    return {"42"}


checks = [  # before the upgrade, in this order
    Depends(check_origin([None, "https://app.example.com"])),  # another Origin: HTTP 403
    Depends(authenticate(token_ok)),  # HTTP 401 with WWW-Authenticate
    Depends(admit(connections)),  # HTTP 503 when full or draining
]


async def job(conn: PolicyConnection, job_id: str) -> None:
    """The job: it pushes its progress while the endpoint reads the client's messages."""
    for step in range(1, 21):
        await asyncio.sleep(0.5)  # the work
        await conn.send({"type": "progress", "job": job_id, "step": step})  # 1009 if too large
    await conn.send({"type": "job_complete", "job": job_id})
    # Returning closes 1000; an exception closes 1011 (then reaches uvicorn, which logs it).


@app.websocket("/jobs/{job_id}", dependencies=checks)
async def jobs(
    websocket: WebSocket, job_id: str, known: Annotated[set[str], Depends(known_jobs)]
) -> None:
    async with guard(websocket, policy, connections=connections) as conn:  # accepts
        if job_id not in known:
            await conn.close(4004, "Job not found")  # an application code
            return
        async for message in conn.run(job(conn, job_id)):  # only valid messages: else 1002
            if message["type"] == "cancel":
                await conn.close(Outcome.CANCELLED)  # 1001, and the job is cancelled
            else:
                await conn.send({"type": "pong", "job": job_id})
    # A client that leaves, a drain or any close cancels the job; nothing outlives the block.

"""A job endpoint on FastAPI with the close policy: uvicorn examples.fastapi_app:app"""

import hmac
from typing import Annotated

from fastapi import Depends, FastAPI, WebSocket

from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters.starlette import (
    Connections,
    admit,
    authenticate,
    check_origin,
    guard,
)

TOKEN = b"demo-token"
policy = Policy()
connections = Connections(policy, max_open=1000)  # this app's connections, nothing global
app = FastAPI(lifespan=connections.lifespan)  # SIGTERM: each client gets 1012 within 5 s


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


@app.websocket("/jobs/{job_id}", dependencies=checks)
async def job(
    websocket: WebSocket, job_id: str, jobs: Annotated[set[str], Depends(known_jobs)]
) -> None:
    async with guard(websocket, policy, connections=connections) as conn:  # accepts
        if job_id not in jobs:
            await conn.close(4004, "Job not found")  # an application code
            return
        async for message in conn:  # only valid messages: bad ones close 1002
            if message["type"] == "cancel":
                await conn.close(Outcome.CANCELLED)  # 1001
            else:
                await conn.send({"type": "pong", "job": job_id})  # 1009 if too large
    # Leaving the block closes 1000; an exception in it closes 1011 (and is logged).

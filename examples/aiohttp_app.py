"""A job-progress endpoint on aiohttp with the close policy: python examples/aiohttp_app.py"""

import asyncio
import hmac
import sys

from aiohttp import web

from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters import Connections, PolicyConnection
from ws_close_policy.adapters.aiohttp import (
    admit,
    authenticate,
    check_origin,
    drain_on_shutdown,
    guard,
    websocket,
)

TOKEN = b"demo-token"
JOBS = {"42"}
policy = Policy()
connections = Connections(policy, max_open=1000)  # this app's connections, nothing global


def token_ok(request: web.Request) -> bool:
    token = request.query.get("token", "")
    return hmac.compare_digest(token.encode(), TOKEN)  # exact, in constant time


async def job(conn: PolicyConnection, job_id: str) -> None:
    """The job: it pushes its progress while the handler reads the client's messages."""
    for step in range(1, 21):
        await asyncio.sleep(0.5)  # the work
        await conn.send({"type": "progress", "job": job_id, "step": step})  # 1009 if too large
    await conn.send({"type": "job_complete", "job": job_id})
    # Returning closes 1000; an exception closes 1011 (then reaches aiohttp, which logs it).


@check_origin([None, "https://app.example.com"])  # another Origin: HTTP 403
@authenticate(token_ok)  # HTTP 401 with WWW-Authenticate
@admit(connections)  # HTTP 503 when full or draining
async def jobs(request: web.Request) -> web.StreamResponse:
    job_id = request.match_info["job_id"]
    ws = websocket(policy)  # the server's message limit, merged with yours
    async with guard(ws, request, policy, connections=connections) as conn:  # prepares
        if job_id not in JOBS:
            await conn.close(4004, "Job not found")  # an application code
            return ws
        async for message in conn.run(job(conn, job_id)):  # only valid messages: else 1002
            if message["type"] == "cancel":
                await conn.close(Outcome.CANCELLED)  # 1001, and the job is cancelled
            else:
                await conn.send({"type": "pong", "job": job_id})
    # A client that leaves, a drain or any close cancels the job; nothing outlives the block.
    return ws


app = web.Application()
app.router.add_get("/jobs/{job_id}", jobs)
drain_on_shutdown(app, connections)  # SIGTERM: each client gets 1012 within 5 s

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8080)

"""Job progress on websockets, with the close policy: python examples/websockets_server.py"""

import asyncio
import hmac
import sys
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request
from websockets.typing import Origin

from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters import Connections, PolicyConnection
from ws_close_policy.adapters.websockets import (
    admit,
    authenticate,
    chain,
    drain_on_signal,
    guard,
    serve_options,
)

TOKEN = b"demo-token"
JOBS = {"42"}
policy = Policy()
connections = Connections(policy, max_open=1000)  # this server's connections, nothing global


def token_ok(request: Request) -> bool:
    token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
    return hmac.compare_digest(token.encode(), TOKEN)  # exact, in constant time


async def job(conn: PolicyConnection, job_id: str) -> None:
    """The job: it pushes its progress while the handler reads the client's messages."""
    for step in range(1, 21):
        await asyncio.sleep(0.5)  # the work
        await conn.send({"type": "progress", "job": job_id, "step": step})  # 1009 if too large
    await conn.send({"type": "job_complete", "job": job_id})
    # Returning closes 1000; an exception closes 1011 (then reaches websockets, which logs it).


async def handler(ws: ServerConnection) -> None:
    job_id = urlsplit(ws.request.path).path.rpartition("/")[2] if ws.request else ""
    async with guard(ws, policy, connections=connections) as conn:
        if job_id not in JOBS:
            await conn.close(4004, "Job not found")  # an application code
            return
        async for message in conn.run(job(conn, job_id)):  # only valid messages: else 1002
            if message["type"] == "cancel":
                await conn.close(Outcome.CANCELLED)  # 1001, and the job is cancelled
            else:
                await conn.send({"type": "pong", "job": job_id})
    # A client that leaves, a drain or any close cancels the job; nothing outlives the block.


async def main(port: int = 8765) -> None:
    async with serve(
        handler,
        "127.0.0.1",
        port,
        process_request=chain(authenticate(token_ok), admit(connections)),  # HTTP 401, 503
        origins=[None, Origin("https://app.example.com")],  # another Origin: HTTP 403
        **serve_options(policy),  # the server's message limit, merged with yours
    ):
        await drain_on_signal(connections)  # SIGTERM: each client gets 1012 within 5 s


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))

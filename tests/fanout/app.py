"""The watcher server of tests/fanout/test_fleet.py, run the ways users run it:

    uvicorn tests.fanout.app:app --workers 2          # FastAPI, Starlette's adapter
    python -m tests.fanout.app --port 8000            # the websockets adapter

Both read the Redis URL from ``WS_TEST_REDIS_URL``. ``/watch/{topic}`` is a guarded
WebSocket watching ``topic`` through this process's ``Subscriber``: its first message
(``{"type": "watching", "pid": ...}``) says the subscription is confirmed; then it gets
whatever the topic's publishers decided. ``/stats`` is this process's figures as JSON: its
pid, the subscriber's ``SubscriberStats`` and how many guarded connections are open.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, WebSocket

from ws_close_policy.adapters import Connections, PolicyConnection
from ws_close_policy.adapters.starlette import guard, lifespan
from ws_close_policy.fanout import Subscriber

URL = os.environ.get("WS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: Short, so that the tests of a Redis gone silent stay short.
HEALTH = float(os.environ.get("WS_TEST_HEALTH_INTERVAL", "1.0"))

# Every close and every fan-out event in the server's log, which the tests read.
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
connections = Connections(drain_window=0.5)
subscriber = Subscriber(URL, connections, health_interval=HEALTH)


def stats() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "open": len(connections),
        **dataclasses.asdict(subscriber.stats()),
    }


async def watch(conn: PolicyConnection, topic: str) -> None:
    """Both servers' handler: say when watching, then read the client until it closes."""
    async with subscriber.watching(conn, topic):
        if conn.is_open:
            await conn.send({"type": "watching", "pid": os.getpid()})
        async for _ in conn:  # the client's messages: ignored
            pass


@asynccontextmanager
async def app_lifespan(application: Any) -> AsyncIterator[dict[str, Any]]:
    async with subscriber, lifespan(connections)(application) as state:
        yield state


app = FastAPI(lifespan=app_lifespan)


@app.websocket("/watch/{topic}")
async def watch_route(websocket: WebSocket, topic: str) -> None:
    async with guard(websocket, connections=connections) as conn:
        await watch(conn, topic)


@app.get("/stats")
def stats_route() -> dict[str, Any]:
    return stats()


async def serve_websockets(port: int) -> None:
    """The same server on the websockets library, until SIGTERM (drain, then exit)."""
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.datastructures import Headers
    from websockets.http11 import Request, Response

    from ws_close_policy.adapters import websockets as adapter

    async def stats_page(_: ServerConnection, request: Request) -> Response | None:
        if request.path != "/stats":
            return None
        body = json.dumps(stats()).encode()
        return Response(200, "OK", Headers({"Content-Type": "application/json"}), body)

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        topic = ws.request.path.removeprefix("/watch/")
        async with adapter.guard(ws, connections=connections) as conn:
            await watch(conn, topic)

    options = adapter.serve_options()
    async with subscriber, serve(handler, "127.0.0.1", port, process_request=stats_page, **options):
        await adapter.drain_on_signal(connections)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve_websockets(parser.parse_args().port))

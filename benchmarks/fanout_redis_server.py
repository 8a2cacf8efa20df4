"""One server process for benchmarks/fanout_redis.py:
python fanout_redis_server.py MODE URL NAME; prints its port once it listens.

Every connection watches one topic (``NAME``) until its client leaves. MODE is:

- guard-websockets, guard-starlette: ws_close_policy's ``guard``, and a
  ``ws_close_policy.fanout.Subscriber`` (channel ``ws-close-policy:NAME``) delivering to
  the watchers (``Connections.forward``);
- bare-websockets: what an application writes by hand: one redis-py asyncio pub/sub reader
  on channel ``NAME`` passing each payload as it came to ``websockets.broadcast``, in a
  text frame;
- bare-starlette: the same reader, awaiting ``send_text`` on each socket in turn.

No keepalive pings (as in benchmarks/e2e_server.py): one landing in a measurement window
would count 500 pings as the fan-out's work. Starlette runs under uvicorn as
``uvicorn app:app`` runs it (uvloop and httptools when installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aredis

from ws_close_policy import Policy
from ws_close_policy.adapters import Connections
from ws_close_policy.fanout import Subscriber

POLICY = Policy()


def subscriber(url: str, connections: Connections) -> Subscriber:
    # Under callgrind, a process busy with 500 handshakes takes longer than the default
    # 2 s to see its subscription confirmed (and would close its watchers with 1013).
    return Subscriber(url, connections, timeout=60.0)


async def relay(url: str, channel: str, deliver: Callable[[bytes], Awaitable[None]]) -> None:
    """The hand-written reader: every payload of ``channel``, as it came, to ``deliver``."""
    async with aredis.Redis.from_url(url) as client, client.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            if message["type"] == "message":
                await deliver(message["data"])


async def serve_websockets(mode: str, url: str, name: str, sock: socket.socket) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    from ws_close_policy.adapters.websockets import guard, serve_options

    watchers: set[ServerConnection] = set()
    connections = Connections(POLICY)

    async def to_all(data: bytes) -> None:
        broadcast(watchers, data, text=True)

    async def bare(ws: ServerConnection) -> None:
        watchers.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            watchers.discard(ws)

    if "bare" in mode:
        async with serve(bare, sock=sock, compression=None, ping_interval=None):
            print(sock.getsockname()[1], flush=True)
            await relay(url, name, to_all)
        return
    async with subscriber(url, connections) as fanout:

        async def guarded(ws: ServerConnection) -> None:
            async with (
                guard(ws, POLICY, connections=connections) as conn,
                fanout.watching(conn, name),
            ):
                async for _ in conn:
                    pass

        options = serve_options(POLICY)
        async with serve(guarded, sock=sock, compression=None, ping_interval=None, **options):
            print(sock.getsockname()[1], flush=True)
            await asyncio.Future()


def starlette_app(mode: str, url: str, name: str) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from ws_close_policy.adapters.starlette import guard

    watchers: set[WebSocket] = set()
    connections = Connections(POLICY)
    fanout = subscriber(url, connections)

    async def to_each(data: bytes) -> None:
        text = data.decode()
        for ws in list(watchers):
            with contextlib.suppress(Exception):  # it is leaving
                await ws.send_text(text)

    async def bare(websocket: WebSocket) -> None:
        await websocket.accept()
        watchers.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            watchers.discard(websocket)

    async def guarded(websocket: WebSocket) -> None:
        async with (
            guard(websocket, POLICY, connections=connections) as conn,
            fanout.watching(conn, name),
        ):
            async for _ in conn:
                pass

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if "guard" in mode:
            async with fanout:
                yield
            return
        reader = asyncio.create_task(relay(url, name, to_each))
        yield
        reader.cancel()

    endpoint = guarded if "guard" in mode else bare
    return Starlette(routes=[WebSocketRoute("/", endpoint)], lifespan=lifespan)


def main() -> None:
    mode, url, name = sys.argv[1:4]
    sock = socket.create_server(("127.0.0.1", 0), backlog=2048)
    if mode.endswith("websockets"):
        asyncio.run(serve_websockets(mode, url, name, sock))
        return
    import uvicorn

    app = starlette_app(mode, url, name)
    config = uvicorn.Config(
        app, log_level="warning", ws_per_message_deflate=False, ws_ping_interval=None
    )
    print(sock.getsockname()[1], flush=True)  # listening: clients wait in the backlog
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

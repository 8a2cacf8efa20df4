"""One server for benchmarks/e2e.py: python e2e_server.py MODE; prints its port.

Modes: bare-websockets, guard-websockets, guard-websockets-orjson, bare-starlette,
guard-starlette, guard-starlette-orjson, and fanout (for benchmarks/instructions_e2e.py).
The bare servers do the JSON work an application
does anyway (json.loads, json.dumps); the guarded ones let the policy do it.

Protocol: a message {"type": "echo", ...} is answered with the same object; a message
{"type": "stream", "count": N} is answered with N small messages, then the server closes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

from e2e import MESSAGE
from ws_close_policy import InboundPolicy, OutboundPolicy, Policy

STREAM_ITEM = {"type": "job_progress", "jobId": "ok-1", "progress": 0.5, "version": "1.0.0"}


def policy(mode: str) -> Policy:
    codec = "orjson" if mode.endswith("-orjson") else "json"
    return Policy(InboundPolicy(codec=codec), OutboundPolicy(codec=codec))


async def guarded(conn: Any) -> None:
    async for message in conn:
        if message["type"] == "stream":
            for _ in range(int(message["count"])):
                await conn.send(STREAM_ITEM)
            return
        await conn.send(message)


async def serve_websockets(mode: str, sock: socket.socket) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    from ws_close_policy.adapters.websockets import guard, serve_options

    pol = policy(mode)

    async def bare(ws: ServerConnection) -> None:
        async for data in ws:
            message = json.loads(data)
            if message["type"] == "stream":
                for _ in range(int(message["count"])):
                    await ws.send(json.dumps(STREAM_ITEM))
                return
            await ws.send(json.dumps(message))

    async def with_guard(ws: ServerConnection) -> None:
        async with guard(ws, pol) as conn:
            await guarded(conn)

    handler = bare if mode.startswith("bare") else with_guard
    options = serve_options(pol) if mode.startswith("guard") else {}
    # No keepalive pings, on either side of a comparison: one landing in a measurement
    # window would count 1,000 pings as the broadcast's work.
    async with serve(handler, sock=sock, compression=None, ping_interval=None, **options):
        print(sock.getsockname()[1], flush=True)
        await asyncio.Future()


# The echo benchmarks' message as a job's progress: 189 bytes serialised compactly.
FANOUT_ITEM = {**json.loads(MESSAGE), "type": "job_progress"}


async def serve_fanout(sock: socket.socket) -> None:
    """Guarded connections, also listed for a bare ``websockets.broadcast``; a connection
    to /control says ``ready N`` (answered once N are open), then ``bare R`` or ``guard
    R``: R broadcasts back to back, either way, answered once queued."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    from ws_close_policy.adapters import Connections
    from ws_close_policy.adapters.websockets import guard, serve_options

    pol = Policy()
    connections = Connections()
    plain: list[ServerConnection] = []
    encoded = json.dumps(FANOUT_ITEM, separators=(",", ":"))

    async def control(ws: ServerConnection) -> None:
        async for command in ws:
            how, number = str(command).split()
            if how == "ready":
                while len(connections) < int(number):
                    await asyncio.sleep(0.01)
            for _ in range(int(number) if how != "ready" else 0):
                if how == "bare":
                    broadcast(plain, encoded)
                else:
                    await connections.broadcast(FANOUT_ITEM)
            await ws.send("done")

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/control":
            await control(ws)
            return
        plain.append(ws)
        try:
            async with guard(ws, pol, connections=connections) as conn:
                async for _ in conn:
                    pass
        finally:
            plain.remove(ws)

    options = serve_options(pol)
    async with serve(handler, sock=sock, compression=None, ping_interval=None, **options):
        print(sock.getsockname()[1], flush=True)
        await asyncio.Future()


def starlette_app(mode: str) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    from ws_close_policy.adapters.starlette import guard

    pol = policy(mode)

    async def bare(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                if message["type"] == "stream":
                    for _ in range(int(message["count"])):
                        await websocket.send_text(json.dumps(STREAM_ITEM))
                    await websocket.close()
                    return
                await websocket.send_text(json.dumps(message))
        except WebSocketDisconnect:
            return

    async def with_guard(websocket: WebSocket) -> None:
        async with guard(websocket, pol) as conn:
            await guarded(conn)

    endpoint = bare if mode.startswith("bare") else with_guard
    return Starlette(routes=[WebSocketRoute("/", endpoint)])


def serve_starlette(mode: str, sock: socket.socket) -> None:
    """As ``uvicorn app:app`` runs it: on uvloop and httptools when installed. (Inside
    ``asyncio.run`` uvicorn keeps the default loop, whose 256 KiB read buffers cost the
    guarded server an mmap, mremap and munmap per message: a benchmark artefact.)"""
    import uvicorn

    config = uvicorn.Config(
        starlette_app(mode),
        lifespan="off",
        log_level="warning",
        ws_per_message_deflate=False,
        ws_ping_interval=None,
    )
    print(sock.getsockname()[1], flush=True)  # listening: clients wait in the backlog
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    mode = sys.argv[1]
    sock = socket.create_server(("127.0.0.1", 0), backlog=2048)
    if mode == "fanout":
        asyncio.run(serve_fanout(sock))
        return
    if "websockets" in mode:
        asyncio.run(serve_websockets(mode, sock))
    else:
        serve_starlette(mode, sock)


if __name__ == "__main__":
    main()

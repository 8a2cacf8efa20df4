"""Fan-out on real servers: one decision for many connections, and a client too slow to keep
up closed with 1013 instead of stalling the others."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.client import ClientProtocol
from websockets.protocol import State as ProtocolState
from websockets.uri import parse_uri

from tests.aiohttp_server import aiohttp_server
from tests.asgi_servers import SERVERS, asgi_server
from tests.wire import run
from ws_close_policy import OutboundPolicy, Policy
from ws_close_policy.adapters import Connections
from ws_close_policy.adapters import aiohttp as aiohttp_adapter
from ws_close_policy.adapters import starlette as starlette_adapter
from ws_close_policy.adapters import websockets as websockets_adapter

POLICY = Policy(outbound=OutboundPolicy(max_bytes=4 * 1024 * 1024))
STACKS = ("websockets", *SERVERS, "aiohttp")


@asynccontextmanager
async def fanout_server(stack: str, connections: Connections) -> AsyncIterator[str]:
    """A server whose handlers only wait: messages reach them by broadcast."""
    if stack == "websockets":

        async def handler(ws: ServerConnection) -> None:
            async with websockets_adapter.guard(ws, POLICY, connections=connections) as conn:
                await conn.receive()

        options = websockets_adapter.serve_options(POLICY, write_limit=64 * 1024)
        async with serve(handler, "127.0.0.1", 0, **options) as server:
            yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    elif stack == "aiohttp":

        async def aiohttp_handler(request: web.Request) -> web.StreamResponse:
            ws = aiohttp_adapter.websocket(POLICY)
            async with aiohttp_adapter.guard(ws, request, POLICY, connections=connections) as c:
                await c.receive()
            return ws

        aiohttp_app = web.Application()
        aiohttp_app.router.add_get("/", aiohttp_handler)
        async with aiohttp_server(aiohttp_app) as uri:
            yield uri + "/"
    else:

        async def endpoint(websocket: WebSocket) -> None:
            async with starlette_adapter.guard(websocket, POLICY, connections=connections) as conn:
                await conn.receive()

        app = Starlette(routes=[WebSocketRoute("/", endpoint)])
        async with asgi_server(app, stack) as uri:
            yield uri + "/"


class StalledClient:
    """A client that completes the handshake, then reads nothing more: its small receive
    buffer fills, then the server's. websockets' sans-IO protocol parses what it gets."""

    def __init__(self, uri: str) -> None:
        self.protocol = ClientProtocol(parse_uri(uri), max_size=None)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        self.address = (urlsplit(uri).hostname, urlsplit(uri).port)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, self.address)
        self.protocol.send_request(self.protocol.connect())
        await loop.sock_sendall(self.sock, b"".join(self.protocol.data_to_send()))
        while self.protocol.state is ProtocolState.CONNECTING:
            self.protocol.receive_data(await loop.sock_recv(self.sock, 1))  # not a byte more

    async def close_code(self) -> Any:
        """Read everything at last, up to the server's close frame."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(30):
            while self.protocol.close_rcvd is None:
                data = await loop.sock_recv(self.sock, 1 << 20)
                if not data:
                    break
                self.protocol.receive_data(data)
                self.protocol.events_received()
        self.sock.close()
        return self.protocol.close_rcvd


async def _read(ws: ClientConnection, count: int) -> list[Any]:
    return [json.loads(await ws.recv()) for _ in range(count)]


async def _until(condition: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("stack", STACKS)
def test_broadcast_reaches_every_client(stack: str) -> None:
    connections = Connections(POLICY)

    async def scenario() -> tuple[list[int], list[list[Any]]]:
        async with fanout_server(stack, connections) as uri:
            clients = [await connect(uri) for _ in range(5)]
            await _until(lambda: len(connections) == 5)
            sent = [await connections.broadcast({"type": "news", "n": n}) for n in range(3)]
            received = await asyncio.gather(*(_read(ws, 3) for ws in clients))
            await asyncio.gather(*(ws.close() for ws in clients))
            return sent, list(received)

    sent, received = run(scenario())
    assert sent == [5, 5, 5]
    assert received == [[{"type": "news", "n": n} for n in range(3)]] * 5


@pytest.mark.parametrize("stack", STACKS)
def test_a_client_too_slow_is_closed_1013_and_the_others_keep_up(stack: str) -> None:
    connections = Connections(POLICY, max_buffer=256 * 1024, slow_after=0.5)
    chunk = {"type": "chunk", "pad": "x" * (256 * 1024)}

    async def scenario() -> tuple[Any, int]:
        async with fanout_server(stack, connections) as uri:
            slow = StalledClient(uri)
            await slow.open()
            fast = await connect(uri, max_size=None)
            await _until(lambda: len(connections) == 2)
            got = 0

            async def keep_reading() -> None:
                nonlocal got
                async for _ in fast:
                    got += 1

            reader = asyncio.create_task(keep_reading())
            for _ in range(100):  # until the server finds the slow one too slow
                await connections.broadcast(chunk)
                await asyncio.sleep(0.02)
                if sum(c.is_open for c in connections) == 1:
                    break
            received_fast = got
            close = await slow.close_code()
            await fast.close()
            await reader
            return close, received_fast

    slow_close, got = run(scenario(), timeout=60)
    assert slow_close is not None
    assert (slow_close.code, slow_close.reason) == (1013, "Try again later")
    assert got >= 5  # the fast client kept receiving

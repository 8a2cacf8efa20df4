"""Protocol basics through the adapters with the raw codec (what a conformance suite checks):
echo of text and binary, fragmented messages, invalid UTF-8 (1007), bad close codes (1002),
pings answered. Framing itself is the transport's; the point is that the policy layer keeps
its answers intact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from examples import conformance_echo
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import serve
from websockets.frames import Frame, Opcode

from tests.aiohttp_server import aiohttp_server
from tests.asgi_servers import SERVERS, asgi_server
from tests.wire import close_received, run
from ws_close_policy.adapters import websockets as adapter

STACKS = ("websockets", *SERVERS, "aiohttp")
# Framing errors are answered by the server's WebSocket stack before the app sees anything.
# Measured: the wsproto-based stacks (uvicorn --ws wsproto, hypercorn) drop the connection
# with no close frame, with or without this library (a bare Starlette echo does the same).
ANSWERS_FRAMING_ERRORS = {
    "websockets": True,
    "uvicorn-websockets-sansio": True,
    "uvicorn-wsproto": False,
    "hypercorn": False,
    "aiohttp": True,
}
LETS_THROUGH = {("aiohttp", 1006): 1000, ("aiohttp", 5000): 1000}


@asynccontextmanager
async def echo_server(stack: str) -> AsyncIterator[str]:
    if stack == "websockets":
        options = adapter.serve_options(conformance_echo.policy)
        async with serve(conformance_echo.echo, "127.0.0.1", 0, **options) as server:
            yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    elif stack == "aiohttp":
        async with aiohttp_server(conformance_echo.aiohttp_app([])) as uri:
            yield uri + "/"
    else:
        async with asgi_server(conformance_echo.app, stack, max_size=conformance_echo.LIMIT) as uri:
            yield uri + "/"


async def _raw_frame(ws: ClientConnection, frame: Frame) -> None:
    ws.protocol.send_frame(frame)
    ws.send_data()


async def _close_code(ws: ClientConnection) -> int | None:
    closed = await close_received(ws, 5)
    return None if closed is None else closed[0]


@pytest.mark.parametrize("stack", STACKS)
def test_echo_text_binary_fragmented_and_large(stack: str) -> None:
    async def scenario() -> list[str | bytes]:
        async with echo_server(stack) as uri, connect(uri, max_size=None) as ws:
            echoed = []
            for message in ("héllo", b"\x00\xff\x10", "x" * 300_000):
                await ws.send(message)
                echoed.append(await ws.recv())
            await ws.send(["frag", "mented"])  # one message in two frames
            echoed.append(await ws.recv())
            pong = await ws.ping(b"hi")
            await asyncio.wait_for(pong, 5)
            return echoed

    assert run(scenario()) == ["héllo", b"\x00\xff\x10", "x" * 300_000, "fragmented"]


@pytest.mark.parametrize("stack", STACKS)
def test_invalid_utf8_text_frame_closes_1007(stack: str) -> None:
    async def scenario() -> int | None:
        async with echo_server(stack) as uri, connect(uri) as ws:
            await _raw_frame(ws, Frame(Opcode.TEXT, "κόσμε".encode() + b"\xed\xa0\x80"))
            return await _close_code(ws)

    assert run(scenario()) == (1007 if ANSWERS_FRAMING_ERRORS[stack] else None)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("code", [1005, 1006, 1016, 2999, 999, 5000])
def test_close_frame_with_invalid_code_answered_1002(stack: str, code: int) -> None:
    async def scenario() -> int | None:
        async with echo_server(stack) as uri, connect(uri) as ws:
            await _raw_frame(ws, Frame(Opcode.CLOSE, code.to_bytes(2, "big")))
            return await _close_code(ws)

    expected = 1002 if ANSWERS_FRAMING_ERRORS[stack] else None
    # aiohttp's own reader lets 1006 and 5000 through and answers 1000, as a bare aiohttp
    # echo does (measured: conformance/bare_echo.py).
    assert run(scenario()) == LETS_THROUGH.get((stack, code), expected)

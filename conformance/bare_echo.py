"""The baselines for conformance/autobahn.py: the same echo as examples/conformance_echo.py,
written directly on each transport, without this library.

Run: python -m conformance.bare_echo [PORT]     (websockets)
     uvicorn conformance.bare_echo:app ...       (any ASGI server)
     python -m aiohttp.web -P PORT conformance.bare_echo:aiohttp_app
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import WSMsgType, web
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.server import ServerConnection, serve

LIMIT = 16 * 1024 * 1024


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def starlette_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:  # the client left while we echoed
        return


app = Starlette(routes=[WebSocketRoute("/", starlette_echo)])


async def aiohttp_echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=LIMIT)
    await ws.prepare(request)
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


def aiohttp_app(_argv: list[str]) -> web.Application:
    """For ``python -m aiohttp.web ... conformance.bare_echo:aiohttp_app``."""
    application = web.Application()
    application.router.add_get("/", aiohttp_echo)
    return application


async def main(port: int) -> None:
    async with serve(echo, "127.0.0.1", port, max_size=LIMIT):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9001))

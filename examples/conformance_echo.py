"""An echo server for protocol-conformance suites (e.g. Autobahn|Testsuite), through the
policy with the ``raw`` codec: any text or binary message up to 16 MiB is echoed as is.

Run: python examples/conformance_echo.py [PORT]   (the `websockets` adapter)
     uvicorn examples.conformance_echo:app --port PORT --ws-max-size 16777216   (Starlette)
     python -m aiohttp.web -P PORT examples.conformance_echo:aiohttp_app      (aiohttp)
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.server import ServerConnection, serve

from ws_close_policy import InboundPolicy, OutboundPolicy, Policy
from ws_close_policy.adapters import aiohttp as aiohttp_adapter
from ws_close_policy.adapters import starlette as starlette_adapter
from ws_close_policy.adapters import websockets as websockets_adapter

LIMIT = 16 * 1024 * 1024
policy = Policy(
    InboundPolicy(codec="raw", accept_binary=True, max_bytes=LIMIT),
    OutboundPolicy(max_bytes=LIMIT, warn_bytes=LIMIT),
)


async def echo(ws: ServerConnection) -> None:
    async with websockets_adapter.guard(ws, policy) as conn:
        async for message in conn:
            await conn.send(message)


async def starlette_echo(websocket: WebSocket) -> None:
    async with starlette_adapter.guard(websocket, policy) as conn:
        async for message in conn:
            await conn.send(message)


app = Starlette(routes=[WebSocketRoute("/", starlette_echo)])


async def aiohttp_echo(request: web.Request) -> web.WebSocketResponse:
    ws = aiohttp_adapter.websocket(policy)
    async with aiohttp_adapter.guard(ws, request, policy) as conn:
        async for message in conn:
            await conn.send(message)
    return ws


def aiohttp_app(_argv: list[str]) -> web.Application:
    """For ``python -m aiohttp.web ... examples.conformance_echo:aiohttp_app``."""
    application = web.Application()
    application.router.add_get("/", aiohttp_echo)
    return application


async def main(port: int) -> None:
    options = websockets_adapter.serve_options(policy)
    async with serve(echo, "127.0.0.1", port, **options):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9001))

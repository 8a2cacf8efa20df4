"""A guarded `websockets` server in its own process, for the memory test; prints its port."""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection, serve

from ws_close_policy import Policy
from ws_close_policy.adapters.websockets import guard, serve_options


async def handler(ws: ServerConnection) -> None:
    async with guard(ws) as conn:
        async for message in conn:
            await conn.send(message)


async def main() -> None:
    async with serve(handler, "127.0.0.1", 0, **serve_options(Policy())) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())

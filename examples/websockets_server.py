"""A job server on `websockets` with the close policy (tested in tests/test_examples.py)."""

import asyncio

from websockets.asyncio.server import ServerConnection, serve

from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters.websockets import authenticate, guard, serve_options

policy = Policy()


async def handler(ws: ServerConnection) -> None:
    async with guard(ws, policy) as conn:  # 1000 when done, 1011 if this raises
        async for message in conn:  # only valid messages: bad ones close 1002
            if message["type"] == "cancel":
                await conn.close(Outcome.CANCELLED)  # 1001
            else:
                await conn.send({"type": "pong"})  # 1009 if over 32 MiB


async def main(port: int = 8765) -> None:
    token_ok = authenticate(lambda request: "token=demo-token" in request.path)  # else 401
    async with serve(handler, "127.0.0.1", port, process_request=token_ok, **serve_options(policy)):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main())

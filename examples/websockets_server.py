"""A job server on `websockets` with the close policy: python examples/websockets_server.py"""

import asyncio
import hmac
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters.websockets import authenticate, guard, serve_options

TOKEN = b"demo-token"
policy = Policy()


def token_ok(request: Request) -> bool:
    token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
    return hmac.compare_digest(token.encode(), TOKEN)  # exact, in constant time


async def handler(ws: ServerConnection) -> None:
    async with guard(ws, policy) as conn:  # 1000 when done, 1011 if this raises
        async for message in conn:  # only valid messages: bad ones close 1002
            if message["type"] == "cancel":
                await conn.close(Outcome.CANCELLED)  # 1001
            else:
                await conn.send({"type": "pong"})  # 1009 if over 32 MiB


async def main(port: int = 8765) -> None:
    auth = authenticate(token_ok)  # a refused token: HTTP 401 before the upgrade
    async with serve(handler, "127.0.0.1", port, process_request=auth, **serve_options(policy)):
        await asyncio.get_running_loop().create_future()  # serve until interrupted


if __name__ == "__main__":
    asyncio.run(main())

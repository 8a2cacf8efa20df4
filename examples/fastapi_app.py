"""A job endpoint on Starlette with the close policy: uvicorn examples.starlette_app:app"""

import hmac

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters.starlette import authenticated, guard

TOKEN = b"demo-token"
policy = Policy()


def token_ok(websocket: WebSocket) -> bool:
    token = websocket.query_params.get("token", "")
    return hmac.compare_digest(token.encode(), TOKEN)  # exact, in constant time


@authenticated(token_ok)  # a refused token: HTTP 401 before the upgrade
async def jobs(websocket: WebSocket) -> None:
    async with guard(websocket, policy) as conn:  # accepts; 1000 when done, 1011 on error
        async for message in conn:  # only valid messages: bad ones close 1002
            if message["type"] == "cancel":
                await conn.close(Outcome.CANCELLED)  # 1001
            else:
                await conn.send({"type": "pong"})


app = Starlette(routes=[WebSocketRoute("/jobs/{job_id}", jobs)])

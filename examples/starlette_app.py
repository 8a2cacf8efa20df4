"""A job endpoint on Starlette with the close policy (tested in tests/test_examples.py).

Run: uvicorn examples.starlette_app:app --ws-max-size 1048576
"""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters.starlette import authenticated, guard

policy = Policy()


@authenticated(lambda ws: ws.query_params.get("token") == "demo-token")  # else HTTP 401
async def jobs(websocket: WebSocket) -> None:
    async with guard(websocket, policy) as conn:  # accepts; 1000 when done, 1011 on error
        async for message in conn:  # only valid messages: bad ones close 1002
            if message["type"] == "cancel":
                await conn.close(Outcome.CANCELLED)  # 1001
            else:
                await conn.send({"type": "pong"})


app = Starlette(routes=[WebSocketRoute("/jobs/{job_id}", jobs)])

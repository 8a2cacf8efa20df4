"""The test apps every stack serves: one Starlette app (for the ASGI servers), one
`websockets` server and one aiohttp app, answering the same job protocol
(tests/job_protocol.py).

Run as real server processes by tests/adapters/stacks.py:

    uvicorn tests.adapters.apps:app            granian --interface asgi tests.adapters.apps:app
    hypercorn tests.adapters.apps:app          daphne tests.adapters.apps:app
    python -m tests.adapters.apps PORT         (the websockets server)
    python -m aiohttp.web -H 127.0.0.1 -P PORT tests.adapters.apps:aiohttp_app

Paths: ``/jobs?token=demo-token`` (the job protocol, behind ``authenticate``) and
``/stats`` (a JSON dump of what the push loops and jobs saw, of every ``Closed`` the app
saw and of every CloseEvent, for tests to read). The drain window comes from
``WS_TEST_DRAIN_WINDOW`` (seconds, default 1.0); ``WS_TEST_PROFILE=private`` selects the
private-code profile.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from fastapi import Depends, FastAPI
from starlette.websockets import WebSocket
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from tests import job_protocol
from ws_close_policy import CloseEvent, InboundPolicy, OutboundPolicy, Policy, Profile, Violation
from ws_close_policy.adapters import Closed, Connections, PolicyConnection
from ws_close_policy.adapters import aiohttp as aiohttp_adapter
from ws_close_policy.adapters import starlette as starlette_adapter
from ws_close_policy.adapters import websockets as websockets_adapter
from ws_close_policy.policy import server_max_size

TOKEN = b"demo-token"

# For servers that send only 1000 and 3000-4999 (daphne): every other code 1xxx moved to
# 4xxx, as docs/adapters.md shows. Chosen with WS_TEST_PROFILE=private.
base = Profile.ACTIONABLE
PRIVATE = base.derive(
    "private",
    violations={v: 3000 + base.violations[v].code for v in Violation},
    outcomes={o: 3000 + r.code for o, r in base.outcomes.items() if r.code != 1000},
    client_actions={3000 + code: action for code, action in base.client_actions.items()},
)
POLICY = Policy(
    InboundPolicy(max_bytes=64 * 1024),
    OutboundPolicy(max_bytes=job_protocol.OUTBOUND_LIMIT),
    PRIVATE if os.environ.get("WS_TEST_PROFILE") == "private" else base,
)
DRAIN_WINDOW = float(os.environ.get("WS_TEST_DRAIN_WINDOW", "1.0"))
#: The message limit to give each server (the policy's backstop).
SERVER_MAX_SIZE = server_max_size(POLICY)

# This process's connections and what its push loops saw (test code: module state is fine).
connections = Connections(POLICY, drain_window=DRAIN_WINDOW)
stats: dict[str, Any] = {"pushes": [], "jobs": [], "closed": [], "events": []}


def _fields(event: CloseEvent) -> dict[str, Any]:
    return {
        "code": event.code,
        "label": event.label,
        "reason": event.reason,
        "closed_by": event.closed_by,
        "inferred": event.inferred,
        "violation": event.violation,
        "outcome": event.outcome,
    }


def record(event: CloseEvent) -> None:
    """The guard's observer: every CloseEvent, for the tests to read from /stats."""
    stats["events"].append(_fields(event))


async def serve_job(conn: PolicyConnection) -> None:
    """The job protocol; a ``Closed`` the app sees is recorded (it must carry the event)."""
    try:
        await job_protocol.serve_job(conn, stats)
    except Closed as closed:
        stats["closed"].append({**_fields(closed.event), "same": closed.event is conn.close_event})
        raise


def stats_now(open_now: int, state: bool) -> str:
    return json.dumps({**stats, "open": open_now, "state": state})


def _token_ok(token: str) -> bool:
    return hmac.compare_digest(token.encode(), TOKEN)


# --- the ASGI app (FastAPI on Starlette) -----------------------------------------------------


def _starlette_token_ok(websocket: WebSocket) -> bool:
    return _token_ok(websocket.query_params.get("token", ""))


app = FastAPI(lifespan=starlette_adapter.lifespan(connections))


@app.websocket(
    "/jobs",
    dependencies=[Depends(starlette_adapter.authenticate(_starlette_token_ok, policy=POLICY))],
)
async def jobs(websocket: WebSocket) -> None:
    async with starlette_adapter.guard(
        websocket, POLICY, connections=connections, observer=record
    ) as conn:
        await serve_job(conn)


@app.websocket("/stats")
async def show_stats(websocket: WebSocket) -> None:
    await websocket.accept()
    # The lifespan's state holds this app's Connections (where the server runs lifespans).
    in_state = getattr(websocket.state, "connections", None)
    open_now = len(connections) if in_state is None else len(in_state)
    await websocket.send_text(stats_now(open_now, in_state is not None))
    await websocket.close()


@app.websocket("/drain")
async def drain_now(websocket: WebSocket) -> None:
    """Drain this process's connections (for servers that give the app no shutdown hook:
    daphne), then say how many it closed."""
    await websocket.accept()
    await websocket.send_text(json.dumps({"drained": await connections.drain()}))
    await websocket.close()


# --- the websockets server -------------------------------------------------------------------


def _websockets_token_ok(request: Request) -> bool:
    query = parse_qs(urlsplit(request.path).query)
    return _token_ok(query.get("token", [""])[0])


async def handler(ws: ServerConnection) -> None:
    assert ws.request is not None
    if urlsplit(ws.request.path).path == "/stats":
        await ws.send(stats_now(len(connections), False))
        return
    async with websockets_adapter.guard(
        ws, POLICY, connections=connections, observer=record
    ) as conn:
        await serve_job(conn)


def _check(request: Request) -> bool:
    return urlsplit(request.path).path == "/stats" or _websockets_token_ok(request)


async def main(port: int) -> None:
    hook = websockets_adapter.authenticate(_check)
    options = websockets_adapter.serve_options(POLICY)
    async with serve(handler, "127.0.0.1", port, process_request=hook, **options):
        print("ready", flush=True)
        await websockets_adapter.drain_on_signal(connections)


# --- the aiohttp app -------------------------------------------------------------------------


def _aiohttp_token_ok(request: web.Request) -> bool:
    return _token_ok(request.query.get("token", ""))


@aiohttp_adapter.authenticate(_aiohttp_token_ok)
async def aiohttp_jobs(request: web.Request) -> web.StreamResponse:
    ws = aiohttp_adapter.websocket(POLICY)
    async with aiohttp_adapter.guard(
        ws, request, POLICY, connections=connections, observer=record
    ) as conn:
        await serve_job(conn)
    return ws


async def aiohttp_stats(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str(stats_now(len(connections), False))
    await ws.close()
    return ws


def aiohttp_app(argv: list[str]) -> web.Application:
    """For ``python -m aiohttp.web ... tests.adapters.apps:aiohttp_app``."""
    application = web.Application()
    application.router.add_get("/jobs", aiohttp_jobs)
    application.router.add_get("/stats", aiohttp_stats)
    aiohttp_adapter.drain_on_shutdown(application, connections)
    return application


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

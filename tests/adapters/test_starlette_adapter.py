"""The Starlette adapter on real ASGI servers: every cell of the matrix matches the policy."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests import job_protocol
from tests.asgi_servers import SERVERS, asgi_server
from tests.wire import Seen, exchange, run
from ws_close_policy import InboundPolicy, OutboundPolicy, Policy, Profile
from ws_close_policy.adapters import starlette as adapter

OUTBOUND_LIMIT = job_protocol.OUTBOUND_LIMIT
TOKEN = "demo-token"
POLICY = Policy(
    InboundPolicy(max_bytes=64 * 1024),
    OutboundPolicy(max_bytes=OUTBOUND_LIMIT, warn_bytes=OUTBOUND_LIMIT // 2),
)


def token_ok(websocket: WebSocket) -> bool:
    return websocket.query_params.get("token") == TOKEN


async def serve_job(websocket: WebSocket, policy: Policy = POLICY, **guard_kwargs: Any) -> None:
    async with adapter.guard(websocket, policy, **guard_kwargs) as conn:
        await job_protocol.serve_job(conn)


@adapter.authenticated(token_ok, realm="jobs")
async def jobs(websocket: WebSocket) -> None:
    await serve_job(websocket)


async def limited(websocket: WebSocket) -> None:
    await serve_job(websocket, max_connections=1)


@adapter.admitted(1, retry_after=7)
async def admission(websocket: WebSocket) -> None:
    await serve_job(websocket)


async def strict(websocket: WebSocket) -> None:
    await serve_job(websocket, Policy(profile=Profile.RFC_STRICT))


app = Starlette(
    routes=[
        WebSocketRoute("/jobs", jobs),
        WebSocketRoute("/limited", limited),
        WebSocketRoute("/admission", admission),
        WebSocketRoute("/strict", strict),
    ]
)

JOBS = f"/jobs?token={TOKEN}"

# (what the client sends, the close it must see)
SCENARIOS: dict[str, tuple[list[str | bytes], int, str]] = {
    "malformed JSON": (['{"invalid": "json"'], 1002, "Invalid JSON"),
    "null": (["null"], 1002, "Message must be object"),
    "empty object": (["{}"], 1002, 'Missing required "type" field'),
    "type 123": (['{"type": 123}'], 1002, 'Missing required "type" field'),
    "not an object": (['"not an object"'], 1002, "Message must be object"),
    "binary": ([b'{"type": "ping"}'], 1003, "Binary messages not supported"),
    "inbound over the limit": (['{"type":"ping","p":"' + "x" * 70_000 + '"}'], 1009, ""),
    "outbound over the limit": (['{"type": "big"}'], 1009, "Message too large"),
    "completion": (['{"type": "complete"}'], 1000, "Completed"),
    "cancellation": (['{"type": "ping"}', '{"type": "cancel"}'], 1001, "Cancelled"),
    "handler exception": (['{"type": "crash"}'], 1011, "Internal error"),
    "300-byte reason": (['{"type": "long_reason"}'], 1001, "é" * 61),
    "refresh_token, bad token": (
        ['{"type": "refresh_token", "token": "bad"}'],
        1008,
        "Authentication required",
    ),
}


async def _seen(kind: str, path: str, *send: str | bytes) -> Seen:
    async with asgi_server(app, kind, max_size=POLICY.inbound.max_bytes * 4) as uri:
        return await exchange(uri + path, *send)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("kind", SERVERS)
def test_wire_matrix(kind: str, scenario: str) -> None:
    send, code, reason = SCENARIOS[scenario]
    seen = run(_seen(kind, JOBS, *send))
    assert seen.code == code, f"{kind} / {scenario}: saw {seen.code} {seen.reason!r}"
    if reason:
        assert seen.reason == reason
    if scenario == "inbound over the limit":
        assert seen.reason == "Message too large"


@pytest.mark.parametrize("kind", SERVERS)
def test_rfc_strict_profile_on_the_wire(kind: str) -> None:
    seen = run(_seen(kind, "/strict", "null"))
    assert (seen.code, seen.reason) == (1008, "Message must be object")


@pytest.mark.parametrize("kind", SERVERS)
def test_bad_token_before_upgrade_is_http_401(kind: str) -> None:
    seen = run(_seen(kind, "/jobs?token=wrong"))
    assert seen.status == 401
    assert seen.headers["www-authenticate"] == 'Bearer realm="jobs"'
    assert seen.code is None


async def _hold(uri: str, release: asyncio.Event) -> Seen:
    from websockets.asyncio.client import connect

    async with connect(uri) as ws:
        await release.wait()
        await ws.send('{"type": "complete"}')
        await ws.wait_closed()
        assert ws.protocol.close_rcvd is not None
        return Seen(code=ws.protocol.close_rcvd.code)


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("kind", SERVERS)
def test_overload_1013_and_503(kind: str) -> None:
    async def scenario() -> tuple[Seen, Seen, Seen]:
        async with asgi_server(app, kind) as uri:
            release = asyncio.Event()
            first = asyncio.create_task(_hold(uri + "/limited", release))
            await _until(lambda: len(adapter.registry) == 1)
            overloaded = await exchange(uri + "/limited")
            refused = await exchange(uri + "/admission")
            release.set()
            await first
            return overloaded, refused, await exchange(uri + "/admission", '{"type": "complete"}')

    overloaded, refused, after = run(scenario())
    assert (overloaded.code, overloaded.reason) == (1013, "Try again later")
    assert refused.status == 503
    assert refused.headers["retry-after"] == "7"
    assert after.code == 1000


@pytest.mark.parametrize("kind", SERVERS)
def test_drain_closes_every_client_1012(kind: str) -> None:
    async def scenario() -> tuple[list[Seen], int]:
        async with asgi_server(app, kind) as uri:
            clients = [asyncio.create_task(exchange(uri + JOBS)) for _ in range(4)]
            await _until(lambda: len(adapter.registry) == 4)
            closed = await adapter.drain(window=0.3)
            return list(await asyncio.gather(*clients)), closed

    seen, closed = run(scenario())
    assert closed == 4
    assert [(s.code, s.reason) for s in seen] == [(1012, "Service restarting")] * 4


@pytest.mark.parametrize("kind", SERVERS)
def test_client_leaving_first_is_recorded_and_sends_do_not_raise(kind: str) -> None:
    events: list[Any] = []
    sends: list[bool] = []

    async def endpoint(websocket: WebSocket) -> None:
        async with adapter.guard(websocket, observer=events.append) as conn:
            assert await conn.receive() is None  # the client closed
            sends.append(await conn.send({"type": "late"}))

    local_app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def scenario() -> None:
        from websockets.asyncio.client import connect

        async with asgi_server(local_app, kind) as uri:
            async with connect(uri + "/") as ws:
                await ws.close(4001, "bye")
            await _until(lambda: bool(events) and bool(sends))

    run(scenario())
    assert sends == [False]
    assert len(events) == 1
    if kind == "hypercorn":
        # hypercorn 0.18 reports every client close to the app as 1006 (measured): the
        # peer's code never reaches the app, so the event can only say "transport".
        assert (events[0].code, events[0].closed_by) == (1006, "transport")
    else:
        assert (events[0].code, events[0].closed_by) == (4001, "peer")


# --- Starlette's TestClient: in addition to the real servers, never instead ----------------


def _testclient_close(client: TestClient, send: list[str | bytes]) -> WebSocketDisconnect:
    with client.websocket_connect(JOBS) as ws:
        for message in send:
            if isinstance(message, bytes):
                ws.send_bytes(message)
            else:
                ws.send_text(message)
        while True:
            try:
                ws.receive_text()
            except WebSocketDisconnect as exc:
                return exc


def test_testclient_scenarios() -> None:
    client = TestClient(app)
    for scenario, (send, code, reason) in SCENARIOS.items():
        if scenario in ("inbound over the limit", "handler exception"):
            continue  # no transport limit in the TestClient; the exception: see below
        closed = _testclient_close(client, send)
        assert closed.code == code, scenario
        if reason:
            assert closed.reason == reason, scenario


def test_testclient_handler_exception_propagates() -> None:
    # The TestClient re-raises the app's exception instead of delivering the 1011 close the
    # adapter sent first: one of the things it hides. test_wire_matrix shows the 1011.
    client = TestClient(app)
    with pytest.raises(RuntimeError, match="hunter2"):
        _testclient_close(client, ['{"type": "crash"}'])


def test_testclient_refusal_before_upgrade() -> None:
    from starlette.testclient import WebSocketDenialResponse

    client = TestClient(app)
    with pytest.raises(WebSocketDenialResponse) as exc, client.websocket_connect("/jobs"):
        pass
    assert exc.value.status_code == 401
    assert exc.value.headers["www-authenticate"] == 'Bearer realm="jobs"'


def test_fastapi_app() -> None:
    from fastapi import FastAPI

    api = FastAPI()

    @api.websocket("/jobs/{job_id}")
    @adapter.authenticated(token_ok)
    async def job(websocket: WebSocket, job_id: str) -> None:
        async with adapter.guard(websocket) as conn:
            async for message in conn:
                await conn.send({"type": "echo", "job": job_id, "got": message["type"]})

    async def scenario() -> tuple[Seen, Seen]:
        async with asgi_server(api, "uvicorn-websockets-sansio") as uri:
            ok = await exchange(f"{uri}/jobs/7?token={TOKEN}", '{"type": "ping"}', "{bad")
            refused = await exchange(f"{uri}/jobs/7")
            return ok, refused

    ok, refused = run(scenario())
    assert json.loads(ok.received[0]) == {"type": "echo", "job": "7", "got": "ping"}
    assert (ok.code, ok.reason) == (1002, "Invalid JSON")
    assert refused.status == 401


def test_reject_fallbacks_without_the_denial_extension() -> None:
    from ws_close_policy import Reject

    async def endpoint(websocket: WebSocket) -> None:
        websocket.scope["extensions"] = {}  # as on a server without the extension
        mode = websocket.query_params["mode"]
        await adapter.reject(websocket, Reject.unauthorized(), fallback=mode)  # type: ignore[arg-type]

    local_app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def scenario() -> tuple[Seen, Seen]:
        async with asgi_server(local_app, "uvicorn-websockets-sansio") as uri:
            return await exchange(uri + "/?mode=accept_close"), await exchange(uri + "/?mode=close")

    accept_close, close = run(scenario())
    assert (accept_close.code, accept_close.reason) == (1008, "Authentication required")
    assert close.status == 403


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        adapter.admitted(0)
    assert adapter.server_max_size(POLICY) == 64 * 1024

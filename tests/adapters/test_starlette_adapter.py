"""The Starlette adapter in process, on real ASGI servers (uvicorn with both stacks,
hypercorn): the app's Connections, FastAPI dependencies, refusal fallbacks. Starlette's
TestClient is used in addition, never instead."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import MutableMapping
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import connect

from tests import job_protocol
from tests.asgi_servers import SERVERS, asgi_server
from tests.wire import Seen, exchange, run
from ws_close_policy import CloseEvent, InboundPolicy, OutboundPolicy, Outcome, Policy, Reject
from ws_close_policy.adapters import Closed, Connections, _connection
from ws_close_policy.adapters import starlette as adapter
from ws_close_policy.policy import server_max_size

TOKEN = b"demo-token"
POLICY = Policy(
    InboundPolicy(max_bytes=64 * 1024),
    OutboundPolicy(max_bytes=job_protocol.OUTBOUND_LIMIT),
)


def token_ok(websocket: WebSocket) -> bool:
    return hmac.compare_digest(websocket.query_params.get("token", "").encode(), TOKEN)


def make_app(connections: Connections) -> Starlette:
    async def serve_job(websocket: WebSocket) -> None:
        async with adapter.guard(websocket, POLICY, connections=connections) as conn:
            await job_protocol.serve_job(conn)

    async def jobs(websocket: WebSocket) -> None:
        await adapter.authenticate(token_ok, realm="jobs")(websocket)  # plain Starlette
        await serve_job(websocket)

    async def admission(websocket: WebSocket) -> None:
        await adapter.admit(connections, retry_after=7)(websocket)
        await serve_job(websocket)

    return Starlette(
        routes=[
            WebSocketRoute("/jobs", jobs),
            WebSocketRoute("/open", serve_job),
            WebSocketRoute("/admission", admission),
        ]
    )


JOBS = "/jobs?token=demo-token"


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
    connections = Connections(max_open=1)

    async def scenario() -> tuple[Seen, Seen, Seen]:
        async with asgi_server(make_app(connections), kind) as uri:
            release = asyncio.Event()
            first = asyncio.create_task(_hold(uri + "/open", release))
            await _until(lambda: len(connections) == 1)
            overloaded = await exchange(uri + "/open")
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
    connections = Connections()

    async def scenario() -> tuple[list[Seen], int]:
        async with asgi_server(make_app(connections), kind) as uri:
            clients = [asyncio.create_task(exchange(uri + JOBS)) for _ in range(4)]
            await _until(lambda: len(connections) == 4)
            closed = await connections.drain(window=0.3)
            return list(await asyncio.gather(*clients)), closed

    seen, closed = run(scenario())
    assert closed == 4
    assert [(s.code, s.reason) for s in seen] == [(1012, "Service restarting")] * 4


@pytest.mark.parametrize("kind", SERVERS)
def test_client_leaving_first_is_recorded_and_the_send_raises(kind: str) -> None:
    events: list[CloseEvent] = []
    raised: list[BaseException] = []

    async def endpoint(websocket: WebSocket) -> None:
        async with adapter.guard(websocket, observer=events.append) as conn:
            assert await conn.receive() is None  # the client closed
            try:
                await conn.send({"type": "late"})
            except Closed as exc:
                raised.append(exc)
                raise

    local_app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def scenario() -> None:
        from websockets.asyncio.client import connect

        async with asgi_server(local_app, kind) as uri:
            async with connect(uri + "/") as ws:
                await ws.close(4001, "bye")
            await _until(lambda: bool(events))

    run(scenario())
    assert len(raised) == 1
    assert len(events) == 1
    if kind == "hypercorn":
        # hypercorn 0.18 reports every client close to the app as 1006 (measured): the
        # peer's code never reaches the app, so the event can only say "transport".
        assert (events[0].code, events[0].closed_by) == (1006, "transport")
    else:
        assert (events[0].code, events[0].closed_by) == (4001, "peer")


# --- FastAPI: refusals as dependencies ------------------------------------------------------


def fastapi_app(calls: list[str], connections: Connections | None = None) -> FastAPI:
    api = FastAPI()

    def own_dependency() -> str:
        calls.append("own")
        return "db session"

    auth = adapter.authenticate(token_ok, realm="jobs")
    origins = adapter.check_origin(["https://app.example", re.compile(r"https://.*\.test"), None])

    @api.websocket("/jobs/{job_id}", dependencies=[Depends(auth), Depends(origins)])
    async def job(websocket: WebSocket, job_id: str, db: str = Depends(own_dependency)) -> None:
        calls.append("endpoint")
        async with adapter.guard(websocket, connections=connections) as conn:
            async for message in conn:
                await conn.send({"type": "echo", "job": job_id, "got": message["type"], "db": db})

    return api


def test_fastapi_dependency_refuses_before_your_own_dependencies() -> None:
    calls: list[str] = []

    async def scenario() -> tuple[Seen, Seen]:
        async with asgi_server(fastapi_app(calls), "hypercorn") as uri:
            refused = await exchange(f"{uri}/jobs/7?token=demo-token-x")
            calls_after_refusal = list(calls)
            ok = await exchange(f"{uri}/jobs/7?token=demo-token", '{"type": "ping"}', "{bad")
            assert calls_after_refusal == []  # the check ran first: nothing of yours ran
            return refused, ok

    refused, ok = run(scenario())
    assert refused.status == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="jobs"'
    assert calls == ["own", "endpoint"]
    assert json.loads(ok.received[0]) == {
        "type": "echo",
        "job": "7",
        "got": "ping",
        "db": "db session",
    }
    assert (ok.code, ok.reason) == (1002, "Invalid JSON")


@pytest.mark.parametrize("kind", SERVERS)
def test_origin_allow_list(kind: str) -> None:
    async def scenario() -> list[Seen]:
        async with asgi_server(fastapi_app([]), kind) as uri:
            url = f"{uri}/jobs/1?token=demo-token"
            return [
                await exchange(url, "{bad", origin="https://app.example"),
                await exchange(url, "{bad", origin="https://a.b.test"),
                await exchange(url, "{bad"),  # no Origin: a non-browser client
                await exchange(url, origin="https://evil.example"),
                await exchange(url, origin="https://app.example.evil"),
            ]

    allowed, pattern, none, evil, suffix = run(scenario())
    assert [s.code for s in (allowed, pattern, none)] == [1002, 1002, 1002]  # accepted
    assert evil.status == 403
    assert suffix.status == 403


def test_no_error_is_logged_for_a_refused_token(caplog: pytest.LogCaptureFixture) -> None:
    # uvicorn's default stack logs "ASGI callable returned without completing handshake."
    # after any HTTP refusal, with or without this library: see docs/adapters.md.
    caplog.set_level(logging.INFO)

    async def scenario() -> Seen:
        async with asgi_server(fastapi_app([]), "uvicorn-wsproto") as uri:
            return await exchange(f"{uri}/jobs/1?token=wrong")

    assert run(scenario()).status == 401
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


@pytest.mark.parametrize("kind", SERVERS)
def test_for_browsers_refuses_with_a_close_code_every_server(kind: str) -> None:
    # Even where the server could send HTTP 401 (the denial extension), a browser would see
    # only 1006: for_browsers accepts and closes with the profile's code and reason.
    auth = adapter.authenticate(token_ok, for_browsers=True)

    async def endpoint(websocket: WebSocket) -> None:
        await auth(websocket)
        async with adapter.guard(websocket) as conn:
            await conn.receive()

    local_app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def scenario() -> Seen:
        async with asgi_server(local_app, kind) as uri:
            return await exchange(uri + "/?token=wrong")

    seen = run(scenario())
    assert (seen.status, seen.code, seen.reason) == (None, 1008, "Authentication required")


def test_for_browsers_says_when_the_origin_was_refused() -> None:
    check = adapter.check_origin(["https://app.example"], for_browsers=True)

    async def endpoint(websocket: WebSocket) -> None:
        await check(websocket)
        await websocket.accept()
        await websocket.close()

    local_app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def scenario() -> Seen:
        async with asgi_server(local_app, "uvicorn-websockets-sansio") as uri:
            return await exchange(uri + "/", origin="https://evil.example")

    seen = run(scenario())
    assert (seen.status, seen.code, seen.reason) == (None, 1008, "Origin not allowed")


@pytest.mark.parametrize("fallback", ["accept_close", "close"])
def test_refusal_fallbacks_without_the_denial_extension(fallback: str) -> None:
    # As on a server without the extension (daphne): no HTTP refusal after routing.
    auth = adapter.authenticate(token_ok, fallback=fallback)  # type: ignore[arg-type]

    async def endpoint(websocket: WebSocket) -> None:
        websocket.scope["extensions"] = {}
        await auth(websocket)
        await websocket.accept()
        await websocket.close()

    local_app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def scenario() -> Seen:
        async with asgi_server(local_app, "uvicorn-websockets-sansio") as uri:
            return await exchange(uri + "/?token=wrong")

    seen = run(scenario())
    if fallback == "accept_close":
        assert (seen.code, seen.reason) == (1008, "Authentication required")  # browsers see it
    else:
        assert seen.status == 403  # closed before accepting: the status is lost


def test_admit_while_draining_falls_back_to_1012() -> None:
    connections = Connections()

    async def endpoint(websocket: WebSocket) -> None:
        websocket.scope["extensions"] = {}
        await adapter.admit(connections)(websocket)

    local_app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def scenario() -> Seen:
        await connections.drain(window=0)
        async with asgi_server(local_app, "uvicorn-websockets-sansio") as uri:
            return await exchange(uri + "/")

    assert (run(scenario()).code) == 1012


def test_refuse_and_argument_validation() -> None:
    with pytest.raises(ValueError, match="fallback"):
        adapter.authenticate(token_ok, fallback="maybe")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="origins"):
        adapter.check_origin([3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="connections"):
        adapter.admit(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_open"):
        Connections(max_open=0)
    with pytest.raises(TypeError, match="websocket"):
        adapter.guard(object())  # type: ignore[arg-type]
    assert server_max_size(POLICY) == 128 * 1024


def test_refuse_after_accept_is_a_caller_error() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        with pytest.raises(ValueError, match="before the WebSocket is accepted"):
            await adapter.refuse(websocket, Reject.forbidden())
        await websocket.close()

    client = TestClient(Starlette(routes=[WebSocketRoute("/", endpoint)]))
    with client.websocket_connect("/") as ws, pytest.raises(WebSocketDisconnect):
        ws.receive_text()


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
    client = TestClient(make_app(Connections()))
    scenarios: dict[str, tuple[list[str | bytes], int, str]] = {
        "malformed JSON": (['{"invalid": "json"'], 1002, "Invalid JSON"),
        "binary": ([b'{"type": "ping"}'], 1003, "Binary messages not supported"),
        "completion": (['{"type": "complete"}'], 1000, "Completed"),
        "application code": (['{"type": "app_close"}'], 4004, "Job not found"),
    }
    for scenario, (send, code, reason) in scenarios.items():
        closed = _testclient_close(client, send)
        assert (closed.code, closed.reason) == (code, reason), scenario


def test_testclient_handler_exception_closes_1011_then_reaches_the_test() -> None:
    # guard closes with 1011, then lets the exception go on to the server: TestClient
    # re-raises it in the test, as it does for any exception an app lets escape.
    client = TestClient(make_app(Connections()))
    with pytest.raises(RuntimeError, match="hunter2"):
        _testclient_close(client, ['{"type": "crash"}'])


def test_testclient_refusal_before_upgrade() -> None:
    from starlette.testclient import WebSocketDenialResponse

    client = TestClient(make_app(Connections()))
    with pytest.raises(WebSocketDenialResponse) as exc, client.websocket_connect("/jobs"):
        pass
    assert exc.value.status_code == 401
    assert exc.value.headers["www-authenticate"] == 'Bearer realm="jobs"'


# --- a server that never completes a send ---------------------------------------------------


def test_a_close_the_server_never_completes_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # granian, shutting down, can leave a send pending for good: closing must still end.
    monkeypatch.setattr(_connection, "CLOSE_TIMEOUT", 0.2)
    stuck = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await stuck.wait()  # the client never says anything again
        return {"type": "websocket.disconnect", "code": 1006}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "websocket.close":
            await stuck.wait()  # never completes

    async def scenario() -> tuple[float, CloseEvent | None]:
        scope = {"type": "websocket", "path": "/", "headers": [], "query_string": b""}
        websocket = WebSocket(scope, receive, send)
        websocket.application_state = WebSocketState.CONNECTED
        started = asyncio.get_running_loop().time()
        async with adapter.guard(websocket) as conn:
            await conn.close(4004, "Job not found")
        return asyncio.get_running_loop().time() - started, conn.close_event

    elapsed, event = run(scenario(), timeout=5)
    assert elapsed < 1.0
    assert event is not None
    assert event.code == 4004


@pytest.mark.parametrize("kind", ["uvicorn-websockets-sansio", "uvicorn-wsproto"])
def test_a_servers_own_shutdown_close_is_recorded_as_the_servers(kind: str) -> None:
    # Without the lifespan's drain, uvicorn closes every connection itself with 1012 when
    # it shuts down; the event says so (closed_by="server"), not that the client left.
    events: list[CloseEvent] = []

    async def endpoint(websocket: WebSocket) -> None:
        async with adapter.guard(websocket, observer=events.append) as conn:
            await conn.receive()

    app = Starlette(routes=[WebSocketRoute("/", endpoint)])

    async def scenario() -> None:
        async with asgi_server(app, kind) as uri:
            client = await connect(uri + "/")
            await asyncio.sleep(0.2)
        await client.wait_closed()
        async with asyncio.timeout(5):
            while not events:
                await asyncio.sleep(0.01)

    run(scenario())
    (event,) = events
    assert (event.code, event.closed_by, event.outcome) == (1012, "server", Outcome.RESTARTING)

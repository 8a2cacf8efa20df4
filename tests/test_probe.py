"""``ws-close-policy probe`` against servers that do not use the library: what it says each
one did instead, the fix, the early stop on a refused handshake, --header, --json, and a
bound on the time it takes. (tests/test_demo.py probes the reference server.)"""

from __future__ import annotations

import asyncio
import http
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import pytest
from conformance import bare_echo
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tests.asgi_servers import asgi_server
from ws_close_policy import InboundPolicy, Policy
from ws_close_policy.adapters.websockets import guard, serve_options
from ws_close_policy.cli import main

POLICY = Policy(InboundPolicy(max_bytes=1000))  # the probe's --max-bytes

Serving = Callable[[], AbstractAsyncContextManager[str]]


@contextmanager
def serving(start: Serving) -> Iterator[str]:
    """Run ``start()`` (an async context manager yielding a ws:// URI) in a thread of its
    own, so that the CLI's own event loop can talk to it."""
    ready: list[str] = []
    stop: list[asyncio.Event] = []

    async def serve_until_stopped() -> None:
        stop.append(asyncio.Event())
        async with start() as uri:
            ready.append(uri)
            await stop[0].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve_until_stopped(),))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not ready and time.monotonic() < deadline:
            time.sleep(0.01)
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        loop.close()


def websockets_server(
    handler: Callable[[ServerConnection], Any],
    process_request: Callable[[ServerConnection, Request], Any] | None = None,
    options: dict[str, Any] | None = None,
) -> Serving:
    @asynccontextmanager
    async def start() -> AsyncIterator[str]:
        extra = options or {}
        async with serve(
            handler, "127.0.0.1", 0, process_request=process_request, **extra
        ) as server:
            yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    return start


def _probe(uri: str, *options: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["probe", uri, "--timeout", "0.5", "--max-bytes", "1000", *options])
    return status, capsys.readouterr().out


async def _closes_1000(ws: ServerConnection) -> None:
    await ws.recv()
    await ws.close(1000)


async def _closes_1002_bad(ws: ServerConnection) -> None:
    await ws.recv()
    await ws.close(1002, "bad")


async def _drops(ws: ServerConnection) -> None:
    await ws.recv()
    ws.transport.abort()


def test_a_bare_starlette_echo_server_echoes_and_keeps_the_connection_open(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serving(lambda: asgi_server(bare_echo.app, "uvicorn-websockets-sansio")) as uri:
        status, out = _probe(uri + "/", capsys=capsys)
    assert status == 1
    assert out.count("echoed the message and kept the connection open (waited 0.5 s)") == 7
    assert "fix: close with 1002 'Invalid JSON' on text that is not JSON" in out
    assert "0 passed, 7 failed" in out


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (_closes_1000, "MISMATCH  expected 1002 'Invalid JSON'; closed with 1000 (normal closure)"),
        (
            _closes_1002_bad,
            "MISMATCH  expected 1002 'Invalid JSON'; closed with 1002 'bad': the code, "
            "another reason",
        ),
        (
            _drops,
            "MISMATCH  expected 1002 'Invalid JSON'; dropped the connection without a close "
            "frame (the client sees 1006)",
        ),
    ],
    ids=["other code", "other reason", "drop"],
)
def test_what_a_bare_websockets_server_did_instead(
    handler: Callable[[ServerConnection], Any],
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serving(websockets_server(handler)) as uri:
        status, out = _probe(uri, capsys=capsys)
    assert status == 1
    assert expected in out
    assert "0 passed, 7 failed" in out


def _unauthorized() -> Response:
    headers = Headers({"WWW-Authenticate": 'Bearer realm="jobs"', "Content-Length": "0"})
    return Response(http.HTTPStatus.UNAUTHORIZED, "Unauthorized", headers, b"")


def _requires_bearer(connection: ServerConnection, request: Request) -> Response | None:
    return None if request.headers.get("Authorization") == "Bearer s3cret" else _unauthorized()


def test_a_refused_handshake_stops_at_once_with_one_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serving(websockets_server(_closes_1000, _requires_bearer)) as uri:
        started = time.monotonic()
        with pytest.raises(SystemExit) as refused:
            main(["probe", uri])
        elapsed = time.monotonic() - started
        status, out = _probe(uri, "--header", "Authorization: Bearer s3cret", capsys=capsys)
    assert str(refused.value).endswith(
        'HTTP 401 (Bearer realm="jobs"): pass --token TOKEN or --header '
        "'Authorization: Bearer ...'"
    )
    assert elapsed < 3
    assert status == 1  # with the header it probed: the server closes 1000 on everything
    assert "closed with 1000" in out


def test_json_output_and_the_time_a_silent_server_costs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def silent(ws: ServerConnection) -> None:
        async for _ in ws:
            pass

    with serving(websockets_server(silent)) as uri:
        started = time.monotonic()
        status = main(["probe", uri, "--timeout", "1", "--max-bytes", "1000", "--json"])
        elapsed = time.monotonic() - started
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert elapsed < 5  # the seven inputs run at once: about one timeout, not seven
    assert (report["passed"], report["failed"]) == (0, 7)
    first = report["results"][0]
    assert first["expected"] == {"code": 1002, "reason": "Invalid JSON"}
    assert first["seen"]["kept_open"] is True
    assert first["diagnosis"] == "ignored it: no answer and no close (waited 1 s)"
    assert first["fix"].startswith("close with 1002 'Invalid JSON'")


def test_bad_headers_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="--header must be 'NAME: VALUE'"):
        main(["probe", "ws://127.0.0.1:9/", "--header", "no colon"])
    with pytest.raises(SystemExit):
        main(["probe", "ws://127.0.0.1:9/", "--timeout", "-1"])
    assert "expected a positive number of seconds" in capsys.readouterr().err


def test_a_guarded_server_passes_and_the_probe_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def guarded(ws: ServerConnection) -> None:
        async with guard(ws, POLICY) as conn:
            async for _ in conn:
                pass

    start = websockets_server(guarded, options=serve_options(POLICY))
    with serving(start) as uri:
        status, out = _probe(uri, capsys=capsys)
    assert status == 0, out
    assert "7 passed, 0 failed" in out
    assert "fix:" not in out


def test_a_server_that_keeps_talking_costs_one_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    async def chatty(ws: ServerConnection) -> None:
        while True:  # pushes every 0.2 s and ignores what the client sends
            await ws.send('{"type": "tick"}')
            await asyncio.sleep(0.2)

    with serving(websockets_server(chatty)) as uri:
        started_at = time.monotonic()
        status, out = _probe(uri, "--timeout", "1", capsys=capsys)
        elapsed = time.monotonic() - started_at
    assert status == 1
    assert elapsed < 5
    assert "message(s)) and kept the connection open (waited 1 s)" in out


def _token_in_query(connection: ServerConnection, request: Request) -> Response | None:
    encoded = "token=ab%2Bc%2Fd%3D" in request.path  # 'ab+c/d=', encoded
    return None if encoded else _unauthorized()


def test_the_token_is_url_encoded_and_a_refusal_says_what_was_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serving(websockets_server(_closes_1000, _token_in_query)) as uri:
        _, out = _probe(uri, "--token", "ab+c/d=", capsys=capsys)
        assert "closed with 1000" in out  # the handshake got through
        with pytest.raises(SystemExit, match="refused the credentials given"):
            main(["probe", uri, "--token", "wrong"])
        assert main(["probe", uri, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["error"].startswith("HTTP 401")


def test_a_server_that_closes_before_reading_gets_no_fix_for_unread_inputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def closes_at_once(ws: ServerConnection) -> None:  # e.g. a token refused after
        await ws.close(1008, "Authentication required")  # the upgrade: nothing is read

    with serving(websockets_server(closes_at_once)) as uri:
        status, out = _probe(uri, capsys=capsys)
    assert status == 1
    assert out.count("NOT READ") == 7, out  # every input, the oversized one included
    assert "MISMATCH" not in out
    assert "fix:" not in out  # no fix for a check the server never ran
    assert "before reading it, as it closes a connection that sends nothing" in out
    assert "get past that close first" in out

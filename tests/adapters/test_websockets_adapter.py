"""The websockets adapter in process: what the wire matrix cannot see from outside
(events, logs, the app's Connections, serve_options), on a real server and client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from tests import job_protocol
from tests.wire import exchange, run
from ws_close_policy import CloseEvent, InboundPolicy, OutboundPolicy, Outcome, Policy, Reject
from ws_close_policy.adapters import CLOSE_TIMEOUT, Closed, Connections
from ws_close_policy.adapters import websockets as adapter
from ws_close_policy.lifecycle import Origins
from ws_close_policy.metrics import CloseCounter

OUTBOUND_LIMIT = job_protocol.OUTBOUND_LIMIT


def job_policy() -> Policy:
    return Policy(
        InboundPolicy(allowed_types={"ping", "cancel", "complete", "crash", "big", "app_close"}),
        OutboundPolicy(max_bytes=OUTBOUND_LIMIT, warn_bytes=OUTBOUND_LIMIT // 2),
    )


def job_handler(policy: Policy, events: list[CloseEvent] | None = None, **guard_kwargs: Any) -> Any:
    async def handler(ws: ServerConnection) -> None:
        observer = events.append if events is not None else None
        async with adapter.guard(ws, policy, observer=observer, **guard_kwargs) as conn:
            await job_protocol.serve_job(conn)

    return handler


@asynccontextmanager
async def server(handler: Any, policy: Policy, **kwargs: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **adapter.serve_options(policy, **kwargs)) as srv:
        port = srv.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_authenticate_accepts_async_checks_rejects_and_survives_errors() -> None:
    async def check(request: Request) -> bool | Reject:
        if "forbidden" in request.path:
            return Reject.forbidden()
        if "boom" in request.path:
            raise RuntimeError("broken check")
        return True

    async def scenario() -> list[int | None]:
        policy = job_policy()
        hook = adapter.authenticate(check)
        async with server(job_handler(policy), policy, process_request=hook) as uri:
            return [
                (await exchange(uri + "/forbidden")).status,
                (await exchange(uri + "/boom")).status,
                (await exchange(uri + "/fine", '{"type": "complete"}')).code,
            ]

    assert run(scenario()) == [403, 401, 1000]


async def _hold_then(uri: str, hold: asyncio.Event) -> Any:
    async with connect(uri) as ws:
        await hold.wait()
        await ws.send('{"type": "complete"}')
        await ws.wait_closed()


async def _second_while_first_open(uri: str, connections: Connections) -> Any:
    """What a second client gets while a first one holds the only connection slot."""
    hold = asyncio.Event()
    first = asyncio.create_task(_hold_then(uri, hold))
    await _until(lambda: len(connections) == 1)
    second = await exchange(uri)
    hold.set()
    await first
    return second


def test_overload_closes_1013_or_refuses_503() -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        policy = job_policy()
        limited = Connections(max_open=1)
        async with server(job_handler(policy, connections=limited), policy) as uri:
            overloaded = await _second_while_first_open(uri, limited)
        admitted = Connections(max_open=1)
        hook = adapter.admit(admitted, retry_after=7)
        handler = job_handler(policy, connections=admitted)
        async with server(handler, policy, process_request=hook) as uri:
            refused = await _second_while_first_open(uri, admitted)
            after = await exchange(uri, '{"type": "complete"}')
        return overloaded, refused, after

    overloaded, refused, after = run(scenario())
    assert (overloaded.code, overloaded.reason) == (1013, "Try again later")
    assert refused.status == 503
    assert refused.headers["retry-after"] == "7"
    assert after.code == 1000


def test_drain_closes_every_client_1012_and_then_refuses() -> None:
    async def scenario() -> tuple[list[Any], int, Any, Any]:
        policy = job_policy()
        connections = Connections()
        hook = adapter.admit(connections)
        handler = job_handler(policy, connections=connections)
        async with server(handler, policy, process_request=hook) as uri:
            clients = [asyncio.create_task(exchange(uri)) for _ in range(5)]
            await _until(lambda: len(connections) == 5)
            closed = await connections.drain(window=0.5)
            late_refused = await exchange(uri)  # admit: 503 while draining
        async with server(job_handler(policy, connections=connections), policy) as uri:
            late_closed = await exchange(uri)  # guard alone: accepted, closed 1012
        return await asyncio.gather(*clients), closed, late_refused, late_closed

    seen, closed, refused, late = run(scenario())
    assert closed == 5
    assert all((s.code, s.reason) == (1012, "Service restarting") for s in seen)
    assert refused.status == 503
    assert (late.code, late.reason) == (1012, "Service restarting")


def test_two_apps_share_nothing() -> None:
    async def scenario() -> tuple[int, int]:
        policy = job_policy()
        first, second = Connections(), Connections()
        async with (
            server(job_handler(policy, connections=first), policy) as uri_a,
            server(job_handler(policy, connections=second), policy) as uri_b,
        ):
            held = asyncio.create_task(exchange(uri_a))
            await _until(lambda: len(first) == 1)
            drained = await second.drain(window=0)  # the other app's drain
            assert len(first) == 1
            assert not first.draining
            await first.drain(window=0)
            await held
            _ = uri_b
            return drained, len(first)

    assert run(scenario()) == (0, 0)


def test_observer_gets_one_event_per_connection() -> None:
    events: list[CloseEvent] = []
    counter = CloseCounter()

    async def scenario() -> None:
        policy = job_policy()
        async with server(job_handler(policy, events), policy) as uri:
            await exchange(uri, "{bad")
            await exchange(uri, '{"type": "complete"}')
            await exchange(uri, '{"type": "app_close"}')
            async with connect(uri) as ws:
                await ws.close(4001, "client leaves")
            await _until(lambda: len(events) == 4)
        for event in events:
            counter(event)

    run(scenario())
    assert [e.code for e in events] == [1002, 1000, 4004, 4001]
    assert [e.closed_by for e in events] == ["local", "local", "local", "peer"]
    assert counter.counts["private"] == 2


def test_send_after_the_peer_left_raises_closed_and_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raised: list[Closed] = []
    events: list[CloseEvent] = []

    async def handler(ws: ServerConnection) -> None:
        async with adapter.guard(ws, observer=events.append) as conn:
            assert await conn.receive() is None  # the client closes
            try:
                await conn.send({"type": "late"})
            except Closed as gone:
                raised.append(gone)
                raise

    async def scenario() -> None:
        async with server(handler, Policy()) as uri:
            async with connect(uri) as ws:
                await ws.close(4001, "bye")
            await _until(lambda: bool(events))

    run(scenario())
    assert [(c.code, c.reason) for c in raised] == [(4001, "bye")]
    assert (events[0].code, events[0].closed_by) == (4001, "peer")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


SERVER_SCRIPT = Path(__file__).with_name("ws_memory_server.py")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for RSS")
def test_64_mib_inbound_message_does_not_grow_the_server() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        uri = f"ws://127.0.0.1:{port}"
        run(exchange(uri, "{not json"), timeout=10)  # warm up: imports, first handshake
        before = _rss_kib(proc.pid)
        seen = run(exchange(uri, "x" * (64 * 1024 * 1024), max_size=None), timeout=30)
        after = _rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert seen.code == 1009  # refused from the frame header (websockets' own reason)
    print(f"server RSS grew by {after - before} KiB")
    assert after - before < 8 * 1024, f"server grew by {after - before} KiB"


def test_just_over_the_limit_gets_the_policy_reason_far_over_the_servers() -> None:
    policy = job_policy()  # 1 MiB: websockets refuses from 2 MiB on

    async def scenario() -> tuple[Any, Any]:
        async with server(job_handler(policy), policy) as uri:
            over = '{"type":"ping","pad":"' + "x" * (1024 * 1024) + '"}'
            far = "x" * (3 * 1024 * 1024)
            return await exchange(uri, over), await exchange(uri, far, max_size=None)

    over, far = run(scenario(), timeout=30)
    assert (over.code, over.reason) == (1009, "Message too large")
    assert far.code == 1009
    assert "bytes" in far.reason  # websockets' own words: the backstop's, not the policy's


def test_serve_options_merge_with_yours() -> None:
    policy = Policy(InboundPolicy(max_bytes=4096))

    def limit(**yours: Any) -> Any:
        options = adapter.serve_options(policy, **yours)
        assert options.pop("close_timeout") == yours.get("close_timeout", CLOSE_TIMEOUT)
        return options

    assert limit() == {"max_size": 8192}
    assert limit(max_size=5000) == {"max_size": 5000}  # stricter
    assert limit(max_size=None) == {"max_size": 8192}
    assert limit(max_size=(6000, 5000)) == {"max_size": (6000, 5000)}
    assert limit(max_size=(None, 5000)) == {"max_size": (8192, 5000)}
    assert limit(close_timeout=2.0) == {"max_size": 8192}  # yours wins
    assert adapter.serve_options(policy, origins=["https://a.example"])["origins"] == [
        "https://a.example"
    ]
    assert "create_connection" not in adapter.serve_options(policy)  # nothing patched
    with pytest.raises(ValueError, match="message limit of 1000 bytes is below the policy's"):
        adapter.serve_options(policy, max_size=1000)
    # A fragment limit is a limit on single-frame messages too.
    with pytest.raises(ValueError, match="fragment limit of 1024 bytes is below the policy's"):
        adapter.serve_options(policy, max_size=(6000, 1024))
    with pytest.raises(ValueError, match="max_size must be an int, None or a"):
        adapter.serve_options(policy, max_size=(1, 2, 3))
    for wrong in ("1MB", True, 5000.0):
        with pytest.raises(TypeError, match="max_size must be an int"):
            adapter.serve_options(policy, max_size=wrong)


def test_argument_errors_name_the_argument_when_built() -> None:
    connections = Connections()
    with pytest.raises(TypeError, match="check must be callable, not NoneType"):
        adapter.authenticate(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="connections must be a Connections, not str"):
        adapter.admit("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hook must be callable, not int"):
        adapter.chain(adapter.admit(connections), 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="connection must be a websockets ServerConnection"):
        adapter.guard("str")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reject must be a Reject, not str"):
        adapter.to_response("x")  # type: ignore[arg-type]


def test_origins_are_checked_before_the_upgrade() -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        policy = job_policy()
        options = {"origins": ["https://app.example", None]}
        async with server(job_handler(policy), policy, **options) as uri:
            allowed = await exchange(uri, '{"type": "complete"}', origin="https://app.example")
            other = await exchange(uri, origin="https://evil.example")
            none = await exchange(uri, '{"type": "complete"}')
            return allowed, other, none

    allowed, other, none = run(scenario())
    assert allowed.code == 1000
    assert other.status == 403
    assert none.code == 1000


def test_a_browser_refused_by_origin_in_the_handler_reads_why() -> None:
    # docs/adapters.md: websockets checks Origin before the upgrade (HTTP 403, which a
    # browser cannot read); for browsers the handler closes with Origins.reason instead.
    allowed = Origins(["https://app.example"])

    async def handler(ws: ServerConnection) -> None:
        async with adapter.guard(ws, job_policy()) as conn:
            assert ws.request is not None
            if allowed.refusal(ws.request.headers.get("Origin")):
                await conn.close(Outcome.POLICY_VIOLATION, Origins.reason)

    async def scenario() -> Any:
        async with server(handler, job_policy()) as uri:
            return await exchange(uri, origin="https://evil.example")

    seen = run(scenario())
    assert (seen.code, seen.reason) == (1008, "Origin not allowed")


def test_logging_one_info_line_per_close_and_large_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(ws: ServerConnection) -> None:
        async with adapter.guard(ws, job_policy()) as conn:
            await conn.send({"type": "x", "pad": "y" * (OUTBOUND_LIMIT // 2 + 10)})

    async def scenario() -> Any:
        async with server(handler, job_policy()) as uri:
            return await exchange(uri)

    caplog.set_level("INFO", logger="ws_close_policy")
    seen = run(scenario())
    assert seen.code == 1000
    records = [r for r in caplog.records if r.name == "ws_close_policy"]
    closes = [r for r in records if r.levelname == "INFO" and " closed: " in r.message]
    warnings = [r for r in records if r.levelname == "WARNING"]
    assert len(closes) == 1
    assert "normal_closure by local" in closes[0].message
    assert len(warnings) == 1
    assert "large message" in warnings[0].message
    assert "yyyy" not in warnings[0].message


def test_application_close_code_from_the_handler() -> None:
    async def scenario() -> Any:
        policy = job_policy()
        async with server(job_handler(policy), policy) as uri:
            return await exchange(uri, '{"type": "app_close"}')

    seen = run(scenario())
    assert (seen.code, seen.reason) == (4004, "Job not found")
    assert json.dumps(seen.received) == "[]"


def test_close_argument_errors() -> None:
    async def handler(ws: ServerConnection) -> None:
        async with adapter.guard(ws) as conn:
            with pytest.raises(ValueError, match="application code"):
                await conn.close(1006)
            await conn.close(Outcome.COMPLETED)

    async def scenario() -> Any:
        async with server(handler, Policy()) as uri:
            return await exchange(uri)

    assert run(scenario()).code == 1000


async def _silent_client(uri: str) -> float:
    """A raw client that sends one invalid message and never answers the server's close:
    seconds from that message until the server drops the TCP connection."""
    host, port = uri.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")  # 101 Switching Protocols
    payload, mask = b"{not json", os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)  # one masked text frame
    sent = time.monotonic()
    async with asyncio.timeout(30):
        while await reader.read(4096):  # the close frame, then nothing: we never answer
            pass
    writer.close()
    return time.monotonic() - sent


def test_a_client_that_never_answers_the_close_is_dropped_after_close_timeout() -> None:
    async def scenario() -> float:
        policy = job_policy()
        async with server(job_handler(policy), policy) as uri:
            return await _silent_client(uri)

    dropped_after = run(scenario(), timeout=40)
    assert CLOSE_TIMEOUT - 0.5 < dropped_after < CLOSE_TIMEOUT + 2.5  # websockets' own: 10 s

"""The websockets adapter over real sockets on 127.0.0.1: what a plain client sees."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
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
from ws_close_policy import (
    CloseEvent,
    InboundPolicy,
    OutboundPolicy,
    Outcome,
    Policy,
    Profile,
    ReconnectAction,
    ReconnectPolicy,
    Reject,
)
from ws_close_policy.adapters import websockets as adapter
from ws_close_policy.metrics import CloseCounter

OUTBOUND_LIMIT = job_protocol.OUTBOUND_LIMIT
JOB_TYPES = {"ping", "cancel", "complete", "crash", "big", "refresh_token"}


def job_policy(profile: Profile = Profile.SEED) -> Policy:
    return Policy(
        InboundPolicy(
            allowed_types={"ping", "cancel", "complete", "crash", "big", "refresh_token"}
        ),
        OutboundPolicy(max_bytes=OUTBOUND_LIMIT, warn_bytes=OUTBOUND_LIMIT // 2),
        profile,
    )


def job_handler(policy: Policy, events: list[CloseEvent] | None = None, **guard_kwargs: Any) -> Any:
    async def handler(ws: ServerConnection) -> None:
        observer = events.append if events is not None else None
        async with adapter.guard(ws, policy, observer=observer, **guard_kwargs) as conn:
            await job_protocol.serve_job(conn)

    return handler


@asynccontextmanager
async def server(handler: Any, policy: Policy, **kwargs: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **adapter.serve_options(policy), **kwargs) as srv:
        port = srv.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def seen_for(*send: str | bytes, profile: Profile = Profile.SEED, **kw: Any) -> Any:
    policy = job_policy(profile)
    async with server(job_handler(policy), policy) as uri:
        return await exchange(uri, *send, **kw)


REVIEW_CASES = ['{"invalid": "json"', "null", "{}", '{"type": 123}', '"not an object"']
EXPECTED_REASONS = {
    '{"invalid": "json"': "Invalid JSON",
    "null": "Message must be object",
    "{}": 'Missing required "type" field',
    '{"type": 123}': 'Missing required "type" field',
    '"not an object"': "Message must be object",
}


@pytest.mark.parametrize("data", REVIEW_CASES)
def test_review_cases_close_1002(data: str) -> None:
    seen = run(seen_for(data))
    assert (seen.code, seen.reason) == (1002, EXPECTED_REASONS[data])


@pytest.mark.parametrize("data", REVIEW_CASES)
def test_review_cases_close_1008_under_rfc_strict(data: str) -> None:
    seen = run(seen_for(data, profile=Profile.RFC_STRICT))
    assert seen.code == 1008


def test_binary_closes_1003() -> None:
    seen = run(seen_for(b'{"type": "ping"}'))
    assert (seen.code, seen.reason) == (1003, "Binary messages not supported")


def test_inbound_over_limit_closes_1009_with_profile_reason() -> None:
    seen = run(seen_for('{"type": "ping", "pad": "' + "x" * (1024 * 1024) + '"}'))
    assert (seen.code, seen.reason) == (1009, "Message too large")


def test_inbound_exactly_at_limit_is_accepted() -> None:
    filler = 1024 * 1024 - len('{"type":"ping","pad":""}')
    message = '{"type":"ping","pad":"' + "x" * filler + '"}'
    assert len(message) == 1024 * 1024
    seen = run(seen_for(message, '{"type": "cancel"}'))
    assert json.loads(seen.received[0]) == {"type": "pong"}
    assert seen.code == 1001


def test_outbound_over_limit_closes_1009() -> None:
    seen = run(seen_for('{"type": "big"}'))
    assert (seen.code, seen.reason) == (1009, "Message too large")
    assert seen.received == []


def test_completion_1000_and_cancellation_1001() -> None:
    done = run(seen_for('{"type": "complete"}'))
    assert (done.code, done.reason) == (1000, "Completed")
    assert json.loads(done.received[0]) == {"type": "job_complete"}
    cancelled = run(seen_for('{"type": "ping"}', '{"type": "cancel"}'))
    assert (cancelled.code, cancelled.reason) == (1001, "Cancelled")


def test_handler_exception_closes_1011_never_1006(caplog: pytest.LogCaptureFixture) -> None:
    seen = run(seen_for('{"type": "crash"}'))
    assert (seen.code, seen.reason) == (1011, "Internal error")
    assert "hunter2" not in seen.reason
    assert any("handler failed" in r.message for r in caplog.records)


def test_refresh_token_with_bad_token_closes_1008() -> None:
    seen = run(seen_for('{"type": "refresh_token", "token": "bad"}'))
    assert (seen.code, seen.reason) == (1008, "Authentication required")
    ok = run(seen_for('{"type": "refresh_token", "token": "good"}', '{"type": "cancel"}'))
    assert ok.code == 1001


def test_unknown_type_and_invalid_utf8() -> None:
    assert run(seen_for('{"type": "launch"}')).code == 1002


def test_invalid_token_before_upgrade_is_http_401() -> None:
    async def scenario() -> Any:
        policy = job_policy()
        hook = adapter.authenticate(lambda request: "token=good" in request.path, realm="jobs")
        async with server(job_handler(policy), policy, process_request=hook) as uri:
            refused = await exchange(uri + "/jobs/1?token=bad")
            accepted = await exchange(uri + "/jobs/1?token=good", '{"type": "complete"}')
            return refused, accepted

    refused, accepted = run(scenario())
    assert refused.status == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="jobs"'
    assert accepted.code == 1000


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


async def _second_while_first_open(uri: str) -> Any:
    """What a second client gets while a first one holds the only connection slot."""
    hold = asyncio.Event()
    first = asyncio.create_task(_hold_then(uri, hold))
    await _until(lambda: len(adapter.registry) == 1)
    second = await exchange(uri)
    hold.set()
    await first
    return second


def test_overload_closes_1013_or_refuses_503() -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        policy = job_policy()
        async with server(job_handler(policy, max_connections=1), policy) as uri:
            overloaded = await _second_while_first_open(uri)
        policy = job_policy()
        hook = adapter.admission(1, retry_after=7)
        async with server(job_handler(policy), policy, process_request=hook) as uri:
            refused = await _second_while_first_open(uri)
            after = await exchange(uri, '{"type": "complete"}')
        return overloaded, refused, after

    overloaded, refused, after = run(scenario())
    assert (overloaded.code, overloaded.reason) == (1013, "Try again later")
    assert refused.status == 503
    assert refused.headers["retry-after"] == "7"
    assert after.code == 1000


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_drain_closes_every_client_1012_within_the_window() -> None:
    async def scenario() -> tuple[list[Any], int, float]:
        policy = job_policy()
        async with server(job_handler(policy), policy) as uri:
            clients = [asyncio.create_task(exchange(uri)) for _ in range(5)]
            await _until(lambda: len(adapter.registry) == 5)
            loop = asyncio.get_running_loop()
            start = loop.time()
            closed = await adapter.drain(window=0.5)
            elapsed = loop.time() - start
            return await asyncio.gather(*clients), closed, elapsed

    seen, closed, elapsed = run(scenario())
    assert closed == 5
    assert elapsed < 3.0
    assert all((s.code, s.reason) == (1012, "Service restarting") for s in seen)
    assert len(adapter.registry) == 0


def test_observer_gets_one_event_per_connection() -> None:
    events: list[CloseEvent] = []
    counter = CloseCounter()

    async def scenario() -> None:
        policy = job_policy()
        async with server(job_handler(policy, events), policy) as uri:
            await exchange(uri, "{bad")
            await exchange(uri, '{"type": "complete"}')
            async with connect(uri) as ws:
                await ws.close(4001, "client leaves")
            await _until(lambda: len(events) == 3)
        for event in events:
            counter(event)

    run(scenario())
    assert [e.code for e in events] == [1002, 1000, 4001]
    assert [e.closed_by for e in events] == ["local", "local", "peer"]
    assert counter.counts["private"] == 1


def test_send_after_peer_left_returns_false() -> None:
    results: list[bool] = []

    async def handler(ws: ServerConnection) -> None:
        async with adapter.guard(ws) as conn:
            await conn.receive()  # the client closes: None
            results.append(await conn.send({"type": "late"}))

    async def scenario() -> None:
        policy = Policy()
        async with server(handler, policy) as uri:
            async with connect(uri) as ws:
                await ws.close()
            await _until(lambda: bool(results))

    run(scenario())
    assert results == [False]


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
    assert seen.code == 1009
    print(f"server RSS grew by {after - before} KiB")
    assert after - before < 8 * 1024, f"server grew by {after - before} KiB"


def test_reconnecting_client_follows_the_advice() -> None:
    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        code = int(ws.request.path.rsplit("/", 1)[1])
        async with adapter.guard(ws) as conn:
            if code == 1000:
                await conn.close(Outcome.COMPLETED)
            else:
                await ws.close(code, "from test")

    async def scenario() -> dict[str, Any]:
        results: dict[str, Any] = {}
        async with server(handler, Policy()) as uri:
            policy = ReconnectPolicy(max_attempts=3, jitter="none")
            for code in (1000, 1002, 1011, 1012):
                sleeps: list[float] = []

                async def sleep(delay: float, sleeps: list[float] = sleeps) -> None:
                    sleeps.append(delay)

                client = adapter.reconnecting(f"{uri}/close/{code}", policy, sleep=sleep)
                connections = [ws async for ws in client]
                assert client.advice is not None
                results[str(code)] = (len(connections), sleeps, client.advice.action)

            refreshes: list[int] = []

            def refresh() -> dict[str, str]:
                refreshes.append(1)
                return {"Authorization": "Bearer new"}

            client = adapter.reconnecting(
                f"{uri}/close/1008", policy, refresh=refresh, sleep=_nosleep
            )
            results["1008"] = (len([ws async for ws in client]), refreshes, client.advice)

            client = adapter.reconnecting(
                f"{uri}/close/1009",
                policy,
                reduce_payload=lambda: f"{uri}/close/1000",
                sleep=_nosleep,
            )
            results["1009"] = (len([ws async for ws in client]), client.history)
        return results

    results = run(scenario())
    assert results["1000"] == (1, [], ReconnectAction.STOP)
    assert results["1002"] == (1, [], ReconnectAction.STOP)
    assert results["1011"] == (4, [1.0, 2.0, 4.0], ReconnectAction.STOP)
    assert results["1012"] == (4, [5.0, 5.0, 5.0], ReconnectAction.STOP)
    count, refreshes, advice = results["1008"]
    assert (count, refreshes) == (2, [1])
    assert advice.action is ReconnectAction.STOP
    assert "refused again" in advice.why
    count, history = results["1009"]
    assert count == 2
    assert [a.action for a in history] == [ReconnectAction.REDUCE_PAYLOAD, ReconnectAction.STOP]


async def _nosleep(delay: float) -> None:
    return None


def test_reconnecting_client_handshake_failures() -> None:
    async def scenario() -> tuple[Any, Any]:
        policy = Policy()
        hook = adapter.chain(
            adapter.authenticate(lambda r: "busy" in r.path or "ok" in r.path),
            _always_503_for("busy"),
        )
        async with server(job_handler(policy), policy, process_request=hook) as uri:
            sleeps: list[float] = []

            async def sleep(delay: float) -> None:
                sleeps.append(delay)

            refused = adapter.reconnecting(f"{uri}/nope", sleep=sleep)
            assert [ws async for ws in refused] == []
            busy = adapter.reconnecting(
                f"{uri}/busy", ReconnectPolicy(max_attempts=2, jitter="none"), sleep=sleep
            )
            assert [ws async for ws in busy] == []
            return refused.advice, (busy.history, sleeps)

    refused, (history, sleeps) = run(scenario())
    assert refused.action is ReconnectAction.STOP
    assert "401" in refused.why
    assert [a.action for a in history] == [ReconnectAction.RETRY] * 2 + [ReconnectAction.STOP]
    assert sleeps == [9.0, 9.0]


def _always_503_for(marker: str) -> Any:
    async def hook(connection: ServerConnection, request: Request) -> Any:
        if marker in request.path:
            return adapter.to_response(Reject.unavailable(9))
        return None

    return hook


def test_serve_options_match_the_policy() -> None:
    options = adapter.serve_options(Policy(InboundPolicy(max_bytes=4096)))
    assert options["max_size"] == 4096
    assert issubclass(options["create_connection"], ServerConnection)
    with pytest.raises(ValueError, match="max_connections"):
        adapter.admission(0)
    with pytest.raises(ValueError, match="max_connections"):
        adapter.guard(object(), max_connections=0)  # type: ignore[arg-type]


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
    closes = [r for r in records if r.levelname == "INFO" and "websocket closed" in r.message]
    warnings = [r for r in records if r.levelname == "WARNING"]
    assert len(closes) == 1
    assert "normal_closure by local" in closes[0].message
    assert len(warnings) == 1
    assert "large websocket message" in warnings[0].message
    assert "yyyy" not in warnings[0].message


def test_messages_helper_and_retry_after_parsing() -> None:
    async def scenario() -> list[str | bytes]:
        policy = job_policy()
        async with server(job_handler(policy), policy) as uri, connect(uri) as ws:
            await ws.send('{"type": "ping"}')
            await ws.send("{bad")
            return [m async for m in adapter.messages(ws)]

    assert run(scenario()) == ['{"type":"pong"}']
    from ws_close_policy.adapters.websockets import _retry_after

    assert _retry_after("12") == 12.0
    assert _retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert _retry_after(None) is None

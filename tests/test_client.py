"""The reconnecting client (ws_close_policy.client) against a real websockets server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from tests import job_protocol
from tests.wire import run
from ws_close_policy import Outcome, Policy, ReconnectAction, ReconnectPolicy, Reject
from ws_close_policy.adapters import websockets as adapter
from ws_close_policy.client import _retry_after, messages, reconnecting


@asynccontextmanager
async def server(handler: Any, **kwargs: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **adapter.serve_options(Policy(), **kwargs)) as srv:
        yield f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}"


async def _nosleep(delay: float) -> None:
    return None


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
        async with server(handler) as uri:
            policy = ReconnectPolicy(max_attempts=3, jitter="none")
            for code in (1000, 1002, 1011, 1012):
                sleeps: list[float] = []

                async def sleep(delay: float, sleeps: list[float] = sleeps) -> None:
                    sleeps.append(delay)

                client = reconnecting(f"{uri}/close/{code}", policy, sleep=sleep)
                connections = [ws async for ws in client]
                assert client.advice is not None
                results[str(code)] = (len(connections), sleeps, client.advice.action)

            refreshes: list[int] = []

            def refresh() -> dict[str, str]:
                refreshes.append(1)
                return {"Authorization": "Bearer new"}

            client = reconnecting(f"{uri}/close/1008", policy, refresh=refresh, sleep=_nosleep)
            results["1008"] = (len([ws async for ws in client]), refreshes, client.advice)

            client = reconnecting(
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


def _always_503_for(marker: str) -> Any:
    async def hook(connection: ServerConnection, request: Request) -> Any:
        if marker in request.path:
            return adapter.to_response(Reject.unavailable(9))
        return None

    return hook


def test_reconnecting_client_handshake_failures() -> None:
    async def handler(ws: ServerConnection) -> None:
        async with adapter.guard(ws) as conn:
            await job_protocol.serve_job(conn)

    async def scenario() -> tuple[Any, Any]:
        hook = adapter.chain(
            adapter.authenticate(lambda r: "busy" in r.path or "ok" in r.path),
            _always_503_for("busy"),
        )
        async with server(handler, process_request=hook) as uri:
            sleeps: list[float] = []

            async def sleep(delay: float) -> None:
                sleeps.append(delay)

            refused = reconnecting(f"{uri}/nope", sleep=sleep)
            assert [ws async for ws in refused] == []
            busy = reconnecting(
                f"{uri}/busy", ReconnectPolicy(max_attempts=2, jitter="none"), sleep=sleep
            )
            assert [ws async for ws in busy] == []
            return refused.advice, (busy.history, sleeps)

    refused, (history, sleeps) = run(scenario())
    assert refused.action is ReconnectAction.STOP
    assert "401" in refused.why
    assert [a.action for a in history] == [ReconnectAction.RETRY] * 2 + [ReconnectAction.STOP]
    assert sleeps == [9.0, 9.0]


def test_messages_helper_and_retry_after_parsing() -> None:
    async def handler(ws: ServerConnection) -> None:
        async with adapter.guard(ws) as conn:
            await job_protocol.serve_job(conn)

    async def scenario() -> list[str | bytes]:
        async with server(handler) as uri, connect(uri) as ws:
            await ws.send('{"type": "ping"}')
            await ws.send("{bad")
            return [m async for m in messages(ws)]

    assert run(scenario()) == ['{"type":"pong"}']
    assert _retry_after("12") == 12.0
    assert _retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert _retry_after(None) is None


def test_reconnecting_checks_its_arguments_when_built() -> None:
    with pytest.raises(TypeError, match="uri must be a str, not int"):
        reconnecting(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uri must start with ws:// or wss://"):
        reconnecting("http://127.0.0.1/")
    with pytest.raises(TypeError, match="refresh must be callable or None, not str"):
        reconnecting("ws://127.0.0.1/", refresh="nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sleep must be callable, not str"):
        reconnecting("ws://127.0.0.1/", sleep="x")  # type: ignore[arg-type]

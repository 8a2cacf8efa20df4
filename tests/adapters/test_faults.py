"""Fault injection: in every case a single close (or none if the peer is gone), no exception
out of the adapter but the handler's own, and exactly one CloseEvent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from tests.wire import exchange, run
from ws_close_policy import CloseEvent, InboundPolicy, OutboundPolicy, Policy
from ws_close_policy.adapters import Closed, PolicyConnection
from ws_close_policy.adapters import websockets as adapter
from ws_close_policy.policy import DEFAULT

Body = Callable[[PolicyConnection], Any]


class Recorder:
    def __init__(self) -> None:
        self.events: list[CloseEvent] = []
        self.errors: list[BaseException] = []
        self.done = asyncio.Event()

    def handler(self, body: Body, policy: Policy = DEFAULT, **kwargs: Any) -> Any:
        async def handle(ws: ServerConnection) -> None:
            try:
                async with adapter.guard(ws, policy, observer=self.events.append, **kwargs) as c:
                    await body(c)
            except BaseException as exc:
                self.errors.append(exc)
                if not isinstance(exc, Exception):
                    raise
            finally:
                self.done.set()

        return handle


@asynccontextmanager
async def started(handler: Any, policy: Policy = DEFAULT) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **adapter.serve_options(policy)) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_peer_disappears_mid_send() -> None:
    rec = Recorder()
    results: list[bool] = []

    async def body(conn: PolicyConnection) -> None:
        async with asyncio.timeout(10):
            while True:  # keep sending until the adapter notices the client vanished
                try:
                    await conn.send({"type": "progress", "pad": "x" * 4000})
                except Closed:
                    results.append(False)
                    raise
                results.append(True)
                await asyncio.sleep(0.001)

    async def scenario() -> None:
        async with started(rec.handler(body)) as uri:
            ws = await connect(uri)
            await ws.recv()
            ws.transport.abort()  # gone, no close frame
            await asyncio.wait_for(rec.done.wait(), 10)

    run(scenario())
    assert results[-1] is False
    assert rec.errors == []
    assert len(rec.events) == 1
    assert rec.events[0].code == 1006
    assert rec.events[0].closed_by == "transport"


def test_both_sides_close_at_once() -> None:
    rec = Recorder()

    async def body(conn: PolicyConnection) -> None:
        await conn.receive()
        await conn.close()

    async def scenario() -> Any:
        async with started(rec.handler(body)) as uri:
            async with connect(uri) as ws:
                await ws.send('{"type": "go"}')
                await ws.close(1000, "client done")
            await asyncio.wait_for(rec.done.wait(), 10)

    run(scenario())
    assert rec.errors == []
    assert len(rec.events) == 1
    assert rec.events[0].code == 1000


def test_handler_task_cancelled_closes_1001() -> None:
    rec = Recorder()
    tasks: list[asyncio.Task[Any]] = []

    async def body(conn: PolicyConnection) -> None:
        current = asyncio.current_task()
        assert current is not None
        tasks.append(current)
        await asyncio.sleep(60)

    async def scenario() -> Any:
        async with started(rec.handler(body)) as uri:
            client = asyncio.create_task(exchange(uri))
            while not tasks:
                await asyncio.sleep(0.01)
            tasks[0].cancel()
            seen = await client
            await asyncio.wait_for(rec.done.wait(), 10)
            return seen

    seen = run(scenario())
    assert (seen.code, seen.reason) == (1001, "Going away")
    assert len(rec.events) == 1
    assert [type(e) for e in rec.errors] == [asyncio.CancelledError]


def test_observer_raising_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    done = asyncio.Event()
    errors: list[BaseException] = []

    def broken(event: CloseEvent) -> None:
        raise RuntimeError("metrics backend down")

    async def handler(ws: ServerConnection) -> None:
        try:
            async with adapter.guard(ws, observer=broken) as conn:
                await conn.receive()
        except Exception as exc:
            errors.append(exc)
        finally:
            done.set()

    async def scenario() -> Any:
        async with started(handler) as uri:
            seen = await exchange(uri, "{bad")
            await asyncio.wait_for(done.wait(), 10)
            return seen

    seen = run(scenario())
    assert seen.code == 1002
    assert errors == []
    assert any("close observer failed" in r.message for r in caplog.records)


class ExplodingCodec:
    name = "exploding"

    def decode(self, data: str | bytes) -> Any:
        raise ZeroDivisionError("codec bug")

    def encode(self, message: Any) -> str:
        raise MemoryError("codec bug")


@pytest.mark.parametrize(
    ("send", "code"),
    [('{"type": "x"}', 1002), (None, 1011)],
    ids=["decode raises", "encode raises"],
)
def test_codec_raising_unexpectedly(send: str | None, code: int) -> None:
    rec = Recorder()
    policy = Policy(InboundPolicy(codec=ExplodingCodec()), OutboundPolicy(codec=ExplodingCodec()))

    async def body(conn: PolicyConnection) -> None:
        if send is None:
            with pytest.raises(Closed):
                await conn.send({"type": "x"})
        else:
            assert await conn.receive() is None

    async def scenario() -> Any:
        async with started(rec.handler(body, policy), policy) as uri:
            seen = await exchange(uri, *([send] if send else []))
            await asyncio.wait_for(rec.done.wait(), 10)
            return seen

    seen = run(scenario())
    assert seen.code == code
    assert "codec bug" not in seen.reason
    assert rec.errors == []
    assert len(rec.events) == 1


def test_degrade_raising_closes_1009() -> None:
    rec = Recorder()

    def degrade(message: Any) -> Any:
        raise KeyError("summary")

    policy = Policy(outbound=OutboundPolicy(max_bytes=100, warn_bytes=50, degrade=degrade))

    async def body(conn: PolicyConnection) -> None:
        with pytest.raises(Closed) as closed:
            await conn.send({"type": "big", "pad": "x" * 200})
        assert closed.value.code == 1009  # the policy's own close

    async def scenario() -> Any:
        async with started(rec.handler(body, policy), policy) as uri:
            seen = await exchange(uri)
            await asyncio.wait_for(rec.done.wait(), 10)
            return seen

    seen = run(scenario())
    assert (seen.code, seen.reason) == (1009, "Message too large")
    assert rec.errors == []
    assert rec.events[0].detail is not None
    assert "degrade raised KeyError" in rec.events[0].detail

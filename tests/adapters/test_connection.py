"""The layer both adapters share (PolicyConnection, Connections), on an in-memory transport:
most adapter behaviour, without sockets."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Sequence
from typing import Any

import pytest

from tests.wire import run
from ws_close_policy import CloseEvent, OutboundPolicy, Outcome, Policy
from ws_close_policy.adapters.connection import Closed, Connections, PolicyConnection
from ws_close_policy.policy import DEFAULT


class FakeTransport:
    """A connection in memory: messages queued by the test, what the adapter did, recorded."""

    def __init__(self, *messages: str | bytes) -> None:
        self.inbox: asyncio.Queue[str | bytes | Closed] = asyncio.Queue()
        for message in messages:
            self.inbox.put_nowait(message)
        self.sent: list[tuple[str | bytes, bool]] = []
        self.closes: list[tuple[int, str]] = []
        self.peer: Closed | None = None
        self.backlog = 0  # bytes waiting to be written
        self.slow = False  # deliver() reports it too slow

    def leave(self, code: int | None = 1001, reason: str = "") -> None:
        """The peer closes."""
        self.peer = Closed(code, reason)
        self.inbox.put_nowait(self.peer)

    async def receive(self) -> str | bytes:
        if self.peer is not None and self.inbox.empty():
            raise self.peer
        item = await self.inbox.get()
        if isinstance(item, Closed):
            raise item
        return item

    async def send(self, data: str | bytes, text: bool) -> None:
        if self.peer is not None:
            raise self.peer
        self.sent.append((data, text))

    async def close(self, code: int, reason: str, *, linger: bool = True) -> None:
        self.closes.append((code, reason))
        if self.peer is None:
            self.leave(code, reason)  # the peer answers with the same close

    def peer_close(self) -> Closed | None:
        return self.peer

    def remote(self) -> str | None:
        return "127.0.0.1:50000"

    async def deliver(
        self,
        transports: Sequence[FakeTransport],
        data: str | bytes,
        text: bool,
        *,
        max_buffer: int,
        slow_after: float,
    ) -> list[FakeTransport]:
        for transport in transports:
            if not transport.slow:
                await transport.send(data, text)
        return [t for t in transports if t.slow or t.backlog > max_buffer]


def guarded(transport: FakeTransport, policy: Policy = DEFAULT, **kwargs: Any) -> PolicyConnection:
    return PolicyConnection(transport, policy, **kwargs)


def test_a_normal_end_closes_1000_once_with_one_event() -> None:
    events: list[CloseEvent] = []

    async def scenario() -> FakeTransport:
        transport = FakeTransport('{"type": "ping"}')
        async with guarded(transport, observer=events.append) as conn:
            assert await conn.receive() == {"type": "ping"}
            await conn.send({"type": "pong"})
        return transport

    transport = run(scenario())
    assert transport.sent == [('{"type":"pong"}', True)]
    assert transport.closes == [(1000, "Completed")]
    assert [(e.code, e.closed_by, e.messages_in, e.messages_out) for e in events] == [
        (1000, "local", 1, 1)
    ]


def test_an_invalid_message_closes_and_ends_the_loop() -> None:
    async def scenario() -> tuple[FakeTransport, list[Any]]:
        transport = FakeTransport('{"type": "ping"}', "{bad", '{"type": "never read"}')
        seen = []
        async with guarded(transport) as conn:
            async for message in conn:
                seen.append(message)
        return transport, seen

    transport, seen = run(scenario())
    assert seen == [{"type": "ping"}]
    assert transport.closes == [(1002, "Invalid JSON")]


def test_send_after_the_peer_left_raises_closed_and_guard_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[CloseEvent] = []
    sends = 0

    async def scenario() -> FakeTransport:
        nonlocal sends
        transport = FakeTransport()
        async with guarded(transport, observer=events.append) as conn:
            while True:  # a push-only loop with no boilerplate
                await conn.send({"type": "progress"})
                sends += 1
                if sends == 3:
                    transport.leave(4001, "bye")
        return transport

    transport = run(scenario())
    assert sends == 3  # stopped at the first send after the peer left
    assert transport.closes == []
    assert [(e.code, e.closed_by) for e in events] == [(4001, "peer")]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_handler_exception_closes_1011_and_is_handled(caplog: pytest.LogCaptureFixture) -> None:
    transport = FakeTransport()

    async def scenario() -> str:
        async with guarded(transport):
            raise RuntimeError("db password is hunter2")
        return "the block's exception stops at guard"

    assert run(scenario()) == "the block's exception stops at guard"
    assert transport.closes == [(1011, "Internal error")]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1  # the close's own line, with the traceback
    assert errors[0].exc_info is not None
    assert "hunter2" not in transport.closes[0][1]


def test_cancellation_closes_1001() -> None:
    transport = FakeTransport()

    async def scenario() -> None:
        async def handler() -> None:
            async with guarded(transport) as conn:
                await conn.receive()

        task = asyncio.create_task(handler())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    assert transport.closes == [(1001, "Going away")]


def test_application_codes_and_their_errors() -> None:
    transport = FakeTransport()

    async def scenario() -> None:
        async with guarded(transport) as conn:
            with pytest.raises(ValueError, match="application code"):
                await conn.close(1006, "no")
            await conn.close(4004, "Job not found")
            await conn.close(4005, "ignored: already closing")
            with pytest.raises(Closed) as closed:
                await conn.send({"type": "late"})
            assert (closed.value.code, closed.value.reason) == (4004, "Job not found")

    run(scenario())
    assert transport.closes == [(4004, "Job not found")]


def test_a_message_over_the_limit_closes_1009_and_the_send_raises() -> None:
    transport = FakeTransport()
    policy = Policy(outbound=OutboundPolicy(max_bytes=50))

    async def scenario() -> Closed:
        async with guarded(transport, policy) as conn:
            with pytest.raises(Closed) as closed:
                await conn.send({"type": "big", "pad": "x" * 100})
        return closed.value

    closed = run(scenario())
    assert (closed.code, closed.reason) == (1009, "Message too large")
    assert transport.closes == [(1009, "Message too large")]
    assert transport.sent == []


# --- Connections -----------------------------------------------------------------------------


async def _hold(conn: PolicyConnection, started: asyncio.Event | None = None) -> None:
    async with conn:
        if started is not None:
            started.set()
        await conn.receive()


def test_admission_limit_closes_the_extra_connection_1013() -> None:
    connections = Connections(max_open=2)

    async def scenario() -> list[FakeTransport]:
        transports = [FakeTransport() for _ in range(3)]
        held = [asyncio.create_task(_hold(guarded(t, connections=connections))) for t in transports]
        await asyncio.sleep(0.01)
        assert len(connections) == 2
        assert connections.full
        for transport in transports[:2]:
            transport.leave(1000)
        await asyncio.gather(*held)
        return transports

    transports = run(scenario())
    assert [t.closes for t in transports] == [[], [], [(1013, "Try again later")]]
    assert len(connections) == 0


def test_drain_spreads_its_closes_over_the_window() -> None:
    draws = iter([0.0, 0.5, 0.99])
    connections = Connections(drain_window=0.4, random=lambda: next(draws))

    async def scenario() -> tuple[list[FakeTransport], list[float], int]:
        loop = asyncio.get_running_loop()
        transports = [FakeTransport() for _ in range(3)]
        times: list[float] = []
        for transport in transports:
            original = transport.close

            async def timed(
                code: int, reason: str, *, linger: bool = True, original: Any = original
            ) -> None:
                times.append(loop.time())
                await original(code, reason, linger=linger)

            transport.close = timed  # type: ignore[method-assign]
        held = [asyncio.create_task(_hold(guarded(t, connections=connections))) for t in transports]
        await asyncio.sleep(0.01)
        start = loop.time()
        closed = await connections.drain()
        await asyncio.gather(*held)
        return transports, [t - start for t in times], closed

    transports, offsets, closed = run(scenario())
    assert closed == 3
    assert all(t.closes == [(1012, "Service restarting")] for t in transports)
    assert offsets[0] < 0.1
    assert 0.15 < offsets[1] < 0.35
    assert 0.35 < offsets[2] < 0.6


def test_a_drain_with_no_window_hurries_an_earlier_one() -> None:
    connections = Connections(drain_window=30.0)

    async def scenario() -> tuple[list[FakeTransport], float, int, int]:
        loop = asyncio.get_running_loop()
        transports = [FakeTransport() for _ in range(3)]
        held = [asyncio.create_task(_hold(guarded(t, connections=connections))) for t in transports]
        await asyncio.sleep(0.01)
        start = loop.time()
        slow = asyncio.create_task(connections.drain())  # would take up to 30 s
        await asyncio.sleep(0.05)
        now = await connections.drain(window=0)
        first = await slow
        await asyncio.gather(*held)
        return transports, loop.time() - start, first, now

    transports, elapsed, first, now = run(scenario())
    assert elapsed < 1.0
    assert (first, now) == (3, 3)
    assert all(t.closes == [(1012, "Service restarting")] for t in transports)


def test_lifespan_second_signal_closes_the_rest_at_once() -> None:
    calls: list[str] = []
    connections = Connections(drain_window=30.0)

    def servers_handler(signum: int, frame: Any) -> None:
        calls.append(f"server handler, {len(connections)} open")

    async def scenario() -> tuple[FakeTransport, float]:
        loop = asyncio.get_running_loop()
        transport = FakeTransport()
        previous = signal.signal(signal.SIGTERM, servers_handler)
        try:
            async with connections.lifespan():
                started = asyncio.Event()
                held = asyncio.create_task(
                    _hold(guarded(transport, connections=connections), started)
                )
                await started.wait()
                start = loop.time()
                signal.raise_signal(signal.SIGTERM)
                await asyncio.sleep(0.05)
                signal.raise_signal(signal.SIGTERM)
                await held
                await asyncio.sleep(0.05)
                elapsed = loop.time() - start
        finally:
            signal.signal(signal.SIGTERM, previous)
        return transport, elapsed

    transport, elapsed = run(scenario())
    assert elapsed < 1.0
    assert transport.closes == [(1012, "Service restarting")]
    assert calls == ["server handler, 0 open"]  # once, after every connection closed


def test_connections_opened_during_a_drain_are_closed_1012() -> None:
    connections = Connections()

    async def scenario() -> FakeTransport:
        await connections.drain()
        late = FakeTransport()
        await _hold(guarded(late, connections=connections))
        return late

    assert run(scenario()).closes == [(1012, "Service restarting")]
    assert connections.draining


def test_two_connections_objects_share_nothing() -> None:
    first, second = Connections(), Connections()

    async def scenario() -> tuple[int, FakeTransport]:
        transport = FakeTransport()
        started = asyncio.Event()
        held = asyncio.create_task(_hold(guarded(transport, connections=first), started))
        await started.wait()
        drained = await second.drain(window=0)
        transport.leave(1000)
        await held
        return drained, transport

    drained, transport = run(scenario())
    assert drained == 0
    assert transport.closes == []
    assert not first.draining


class CountingCodec:
    name = "counting"

    def __init__(self) -> None:
        self.encodes = 0

    def decode(self, data: str | bytes) -> Any:
        return json.loads(data)

    def encode(self, message: Any) -> str:
        self.encodes += 1
        return json.dumps(message)


def test_broadcast_decides_once_and_closes_the_slow_ones_1013() -> None:
    codec = CountingCodec()
    connections = Connections(Policy(outbound=OutboundPolicy(codec=codec)), max_buffer=1000)

    async def scenario() -> tuple[list[FakeTransport], int]:
        transports = [FakeTransport() for _ in range(5)]
        transports[1].backlog = 5000  # over max_buffer once queued: too slow
        transports[2].slow = True  # the adapter says it could not keep up
        transports[3].leave(1000)  # already gone
        started = [asyncio.Event() for _ in transports]
        held = [
            asyncio.create_task(_hold(guarded(t, connections=connections), s))
            for t, s in zip(transports, started, strict=True)
        ]
        await asyncio.gather(*(s.wait() for s in started[:3]), started[4].wait())
        sent = await connections.broadcast({"type": "news"})
        await asyncio.sleep(0.05)  # the slow ones are closed in the background
        for transport in (transports[0], transports[4]):
            transport.leave(1000)
        await asyncio.gather(*held)
        return transports, sent

    transports, sent = run(scenario())
    assert codec.encodes == 1
    assert sent == 2
    assert [len(t.sent) for t in transports] == [1, 1, 0, 0, 1]  # 1 got it, then its close
    assert transports[1].closes == [(1013, "Try again later")]
    assert transports[2].closes == [(1013, "Try again later")]


def test_a_broadcast_over_the_limit_closes_its_targets() -> None:
    connections = Connections(Policy(outbound=OutboundPolicy(max_bytes=20)))

    async def scenario() -> tuple[list[FakeTransport], int]:
        transports = [FakeTransport() for _ in range(2)]
        held = [asyncio.create_task(_hold(guarded(t, connections=connections))) for t in transports]
        await asyncio.sleep(0.01)
        sent = await connections.broadcast({"type": "much too long for the limit"})
        await asyncio.gather(*held)
        return transports, sent

    transports, sent = run(scenario())
    assert sent == 0
    assert [t.closes for t in transports] == [[(1009, "Message too large")]] * 2


def test_lifespan_drains_on_the_signal_before_the_servers_handler() -> None:
    calls: list[str] = []
    connections = Connections(drain_window=0.05)

    def servers_handler(signum: int, frame: Any) -> None:
        calls.append(f"server handler, {len(connections)} open")

    async def scenario() -> FakeTransport:
        transport = FakeTransport()
        previous = signal.signal(signal.SIGTERM, servers_handler)
        try:
            async with connections.lifespan() as state:
                assert state == {"connections": connections}
                started = asyncio.Event()
                held = asyncio.create_task(
                    _hold(guarded(transport, connections=connections), started)
                )
                await started.wait()
                signal.raise_signal(signal.SIGTERM)
                await held
                await asyncio.sleep(0.05)
            assert signal.getsignal(signal.SIGTERM) is servers_handler  # restored
        finally:
            signal.signal(signal.SIGTERM, previous)
        return transport

    transport = run(scenario())
    assert transport.closes == [(1012, "Service restarting")]
    assert calls == ["server handler, 0 open"]  # after the drain, not before


def test_connections_validates_its_arguments() -> None:
    with pytest.raises(TypeError, match="policy"):
        Connections(policy=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="drain_window"):
        Connections(drain_window=-1)
    with pytest.raises(ValueError, match="slow_after"):
        Connections(slow_after=0)
    with pytest.raises(TypeError, match="observer"):
        PolicyConnection(FakeTransport(), observer=3)  # type: ignore[arg-type]
    _ = Outcome

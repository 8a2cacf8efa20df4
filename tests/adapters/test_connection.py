"""The layer every adapter shares (PolicyConnection, Connections), on an in-memory transport:
most adapter behaviour, without sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import Any

import pytest

from tests.adapters.fake import FakeTransport, guarded
from tests.wire import run
from ws_close_policy import CloseEvent, OutboundPolicy, Outcome, Policy
from ws_close_policy.adapters import Closed, Connections, PolicyConnection


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


def test_send_after_the_peer_left_raises_closed_with_the_event_and_guard_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[CloseEvent] = []
    raised: list[Closed] = []
    sends = 0

    async def scenario() -> tuple[FakeTransport, PolicyConnection]:
        nonlocal sends
        transport = FakeTransport()
        conn = guarded(transport, observer=events.append)
        async with conn:
            try:
                while True:  # a push-only loop with no boilerplate
                    await conn.send({"type": "progress"})
                    sends += 1
                    if sends == 3:
                        transport.leave(4001, "bye")
            except Closed as gone:
                raised.append(gone)
                raise
        return transport, conn

    transport, conn = run(scenario())
    assert sends == 3  # stopped at the first send after the peer left
    assert transport.closes == []
    (event,) = events
    assert (event.code, event.reason, event.closed_by) == (4001, "bye", "peer")
    (closed,) = raised
    assert closed.event is event is conn.close_event  # one CloseEvent, carried by Closed
    assert (closed.code, closed.reason, closed.closed_by) == (4001, "bye", "peer")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_handler_exception_closes_1011_then_propagates_logged_once_by_us(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = FakeTransport()

    async def scenario() -> None:
        async with guarded(transport):
            raise RuntimeError("db password is hunter2")

    with pytest.raises(RuntimeError, match="hunter2"):  # the server logs it, with its traceback
        run(scenario())
    assert transport.closes == [(1011, "Internal error")]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # the close's own line, naming the exception
    assert errors[0].exc_info is None  # the traceback is the server's to log, once
    assert "RuntimeError" in str(errors[0].ws_detail)  # type: ignore[attr-defined]


def test_an_exception_after_the_connection_ended_still_propagates() -> None:
    transport = FakeTransport()
    transport.leave(1000)

    async def scenario() -> None:
        async with guarded(transport) as conn:
            assert await conn.receive() is None
            raise KeyError("after the end")

    with pytest.raises(KeyError):
        run(scenario())
    assert transport.closes == []


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
            assert await conn.close(4004, "Job not found") is True
            assert await conn.close(4005, "ignored: already closing") is False
            with pytest.raises(Closed) as closed:
                await conn.send({"type": "late"})
            assert (closed.value.code, closed.value.reason) == (4004, "Job not found")
            assert closed.value.closed_by == "local"

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
    assert (closed.code, closed.reason, closed.closed_by) == (1009, "Message too large", "local")
    assert closed.event.violation is not None
    assert transport.closes == [(1009, "Message too large")]
    assert transport.sent == []


def test_a_peer_that_never_answers_the_close_ends_it_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ws_close_policy.adapters import _connection

    monkeypatch.setattr(_connection, "CLOSE_TIMEOUT", 0.2)
    transport = FakeTransport()
    transport.answers = False

    async def scenario() -> tuple[float, CloseEvent | None]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with guarded(transport) as conn:
            await conn.close(4004, "Job not found")
        return loop.time() - started, conn.close_event

    elapsed, event = run(scenario(), timeout=5)
    assert elapsed < 1.0
    assert event is not None
    assert (event.code, event.closed_by) == (4004, "local")


def test_a_server_that_refuses_our_close_code_raises_from_the_block() -> None:
    # daphne sends only 1000 and 3000-4999: the shared layer ends the block with an error,
    # so that the server ends the connection its own way (with 1011), on every adapter.
    class Refusing(FakeTransport):
        async def close(self, code: int, reason: str) -> None:
            raise ValueError(f"invalid close code {code}")

    transport = Refusing('{"bad json')

    async def scenario() -> PolicyConnection:
        async with guarded(transport) as conn:
            assert await conn.receive() is None
        return conn

    with pytest.raises(RuntimeError, match="could not send the close frame: invalid close"):
        run(scenario())


def test_a_refused_close_from_another_task_ends_a_handler_waiting_to_read() -> None:
    # daphne refuses 1012 and keeps the connection open: a handler waiting for the client
    # would wait forever after a drain. Its block raises the refusal instead, at once.
    class Refusing(FakeTransport):
        async def close(self, code: int, reason: str) -> None:
            raise ValueError(f"invalid close code {code}")

    connections = Connections(drain_window=0.2)

    async def scenario() -> tuple[BaseException | None, float]:
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        async def handler() -> None:
            async with guarded(Refusing(), connections=connections) as conn:
                started.set()
                await conn.receive()  # the client sends nothing

        task = asyncio.create_task(handler())
        await started.wait()
        start = loop.time()
        assert await connections.drain() == 1  # ended by the drain, if not with its code
        (failure,) = await asyncio.gather(task, return_exceptions=True)
        return failure, loop.time() - start

    failure, elapsed = run(scenario(), timeout=5)
    assert isinstance(failure, RuntimeError), failure
    assert "could not send the close frame: invalid close code 1012" in str(failure)
    assert elapsed < 1.0
    assert len(connections) == 0


def test_a_server_cancelling_the_handler_still_cancels_it() -> None:
    # Only a cancellation of ours becomes the refusal: the server's own goes through.
    async def scenario() -> bool:
        async def handler() -> None:
            async with guarded(FakeTransport()) as conn:
                await conn.receive()

        task = asyncio.create_task(handler())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return task.cancelled()

    assert run(scenario(), timeout=5)


# --- tasks never outlive their connection ----------------------------------------------------


def _pending(*tasks: asyncio.Task[Any] | None) -> list[asyncio.Task[Any]]:
    return [t for t in tasks if t is not None and not t.done()]


@pytest.mark.parametrize("ending", ["cancelled", "close refused", "peer left", "normal"])
def test_the_read_ahead_task_never_outlives_its_connection(ending: str) -> None:
    # Sending twice without reading starts a reader (so that a peer that left shows up by
    # the next send on servers that report it only on read); it ends with the connection.
    class Transport(FakeTransport):
        async def close(self, code: int, reason: str) -> None:
            if ending == "close refused":
                raise ValueError("refused")
            await super().close(code, reason)

    async def scenario() -> list[asyncio.Task[Any]]:
        transport = Transport()
        conn = guarded(transport)
        reader: list[asyncio.Task[Any] | None] = []

        async def push() -> None:
            async with conn:
                await conn.send({"n": 1})
                await conn.send({"n": 2})
                reader.append(conn._reader)
                if ending == "peer left":
                    transport.leave(1001)
                    await asyncio.sleep(0.01)
                    await conn.send({"n": 3})
                elif ending == "cancelled":
                    await asyncio.sleep(10)

        task = asyncio.create_task(push())
        await asyncio.sleep(0.05)
        if ending == "cancelled":
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert reader[0] is not None  # it did read ahead
        return _pending(*reader)

    assert run(scenario()) == []


def test_read_ahead_delivers_messages_later_and_shows_a_departure_by_the_next_send() -> None:
    async def scenario() -> tuple[Any, int]:
        transport = FakeTransport()
        sent = 0
        async with guarded(transport) as conn:
            await conn.send({"n": 1})
            await conn.send({"n": 2})  # sending without reading: it reads ahead now
            transport.inbox.put_nowait('{"type": "cancel"}')
            await asyncio.sleep(0.01)
            received = await conn.receive()  # read ahead, delivered when asked
            transport.leave(1000)
            await asyncio.sleep(0.01)
            try:
                while True:
                    await conn.send({"n": 3})
                    sent += 1
            except Closed:
                pass
        return received, sent

    received, sent = run(scenario())
    assert received == {"type": "cancel"}
    assert sent == 0  # the departure showed up by the very next send


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
        assert connections.admission() is Outcome.OVERLOADED
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

    async def scenario() -> tuple[list[Any], list[float], int]:
        loop = asyncio.get_running_loop()
        times: list[float] = []

        class Timed(FakeTransport):
            async def close(self, code: int, reason: str) -> None:
                times.append(loop.time())
                await super().close(code, reason)

        transports = [Timed() for _ in range(3)]
        held = [asyncio.create_task(_hold(guarded(t, connections=connections))) for t in transports]
        await asyncio.sleep(0.01)
        start = loop.time()
        closed = await connections.drain()
        await asyncio.gather(*held)
        return transports, sorted(t - start for t in times), closed

    transports, offsets, closed = run(scenario())
    assert closed == 3
    assert all(t.closes == [(1012, "Service restarting")] for t in transports)
    assert offsets[0] < 0.1
    assert 0.15 < offsets[1] < 0.35
    assert 0.35 < offsets[2] < 0.6


def test_drain_counts_only_the_connections_it_closed() -> None:
    connections = Connections(drain_window=0.3, random=lambda: 0.99)

    async def scenario() -> tuple[int, list[FakeTransport]]:
        transports = [FakeTransport() for _ in range(3)]
        held = [asyncio.create_task(_hold(guarded(t, connections=connections))) for t in transports]
        await asyncio.sleep(0.01)
        drain = asyncio.create_task(connections.drain())
        await asyncio.sleep(0.05)
        transports[0].leave(1000)  # one client leaves by itself during the window
        closed = await drain
        await asyncio.gather(*held)
        return closed, transports

    closed, transports = run(scenario())
    assert closed == 2
    assert [len(t.closes) for t in transports] == [0, 1, 1]


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
    assert first + now == 3  # each connection closed once, by one of the two
    assert all(t.closes == [(1012, "Service restarting")] for t in transports)


def test_start_drain_drains_once_then_a_second_sigint_hurries() -> None:
    connections = Connections(drain_window=30.0)

    async def scenario() -> tuple[FakeTransport, float, bool]:
        loop = asyncio.get_running_loop()
        transport = FakeTransport()
        started = asyncio.Event()
        held = asyncio.create_task(_hold(guarded(transport, connections=connections), started))
        await started.wait()
        start = loop.time()
        first = connections.start_drain(signal.SIGTERM)  # a first signal
        await asyncio.sleep(0.05)
        relayed = connections.start_drain(signal.SIGTERM)  # relayed: no hurry
        await asyncio.sleep(0.05)
        assert not held.done()
        same = connections.start_drain(signal.SIGINT) is first is relayed  # Ctrl-C: at once
        await held
        await first
        return transport, loop.time() - start, same

    transport, elapsed, same = run(scenario())
    assert same
    assert elapsed < 1.0
    assert transport.closes == [(1012, "Service restarting")]


def test_connections_opened_during_a_drain_are_closed_1012() -> None:
    connections = Connections()

    async def scenario() -> FakeTransport:
        await connections.drain()
        late = FakeTransport()
        await _hold(guarded(late, connections=connections))
        return late

    assert run(scenario()).closes == [(1012, "Service restarting")]
    assert connections.draining
    assert connections.admission() is Outcome.RESTARTING


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
    policy = Policy(outbound=OutboundPolicy(codec=codec))
    connections = Connections(policy, max_buffer=1000, slow_after=0.2)

    async def scenario() -> tuple[list[FakeTransport], int]:
        transports = [FakeTransport() for _ in range(5)]
        transports[1].backlog = 5000  # over max_buffer already: too slow, not even tried
        transports[2].stalled = True  # its send never completes: too slow after slow_after
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
    assert [len(t.sent) for t in transports] == [1, 0, 0, 0, 1]
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


def test_connections_validates_its_arguments() -> None:
    with pytest.raises(TypeError, match="policy"):
        Connections(policy=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="drain_window"):
        Connections(drain_window=-1)
    with pytest.raises(ValueError, match="slow_after"):
        Connections(slow_after=0)
    with pytest.raises(TypeError, match="metrics"):
        Connections(metrics=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="observer"):
        PolicyConnection(FakeTransport(), observer=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="connections"):
        PolicyConnection(FakeTransport(), connections=3)  # type: ignore[arg-type]

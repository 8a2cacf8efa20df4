"""The async layer both adapters share: ``PolicyConnection``, ``Connections`` and ``Closed``.

An adapter supplies a small :class:`Transport` for one connection (receive a message, send
one, close, say how the peer closed) and everything else is here, so both adapters behave
the same: the ``Session`` decides, this layer does what it says and logs it.

The app creates one :class:`Connections` object for the connections it serves (admission
limit, drain, fan-out) and hands it to ``guard``: nothing is kept at module level, and two
apps in one process share nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random as _random
import secrets
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from types import FrameType, TracebackType
from typing import Any, Protocol, TypeVar

from ..actions import Accept, Close, Reject, Send
from ..arguments import callable_or_none, function, instance, positive_int, positive_number
from ..enums import Outcome
from ..metrics import Metrics
from ..outbound import decide_outbound
from ..policy import DEFAULT, Policy
from ..session import CloseEvent, Observer, Session, State
from .logs import log_close, logger

__all__ = [
    "CLOSE_READ_LIMIT",
    "CLOSE_TIMEOUT",
    "Closed",
    "Connections",
    "PolicyConnection",
    "Transport",
    "refusal_from",
    "server_max_size",
]

#: After sending a close frame, how long to keep reading for the peer's (seconds) ...
CLOSE_TIMEOUT = 5.0
#: ... and how many bytes of the peer's late messages to read and drop meanwhile.
CLOSE_READ_LIMIT = 1_048_576

_END: Any = object()  # no more messages: the connection is closing or closed


class Closed(Exception):
    """The connection is closed or closing: nothing more can be sent.

    ``PolicyConnection.send`` raises it when the peer has left, the transport dropped, or
    the policy closed the connection (say, the message was over the outbound limit). The
    ``guard`` block treats it as a normal end: no 1011, no error log, the handler just
    stops. ``code`` and ``reason`` say how it closed, as far as is known: the peer's close
    frame (``code`` is ``None`` for one without a code), or the policy's; ``frame`` is
    false when the connection dropped with no close frame at all; ``server`` is true when
    the WebSocket implementation on this side closed it by itself (with ``code``).
    """

    def __init__(
        self,
        code: int | None = None,
        reason: str = "",
        *,
        frame: bool = True,
        server: bool = False,
    ) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.frame = frame
        self.server = server


class Transport(Protocol):
    """What an adapter provides for one connection."""

    async def receive(self) -> str | bytes:
        """The next message; raises :class:`Closed` once the connection is closed."""

    async def send(self, data: str | bytes, text: bool) -> None:
        """Send one message; raises :class:`Closed` if the connection is closed."""

    async def close(self, code: int, reason: str, *, linger: bool = True) -> None:
        """Send a close frame, then (``linger``) read until the peer's close arrives, at
        most :data:`CLOSE_TIMEOUT` seconds and :data:`CLOSE_READ_LIMIT` bytes; never
        raises. Without ``linger`` (the server is going away) return once it is sent."""

    def peer_close(self) -> Closed | None:
        """The peer's close as seen so far, if any."""

    def remote(self) -> str | None:
        """The peer's address, ``"host:port"``, for the logs; ``None`` if unknown."""

    async def deliver(
        self,
        transports: Sequence[Any],
        data: str | bytes,
        text: bool,
        *,
        max_buffer: int,
        slow_after: float,
    ) -> list[Any]:
        """Send one message to many connections of this adapter (``self`` is one of them)
        without waiting on any one of them; returns those too slow to keep up: more than
        ``max_buffer`` bytes still waiting to be written once this message is queued, or,
        where the server cannot say what it buffers, a send still pending after
        ``slow_after`` seconds (cancelled)."""


def server_max_size(policy: Policy = DEFAULT) -> int:
    """The message limit to give the server: twice ``InboundPolicy.max_bytes``.

    A message over the policy's limit but within this one reaches the policy, which closes
    with its own code and reason (1009 "Message too large" under the default profile, no
    byte counts); a larger one is refused by the server itself, from its frame header,
    before it is buffered, with the server's own reason.
    """
    return 2 * instance(policy, Policy, "policy").inbound.max_bytes


async def refusal_from(
    check: Callable[[Any], Any], subject: Any, otherwise: Reject
) -> Reject | None:
    """Run a pre-upgrade ``check`` (sync or async): ``None`` to let the connection through,
    else the ``Reject`` to answer with. ``False``, or an exception (logged, never sent),
    means ``otherwise``."""
    try:
        verdict = check(subject)
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except Exception:
        logger.exception("pre-upgrade check failed")
        verdict = False
    if verdict is True:
        return None
    return verdict if isinstance(verdict, Reject) else otherwise


class PolicyConnection:
    """A connection whose every message and close goes through the policy.

    Use it as an async context manager (``guard`` builds one): leaving the block normally
    closes with ``Outcome.COMPLETED`` (1000) if still open; :class:`Closed` ends it quietly;
    another exception closes with ``Outcome.FAILED`` (1011, generic reason) and is logged
    once, at ERROR with its traceback, in the close's log line; it does not propagate, so
    the server does not log it a second time. The exception is never sent.

    ``id`` names the connection in its log records (``ws_connection``).
    """

    def __init__(
        self,
        transport: Transport,
        policy: Policy = DEFAULT,
        *,
        connections: Connections | None = None,
        observer: Observer | None = None,
    ) -> None:
        instance(policy, Policy, "policy")
        if connections is not None:
            instance(connections, Connections, "connections")
        self._transport = transport
        self._observer = callable_or_none(observer, "observer")
        self._connections = connections
        self.session = Session(policy, clock=time.monotonic, observer=self._on_event)
        self._ended = False
        self._failure: BaseException | None = None  # the handler's exception behind a 1011
        self.id = secrets.token_hex(4)

    # --- context manager -------------------------------------------------------------------

    async def __aenter__(self) -> PolicyConnection:
        connections = self._connections
        if connections is not None:
            full = connections.full
            connections._open.add(self)
            connections._report("opened")
            if connections.draining:
                await self.close(Outcome.RESTARTING)
            elif full:
                await self.close(Outcome.OVERLOADED)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            if exc is None:
                await self.close(Outcome.COMPLETED)
            elif isinstance(exc, Closed):
                pass  # the connection is over: a normal end
            elif isinstance(exc, Exception):
                close = self.session.fail(exc)
                if close is not None:
                    self._failure = exc  # logged with the close, once
                    await self._send_close(close)
                else:
                    logger.error(
                        "websocket %s handler failed after the connection closed",
                        self.id,
                        exc_info=exc,
                        extra={"ws_connection": self.id},
                    )
            else:  # cancelled or interrupted: the server is going away
                close = self.session.finish(Outcome.GOING_AWAY)
                if close is not None:  # without lingering: the server is going away
                    await asyncio.shield(self._send_close(close, linger=False))
            await self._finish()
        finally:
            if self._connections is not None:
                self._connections._open.discard(self)
        return isinstance(exc, Exception)  # handled: closed (1011 if still open) and logged

    # --- messages --------------------------------------------------------------------------

    def __aiter__(self) -> PolicyConnection:
        return self

    async def __anext__(self) -> Any:
        message = await self._next()
        if message is _END:
            raise StopAsyncIteration
        return message

    async def receive(self) -> Any | None:
        """The next validated message, or ``None`` once the connection is closing/closed."""
        message = await self._next()
        return None if message is _END else message

    async def _next(self) -> Any:
        session = self.session
        if session.state is not State.OPEN:
            return _END
        try:
            data = await self._transport.receive()
        except Closed as gone:
            self._peer_gone(gone)
            return _END
        result = session.receive(data)
        if type(result) is Accept:
            return result.message
        if isinstance(result, Close):
            await self._send_close(result)
        return _END

    async def send(self, message: object) -> None:
        """Send ``message`` through the policy.

        A message over the outbound limit is degraded or closes the connection (1009 under
        the default profile); an unserialisable one closes it (1011). Raises
        :class:`Closed` when the message was not sent because the connection is closed:
        the peer left, or the policy closed it (this very send included).
        """
        result = self.session.send(message)
        if type(result) is not Send:
            if isinstance(result, Close):
                await self._send_close(result)
            raise self._closed()
        if result.large:
            logger.warning(
                "websocket %s: large message, %d bytes",
                self.id,
                result.size,
                extra={"ws_connection": self.id, "ws_bytes": result.size},
            )
        try:
            await self._transport.send(result.data, result.text)
        except Closed as gone:
            self._peer_gone(gone)
            raise

    # --- closing ---------------------------------------------------------------------------

    async def close(
        self, outcome: Outcome | int = Outcome.COMPLETED, reason: str | None = None
    ) -> None:
        """Close with ``outcome`` (an :class:`Outcome`, or an application code in 3000-4999
        with a ``reason``) if still open; idempotent."""
        close = self.session.finish(outcome, reason)
        if close is not None:
            await self._send_close(close)

    @property
    def is_open(self) -> bool:
        return self.session.is_open

    @property
    def close_event(self) -> CloseEvent | None:
        return self.session.event

    def _closed(self) -> Closed:
        """Why nothing more can be sent: the peer's close, else ours, else a drop."""
        peer = self._transport.peer_close()
        if peer is not None:
            return peer
        ours = self.session.decided_close
        if ours is not None:
            return Closed(int(ours.code), ours.reason)
        return Closed(frame=False)

    async def _apply(self, action: Send | Close) -> bool:
        """Apply a decision made for many connections: count a ``Send`` (the caller sends
        it), or close with a ``Close``. Whether a ``Send`` is to go out."""
        result = self.session.forward(action)
        if isinstance(result, Close):
            await self._send_close(result)
        return isinstance(result, Send)

    async def _send_close(self, close: Close, *, linger: bool = True) -> None:
        await self._transport.close(int(close.code), close.reason, linger=linger)
        await self._finish()

    async def _finish(self) -> None:
        if self._ended:
            return
        self._ended = True
        gone = self._transport.peer_close()
        if gone is not None:
            self._peer_gone(gone)
        self.session.transport_closed()
        if self._connections is not None:
            self._connections._open.discard(self)

    def _peer_gone(self, gone: Closed) -> None:
        if gone.server and gone.code is not None:
            self.session.server_closed(gone.code, gone.reason)
        elif gone.frame:
            self.session.peer_closed(gone.code, gone.reason)
        else:
            self.session.transport_closed()

    def _on_event(self, event: CloseEvent) -> None:
        log_close(event, self.id, self._transport.remote(), self._failure)
        if self._connections is not None:
            self._connections._report("closed", event)
        if self._observer is not None:
            try:
                self._observer(event)
            except Exception:
                logger.exception("close observer failed")


T = TypeVar("T")


class Connections:
    """The guarded connections one app has open: an admission limit, a drain, a fan-out.

    Create one per app and pass it to ``guard(..., connections=...)``; nothing is shared
    between two ``Connections``.

    :param policy: the policy of ``broadcast`` messages (default ``Policy()``).
    :param max_open: when that many are open, a new guarded connection is accepted and
        closed with ``Outcome.OVERLOADED`` (1013); ``admit`` refuses it before the upgrade
        with HTTP 503 instead. ``None`` (default): no limit.
    :param drain_window: seconds over which ``drain`` spreads its closes (default 5.0).
    :param max_buffer: a connection with more bytes than this waiting to be written after
        a ``broadcast`` is too slow for it: it is closed with ``Outcome.OVERLOADED`` (1013)
        instead of stalling the others (default 1 MiB). Where the server cannot say (ASGI
        servers), a ``broadcast`` send still pending after ``slow_after`` seconds (default
        1.0) counts instead.
    :param random: returns a float in [0, 1), for the drain's jitter (``random.random``).
    :param metrics: where to report connections opened and closed and drains: a
        :class:`~ws_close_policy.metrics.Metrics`, such as
        ``ws_close_policy.metrics.prometheus.PrometheusMetrics()`` (default: none).
    """

    def __init__(
        self,
        policy: Policy = DEFAULT,
        *,
        max_open: int | None = None,
        drain_window: float = 5.0,
        max_buffer: int = 1_048_576,
        slow_after: float = 1.0,
        random: Callable[[], float] = _random.random,
        metrics: Metrics | None = None,
    ) -> None:
        self.policy = instance(policy, Policy, "policy")
        for method in ("opened", "closed", "drained"):
            if metrics is not None and not callable(getattr(metrics, method, None)):
                raise TypeError(f"metrics must have an {method}() method (see Metrics)")
        self.metrics = metrics
        self.max_open = None if max_open is None else positive_int(max_open, "max_open")
        self.drain_window = positive_number(drain_window, "drain_window", zero=True)
        self.max_buffer = positive_int(max_buffer, "max_buffer")
        self.slow_after = positive_number(slow_after, "slow_after")
        self._random = function(random, "random")
        self._open: set[PolicyConnection] = set()
        self._draining = False
        self._waiting: set[asyncio.Event] = set()  # one per drain still spreading its closes
        self._signal_drain: asyncio.Task[int] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[PolicyConnection]:
        return iter(list(self._open))

    @property
    def full(self) -> bool:
        """Whether ``max_open`` connections are open."""
        return self.max_open is not None and len(self._open) >= self.max_open

    @property
    def draining(self) -> bool:
        """Whether a drain has started: new connections are closed with 1012 (``guard``) or
        refused with HTTP 503 (``admit``)."""
        return self._draining

    # --- drain -----------------------------------------------------------------------------

    async def drain(
        self, outcome: Outcome | int = Outcome.RESTARTING, window: float | None = None
    ) -> int:
        """Close every open connection with ``outcome`` (1012 by default), each at a uniform
        random moment within ``window`` seconds (default ``drain_window``), so that their
        clients do not come back in one herd; returns how many it closed. From now on new
        connections are closed or refused (see :attr:`draining`). ``window=0`` closes at
        once, including the connections an earlier drain is still waiting to close."""
        spread = (
            self.drain_window if window is None else positive_number(window, "window", zero=True)
        )
        self._draining = True
        if spread == 0:
            for waiting in self._waiting:
                waiting.set()
        hurry = asyncio.Event()
        self._waiting.add(hurry)
        connections = list(self._open)
        started = time.monotonic()

        async def close_later(connection: PolicyConnection) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hurry.wait(), spread * self._random())
            await connection.close(outcome)

        try:
            await asyncio.gather(*(close_later(c) for c in connections))
        finally:
            self._waiting.discard(hurry)
        self._report("drained", time.monotonic() - started, len(connections))
        return len(connections)

    async def drain_on_signal(self, *signals: signal.Signals) -> int:
        """Wait for SIGTERM or SIGINT (or ``signals``), then drain; returns how many were
        closed. A second signal closes the rest at once. For servers whose app owns the
        event loop, such as ``websockets.serve``::

            async with serve(handler, host, port):
                await connections.drain_on_signal()
        """
        wanted = signals or (signal.SIGTERM, signal.SIGINT)
        loop = asyncio.get_running_loop()
        received = asyncio.Event()

        def on_signal() -> None:
            if received.is_set():  # a second signal: close the rest now
                self._spawn(self.drain(window=0))
            received.set()

        for sig in wanted:
            loop.add_signal_handler(sig, on_signal)
        try:
            await received.wait()
            return await self.drain()
        finally:
            for sig in wanted:
                loop.remove_signal_handler(sig)

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[dict[str, Any]]:  # noqa: ARG002
        """An ASGI lifespan (Starlette's and FastAPI's ``lifespan=``) that drains on the
        server's own SIGTERM or SIGINT, before the server closes the sockets::

            app = Starlette(routes=routes, lifespan=connections.lifespan)

        On startup it chains a handler in front of the server's signal handlers: the first
        signal starts the drain, and the server's own handler runs once every connection
        is closed (a second signal closes the rest at once). Its state holds ``connections``
        (``websocket.state.connections`` in an endpoint). On shutdown whatever is still
        open is closed at once.
        """
        restore = self._chain_signal_handlers()
        try:
            yield {"connections": self}
        finally:
            restore()
            await self.drain(window=0)

    def _chain_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            logger.debug("not in the main thread: no drain on signals")
            return lambda: None
        loop = asyncio.get_running_loop()
        # Only handlers this process can chain to: a Python callable, or the default action.
        # One installed outside Python (getsignal() gives None) or an ignored signal is left
        # alone: taking it over could keep the server from stopping.
        previous: dict[int, Any] = {
            sig: old
            for sig in (signal.SIGTERM, signal.SIGINT)
            if callable(old := signal.getsignal(sig)) or old == signal.SIG_DFL
        }
        if not previous:
            logger.debug("the server's signal handlers are not Python's: no drain on signals")

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self._on_signal, signum, frame, previous[signum])

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, old)

        return restore

    def _on_signal(self, signum: int, frame: FrameType | None, previous: Any) -> None:
        if self._signal_drain is not None and not self._signal_drain.done():
            self._spawn(self.drain(window=0))  # a second signal: close the rest now
            return
        logger.info("signal %d: draining %d websocket(s)", signum, len(self._open))
        drained = self._signal_drain = self._spawn(self.drain())
        drained.add_done_callback(lambda _: _call_handler(previous, signum, frame))

    def _report(self, what: str, *args: Any) -> None:
        """Tell the metrics, if any: a failure there is logged, never raised."""
        if self.metrics is None:
            return
        try:
            getattr(self.metrics, what)(*args)
        except Exception:
            logger.exception("metrics %s() failed", what)

    def _spawn(self, work: Awaitable[T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- fan-out ---------------------------------------------------------------------------

    async def broadcast(
        self, message: object, *, to: Iterable[PolicyConnection] | None = None
    ) -> int:
        """Send ``message`` to every open connection (or those in ``to``); returns to how
        many it went, not counting those closed as too slow.

        The message is decided and serialised once, under this object's policy: its size
        guard runs once (a message it closes for closes every target). No connection waits
        on another. A connection too slow to keep up is closed with ``Outcome.OVERLOADED``
        (1013, "try again later") in the background: on websockets, one with more than
        ``max_buffer`` bytes waiting to be written once the message is queued; on ASGI
        servers, which cannot say what they buffer, one whose send is still pending after
        ``slow_after`` seconds (that send is cancelled).
        """
        decided = decide_outbound(message, self.policy)
        targets = list(self._open if to is None else to)
        if isinstance(decided, Close):
            await asyncio.gather(*(c._apply(decided) for c in targets))
            return 0
        # Session.forward counts the message, or says the connection is closing.
        groups: dict[type, list[PolicyConnection]] = {}
        for connection in targets:
            if connection.session.forward(decided) is not None:
                groups.setdefault(type(connection._transport), []).append(connection)
        sent = 0
        for group in groups.values():
            transports = [c._transport for c in group]
            slow = await transports[0].deliver(
                transports,
                decided.data,
                decided.text,
                max_buffer=self.max_buffer,
                slow_after=self.slow_after,
            )
            sent += len(group) - len(slow)
            if slow:
                too_slow = set(slow)
                for connection in group:
                    if connection._transport in too_slow:
                        self._close_slow(connection)
        return sent

    def _close_slow(self, connection: PolicyConnection) -> None:
        logger.warning(
            "websocket %s: too slow for a broadcast, closing",
            connection.id,
            extra={"ws_connection": connection.id},
        )
        self._spawn(connection.close(Outcome.OVERLOADED))


def _call_handler(handler: Any, signum: int, frame: FrameType | None) -> None:
    """Run a signal handler as the signal would have: a callable, or the default action."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

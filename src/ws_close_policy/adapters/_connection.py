"""The per-connection driver every adapter shares: ``PolicyConnection``, ``Closed`` and the
``Transport`` an adapter implements.

An adapter translates one server's WebSocket into a :class:`Transport`: receive a message,
send one, send a close frame, say the peer's address. Everything else is here, the same on
every server: the ``Session`` decides every message and close and owns how the connection
ended; this layer does what it says, lingers for the peer's close, reads ahead to notice a
peer that left, runs a producer beside the reader, and logs each close once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Final, Protocol

from .._actions import Accept, Close, Send
from .._arguments import callable_or_none, instance
from .._enums import Outcome
from ..policy import DEFAULT, Policy
from ..session import ClosedBy, CloseEvent, Disconnect, Observer, Session, State
from ._connections import Connections
from ._logs import log_close

logger = logging.getLogger("ws_close_policy")
_OPEN = State.OPEN  # a constant: enum members are slow to look up on CPython 3.11

#: After sending a close frame, how long to wait for the peer's, reading meanwhile (seconds) ...
CLOSE_TIMEOUT: Final = 5.0
#: ... and how many bytes of the peer's late messages to read and drop meanwhile.
CLOSE_READ_LIMIT: Final = 1_048_576
#: Messages read ahead for an app that sends without reading, at most.
_INBOX: Final = 16


class _EndOfMessages:
    """No more messages: the connection is closing or closed."""


_END: Final = _EndOfMessages()


class Closed(Exception):
    """The connection is over: nothing more can be sent.

    ``send`` raises it when the peer has left, the connection dropped, or the policy closed
    it (say, the message was over the outbound limit). ``guard``'s block treats it as a
    normal end: no 1011, no error. ``event`` is the connection's :class:`CloseEvent`, the
    same on every server for the same end; ``code``, ``reason`` and ``closed_by`` are its.
    """

    def __init__(self, event: CloseEvent) -> None:
        super().__init__(event.code, event.reason)
        self.event = event

    @property
    def code(self) -> int:
        """``event.code``: the close that ended the connection."""
        return self.event.code

    @property
    def reason(self) -> str:
        """``event.reason``."""
        return self.event.reason

    @property
    def closed_by(self) -> ClosedBy:
        """``event.closed_by``: who closed first."""
        return self.event.closed_by


class Gone(Exception):
    """What an adapter's own ``receive`` or ``send`` raises once the connection is over
    (``Transport.closed`` for a server whose methods need translating): how it ended."""

    def __init__(self, disconnect: Disconnect) -> None:
        super().__init__(disconnect)
        self.disconnect = disconnect


class Translating:
    """A base for a transport whose ``receive`` and ``send`` translate the server's: they
    raise :class:`Gone`, which says how the connection ended."""

    closed: tuple[type[Exception], ...] = (Gone,)

    @staticmethod
    def disconnect(exc: Exception) -> Disconnect:
        assert isinstance(exc, Gone), exc
        return exc.disconnect


class Transport(Protocol):
    """What an adapter implements for one connection: translation, no decision.

    ``receive`` and ``send`` are called for every message, so they may be the server's own
    methods, called directly: once the connection is over they raise one of ``closed`` (a
    class attribute, a tuple of exception types), and ``disconnect`` turns that exception
    into how the connection ended: :meth:`Disconnect.from_frames` where the server reports
    the close frames (``sent`` is a frame the server sent by itself, never one this
    library asked for with ``close``; the session knows those), :meth:`Disconnect.from_code`
    where it reports a code. ``receive``, ``send`` and ``close`` are coroutines. One task at
    a time calls ``receive``. A transport whose ``send`` cannot tell that the peer left
    learns it from the read-ahead task that starts at the second send without a read: the
    third send then raises :class:`Closed`.

    Two optional members make ``broadcast`` cheaper where the server allows:
    ``write_buffer_size() -> int``, the bytes waiting to be written, so that a slow
    reader is found before sending to it; and a static method ``send_many(transports,
    data, text) -> None``, which queues one message on many transports of its class without
    waiting (skipping those closing), so that a broadcast needs no task, and no call, per
    connection.
    """

    #: The exceptions ``receive`` and ``send`` raise once the connection is over.
    closed: tuple[type[Exception], ...]

    def receive(self) -> Awaitable[str | bytes]:
        """The next message (a text frame's ``str``, a binary frame's ``bytes``); raises one
        of ``closed`` once the connection is over, on every later call too."""

    def send(self, data: str | bytes, *, text: bool) -> Awaitable[object]:
        """Send one message (``text``: as a text frame, ``bytes`` included); raises one of
        ``closed`` if the connection is over."""

    def disconnect(self, exc: Exception) -> Disconnect:
        """How the connection ended, from the exception ``receive`` or ``send`` raised."""

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame with ``code`` and ``reason`` (the server may wait for the
        peer's: the caller reads until the connection ends either way). Raises what the
        server raises if it refuses to send it; a connection already gone is no error."""

    def remote(self) -> str | None:
        """The peer's address, ``"host:port"``, for the logs; ``None`` if unknown."""


#: A transport class's optional ``send_many(transports, data, text)``.
SendMany = Callable[[list[Any], str | bytes, bool], None]


class _Inbox:
    """What the read-ahead task accepted, for the app to take, and when there is room for
    more. Made only for an app that needs it: a queue and an event cost ~3 KiB."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        self.room = asyncio.Event()  # the app took a message from a full inbox


class PolicyConnection:
    """A connection whose every message and close goes through the policy.

    Use it as an async context manager (each adapter's ``guard`` builds one). Leaving the
    block normally closes with ``Outcome.COMPLETED`` (1000) if still open; :class:`Closed`
    ends it quietly; cancellation (the server going away) closes ``Outcome.GOING_AWAY``
    (1001). Any other exception closes ``Outcome.FAILED`` (1011, the profile's generic
    reason: the exception is never sent), then propagates, so that the server logs it
    once, with its traceback, and test clients and error-tracking middleware see it. When
    the server refused to send the policy's close code (daphne sends only 1000 and
    3000-4999), leaving the block raises ``RuntimeError``, so that the server ends the
    connection its own way; a read the app is waiting in is interrupted for it when the
    close came from another task (a drain).

    ``accept``, if given, is awaited on entry: the adapter's side of the handshake, when the
    app has not done it (Starlette's ``accept``, aiohttp's ``prepare``). ``id`` names the
    connection in its log records (``ws_connection``).
    """

    def __init__(
        self,
        transport: Transport,
        policy: Policy = DEFAULT,
        *,
        connections: Connections | None = None,
        observer: Observer | None = None,
        accept: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        instance(policy, Policy, "policy")
        if connections is not None:
            instance(connections, Connections, "connections")
        self._transport = transport
        self._receive = transport.receive  # called for every message: looked up once
        self._send = transport.send
        self._gone = transport.closed
        # For Connections.broadcast: a slow reader's backlog, a batch send (optional).
        self._backlog: Callable[[], int] | None = getattr(transport, "write_buffer_size", None)
        self._send_many: SendMany | None = getattr(type(transport), "send_many", None)
        self._accept = callable_or_none(accept, "accept")
        self._connections = connections
        self._observer = callable_or_none(observer, "observer")
        self._session = Session(policy, clock=time.monotonic, observer=self._on_event)
        self._over = False  # the connection is over (its CloseEvent exists)
        self._ended: asyncio.Event | None = None  # made for a task that waits for the end
        self._deadline = 0.0  # when a close under way stops waiting for the peer's
        self._reading: asyncio.Task[Any] | None = None  # the task in transport.receive()
        self._interrupted = False  # we cancelled that task: the server refused our close
        self._sends_unread = 0  # sends since the app last read
        self._reader: asyncio.Task[None] | None = None  # reads ahead, into _inbox
        self._inbox: _Inbox | None = None  # made with the read-ahead task
        self._producer: asyncio.Task[None] | None = None
        self._failure: Exception | None = None  # the producer's, raised in the app's task
        self._refused: Exception | None = None  # why the server would not send our close
        self._entered = False
        self.id = secrets.token_hex(4)

    # --- context manager -------------------------------------------------------------------

    async def __aenter__(self) -> PolicyConnection:
        self._entered = True
        if self._accept is not None:
            await self._accept()
        if self._connections is not None:
            refused = self._connections._enter(self)
            if refused is not None:
                await self.close(refused)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            if exc is None:
                await self.close()
            elif isinstance(exc, Exception) and not isinstance(exc, Closed):
                close = self._session.fail(exc)
                if close is not None:
                    await self._close_with(close)
            elif not isinstance(exc, Exception):  # cancelled: the server is going away
                close = self._session.finish(Outcome.GOING_AWAY)
                if close is not None:  # without lingering
                    await asyncio.shield(self._close_with(close, linger=False))
        finally:
            await self._stop_tasks()
            self._end()
        task = asyncio.current_task()
        if self._interrupted and isinstance(exc, asyncio.CancelledError) and task is not None:
            task.uncancel()  # ours, not the server's: the refusal stands
            exc = None
        if exc is None or isinstance(exc, Closed):
            if self._refused is not None:
                refused = f"the server could not send the close frame: {self._refused}"
                raise RuntimeError(refused) from self._refused
            if self._failure is not None:
                raise self._failure
        return isinstance(exc, Closed)

    # --- messages --------------------------------------------------------------------------

    def __aiter__(self) -> PolicyConnection:
        return self

    def __anext__(self) -> Coroutine[Any, Any, Any]:
        # The reading coroutine itself, not a wrapper around it: this runs for every message.
        self._sends_unread = 0
        if self._reader is None:
            return self._receive_one(ahead=False)
        return self._from_inbox()

    async def receive(self) -> Any | None:
        """The next validated message, or ``None`` once the connection is closing or closed
        (an invalid message closes it with the profile's code)."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            return None

    async def send(self, message: object) -> None:
        """Send ``message`` through the policy: serialised once, measured, sent.

        A message over the outbound limit is degraded or closes the connection (1009 under
        the default profile); an unserialisable one closes it (1011). Raises
        :class:`Closed` when the message was not sent because the connection is over: the
        peer left, or the policy closed it (this very send included).
        """
        result = self._session.send(message)
        if type(result) is Send:
            if result.large:
                logger.warning(
                    "websocket %s: large message, %d bytes",
                    self.id,
                    result.size,
                    extra={"ws_connection": self.id, "ws_bytes": result.size},
                )
            # _write in line: every message takes this path, and a coroutine less counts.
            if self._reader is None and self._reading is None:
                self._sent_unread()
            try:
                await self._send(result.data, text=result.text)
            except self._gone as exc:
                raise await self._gone_while_sending(exc) from None
            return
        if isinstance(result, Close):
            await self._close_with(result)
        raise await self._closed()

    async def forward(self, action: Send | Close) -> None:
        """Apply an outbound decision made elsewhere, once for many connections
        (``Connections.broadcast``): a ``Send`` goes out as it is, never serialised or
        measured again; a ``Close`` closes the connection. Raises :class:`Closed` as
        ``send`` does."""
        result = self._session.forward(action)
        if isinstance(result, Send):
            await self._write(result)
            return
        if result is not None:
            await self._close_with(result)
        raise await self._closed()

    def run(self, producer: Coroutine[Any, Any, Outcome | int | None]) -> PolicyConnection:
        """Run ``producer`` (a job pushing messages) in a task of its own while this task
        reads the client's messages; iterate the result for them::

            async for message in conn.run(job(conn)):
                if message["type"] == "cancel":
                    await conn.close(Outcome.CANCELLED)  # 1001; the job is cancelled

        - When the producer returns, the connection closes with what it returned: an
          :class:`Outcome` or an application code, ``None`` for ``Outcome.COMPLETED``
          (1000). A close it made itself stands.
        - An exception in it closes ``Outcome.FAILED`` (1011, the generic reason) and is
          raised here, from the loop, as if the handler had raised it (it propagates to the
          server, which logs it once).
        - The client leaving, an invalid message, a drain, or any other close cancels it.
          The ``guard`` block never ends before the producer has.
        """
        if not self._entered:
            raise RuntimeError("run() needs the connection's guard block: async with guard(...)")
        if self._producer is not None:
            raise RuntimeError("a producer is already running on this connection")
        if not inspect.iscoroutine(producer):
            raise TypeError(f"producer must be a coroutine, not {type(producer).__name__}")
        if self._over:  # over already (say, refused on entry): nothing to produce
            producer.close()
            return self
        self._producer = asyncio.ensure_future(self._produce(producer))
        if self._reader is None:  # read in a task of ours, which an end can always stop
            self._start_read_ahead()
        return self

    # --- closing ---------------------------------------------------------------------------

    async def close(
        self, outcome: Outcome | int = Outcome.COMPLETED, reason: str | None = None
    ) -> bool:
        """Close with ``outcome`` (an :class:`Outcome`, or an application code in 3000-4999
        with a ``reason``) if still open; whether this call closed it (``False`` when the
        connection was already closing or closed)."""
        close = self._session.finish(outcome, reason)
        if close is None:
            return False
        await self._close_with(close)
        return True

    @property
    def policy(self) -> Policy:
        """The connection's :class:`~ws_close_policy.Policy`."""
        return self._session.policy

    @property
    def is_open(self) -> bool:
        """Whether the connection is open: no close decided or under way, not over."""
        return self._session.state is _OPEN

    @property
    def close_event(self) -> CloseEvent | None:
        """The :class:`CloseEvent` once the connection is over, else ``None``."""
        return self._session.event

    # --- reading ---------------------------------------------------------------------------

    async def _from_inbox(self) -> Any:
        """The next message the read-ahead task accepted (``StopAsyncIteration`` at the
        end)."""
        inbox = self._inbox
        assert inbox is not None  # made with the reader
        message = await inbox.messages.get()
        if message is _END:
            inbox.messages.put_nowait(_END)  # for every later read too
        inbox.room.set()
        if message is _END:
            self._stop()
        return message

    async def _receive_one(self, *, ahead: bool) -> Any:
        """Read until a message is accepted; an invalid one closes the connection with its
        code. At the end: ``_END`` for the read-ahead task (``ahead``), else
        ``StopAsyncIteration``."""
        session = self._session
        while session.state is _OPEN:
            self._reading = asyncio.current_task()
            try:
                data = await self._receive()
            except self._gone as exc:
                self._end(self._transport.disconnect(exc))
                break
            finally:
                self._reading = None
            result = session.receive(data)
            if type(result) is Accept:
                return result.message
            if isinstance(result, Close):
                await self._close_with(result)
        else:
            await self._linger()
        if not ahead:
            self._stop()
        return _END

    async def _read(self) -> str | bytes | Disconnect:
        """The next message as it came, or how the connection ended."""
        self._reading = asyncio.current_task()
        try:
            return await self._receive()
        except self._gone as exc:
            return self._transport.disconnect(exc)
        finally:
            self._reading = None

    async def _read_ahead(self) -> None:
        """The app sends without reading: read for it, so that a peer that left shows up
        by the next send on every server (some report a departure only when read)."""
        inbox = self._inbox
        assert inbox is not None  # made with this task
        try:
            while (message := await self._receive_one(ahead=True)) is not _END:
                inbox.messages.put_nowait(message)
                while inbox.messages.qsize() >= _INBOX and self._session.state is _OPEN:
                    inbox.room.clear()
                    await inbox.room.wait()  # the app reads slower than the peer sends
        except Exception as exc:  # the transport failed: as if the handler had
            await self._fail(exc)
        finally:
            inbox.messages.put_nowait(_END)

    def _stop(self) -> None:
        """No more messages for the app: the failure of a task of ours, if any, is raised
        in its task instead."""
        if self._failure is not None:
            raise self._failure
        raise StopAsyncIteration

    # --- writing ---------------------------------------------------------------------------

    async def _write(self, send: Send) -> None:
        if self._reader is None and self._reading is None:
            self._sent_unread()
        try:
            await self._send(send.data, text=send.text)
        except self._gone as exc:
            raise await self._gone_while_sending(exc) from None

    def _sent_unread(self) -> None:
        """A send while nobody reads: from the second in a row, read ahead, so that a peer
        that left is noticed (some servers report a departure only when read)."""
        self._sends_unread += 1
        if self._sends_unread > 1:
            self._start_read_ahead()

    def _start_read_ahead(self) -> None:
        self._inbox = _Inbox()
        self._reader = asyncio.ensure_future(self._read_ahead())

    async def _gone_while_sending(self, exc: Exception) -> Closed:
        self._end(self._transport.disconnect(exc))
        return await self._closed()

    async def _closed(self) -> Closed:
        """The exception for a connection that is over, once it is (a close under way in
        another task ends within its own bound)."""
        await self._until_over()
        return Closed(self._session.ended())

    # --- ending ----------------------------------------------------------------------------

    async def _close_with(self, close: Close, *, linger: bool = True) -> None:
        """Send ``close``, then (``linger``) read until the peer's close arrives, at most
        CLOSE_TIMEOUT seconds and CLOSE_READ_LIMIT bytes in all, so that messages it sent
        before it saw ours cannot make the server lose our close frame."""
        self._deadline = asyncio.get_running_loop().time() + CLOSE_TIMEOUT
        self._cancel(self._producer)
        if self._inbox is not None:
            self._inbox.room.set()  # a reader waiting for room reads on, to the peer's close
        try:
            async with asyncio.timeout_at(self._deadline):
                await self._transport.close(int(close.code), close.reason)
        except TimeoutError:
            logger.debug("websocket %s: the close frame was not sent in time", self.id)
        except Exception as exc:  # the server refused it: end without it
            logger.warning(
                "websocket %s: the server could not send close code %d: %s",
                self.id,
                close.code,
                exc,
                extra={"ws_connection": self.id},
            )
            self._refused = exc
            linger = False
            self._interrupt_reading()
        try:
            if linger:
                await self._linger()
        finally:
            self._end()

    async def _linger(self) -> None:
        """Until the connection is over: read and drop until the transport reports the end,
        or wait for the task that is reading; bounded by the close's deadline."""
        current = asyncio.current_task()
        dropped = 0
        deadline = self._deadline or asyncio.get_running_loop().time() + CLOSE_TIMEOUT
        try:
            async with asyncio.timeout_at(deadline):
                while not self._over and dropped <= CLOSE_READ_LIMIT:
                    reader = self._reader
                    if self._reading or (reader not in (None, current) and not reader.done()):
                        await self._until_over()  # the reading task will see the end
                        return
                    item = await self._read()
                    if isinstance(item, Disconnect):
                        self._end(item)
                        return
                    dropped += len(item)
        except TimeoutError:
            logger.debug("websocket %s: no close frame from the peer in time", self.id)
        self._end()

    async def _until_over(self) -> None:
        """Wait for the end, made by another task (an event only for a connection that
        needs one: each costs ~0.6 KiB)."""
        if not self._over:
            if self._ended is None:
                self._ended = asyncio.Event()
            await self._ended.wait()

    def _interrupt_reading(self) -> None:
        """The server refused our close and keeps the connection open: a task of the app
        waiting in ``receive`` (this close came from another task, a drain say) would wait
        for the client forever. Cancel it; its block raises the refusal (``__aexit__``)."""
        reading = self._reading
        if reading is not None and reading is not asyncio.current_task():
            if reading is self._reader:
                return  # our own read-ahead task: _end stops it
            self._interrupted = True
            reading.cancel()

    def _end(self, disconnect: Disconnect | None = None) -> None:
        """The connection is over: record how, once (the session's ``CloseEvent``), and stop
        what works for it."""
        if self._over:
            return
        self._session.ended(disconnect)
        self._over = True
        if self._ended is not None:
            self._ended.set()
        if self._connections is not None:
            self._connections._leave(self)
        self._cancel(self._producer)
        self._cancel(self._reader)

    async def _produce(self, producer: Coroutine[Any, Any, Outcome | int | None]) -> None:
        try:
            outcome = await producer
            await self.close(Outcome.COMPLETED if outcome is None else outcome)
        except Closed:
            return  # the connection is over
        except Exception as exc:
            await self._fail(exc)

    async def _fail(self, exc: Exception) -> None:
        """A task of this connection failed: close 1011; the app's task raises ``exc``."""
        self._failure = exc
        close = self._session.fail(exc)
        if close is not None:
            await self._close_with(close)

    @staticmethod
    def _cancel(task: asyncio.Task[None] | None) -> None:
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _stop_tasks(self) -> None:
        """No task of this connection outlives it."""
        tasks = [t for t in (self._producer, self._reader) if t is not None]
        for task in tasks:
            self._cancel(task)
        if tasks:
            await asyncio.wait(tasks)

    def _on_event(self, event: CloseEvent) -> None:
        log_close(event, self.id, self._transport.remote())
        if self._connections is not None:
            self._connections._report("closed", event)
        if self._observer is not None:
            try:
                self._observer(event)
            except Exception:
                logger.exception("close observer failed")

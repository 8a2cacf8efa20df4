"""The async layer both adapters share: ``PolicyConnection``, the open-connection registry
and ``drain``.

An adapter supplies a small :class:`Transport` (receive a message, send one, send a close
frame, wait until closed) and everything else is here, so both adapters behave the same:
the ``Session`` decides, this layer does what it says and logs it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random as _random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

from ..actions import Accept, Close, Reject, Send
from ..enums import Outcome
from ..policy import DEFAULT, Policy
from ..session import CloseEvent, Observer, Session, State

__all__ = [
    "PeerGone",
    "PolicyConnection",
    "Registry",
    "Transport",
    "logger",
    "positive_limit",
    "refusal_from",
]

logger = logging.getLogger("ws_close_policy")

_END: Any = object()  # no more messages: the connection is closing or closed


def positive_limit(value: object, name: str = "max_connections") -> int:
    """``value`` if it is a positive int, else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


async def refusal_from(
    check: Callable[[Any], Any], subject: Any, unauthorized: Reject
) -> Reject | None:
    """Run a pre-upgrade ``check`` (sync or async): ``None`` to let the connection through,
    else the ``Reject`` to answer with. ``False`` and an exception (logged, never sent)
    mean ``unauthorized``."""
    try:
        verdict = check(subject)
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except Exception:
        logger.exception("authentication check failed")
        verdict = False
    if verdict is True:
        return None
    return verdict if isinstance(verdict, Reject) else unauthorized


class PeerGone(Exception):
    """Raised by a transport when the connection is closed; carries the peer's close."""

    def __init__(self, code: int | None = None, reason: str = "", *, frame: bool = True) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.frame = frame  # False: the connection dropped with no close frame


class Transport(Protocol):
    """What an adapter provides for one connection."""

    async def receive(self) -> str | bytes:
        """The next message; raises :class:`PeerGone` once the connection is closed."""

    async def send(self, data: str | bytes, text: bool) -> None:
        """Send one message; raises :class:`PeerGone` if the connection is closed."""

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame and finish the closing handshake; never raises."""

    def peer_close(self) -> PeerGone | None:
        """The peer's close as seen so far, if any (after ``close`` returned)."""


class Registry:
    """The guarded connections that are open, for admission limits and ``drain``."""

    def __init__(self) -> None:
        self.open: set[PolicyConnection] = set()

    def __len__(self) -> int:
        return len(self.open)

    async def drain(
        self,
        outcome: Outcome = Outcome.RESTARTING,
        window: float = 5.0,
        *,
        random: Callable[[], float] = _random.random,
    ) -> int:
        """Close every open connection with ``outcome``, spread uniformly over ``window``
        seconds so their clients do not reconnect in one herd; returns how many it closed.
        """
        if not window >= 0:
            raise ValueError(f"window must be >= 0 seconds, got {window!r}")
        connections = list(self.open)

        async def close_later(connection: PolicyConnection) -> None:
            await asyncio.sleep(window * random())
            await connection.close(outcome)

        await asyncio.gather(*(close_later(c) for c in connections))
        return len(connections)


def _log_close(event: CloseEvent) -> None:
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "websocket closed: %s %s by %s after %.3f s (%d in, %d out)",
            event.code,
            event.label,
            event.closed_by,
            event.duration,
            event.messages_in,
            event.messages_out,
        )


class PolicyConnection:
    """A connection whose every message and close goes through the policy.

    Use it as an async context manager: leaving the block normally closes with
    ``Outcome.COMPLETED`` (1000) if still open; an exception closes with ``Outcome.FAILED``
    (1011, generic reason; the exception is logged, never sent) and propagates.
    """

    def __init__(
        self,
        transport: Transport,
        policy: Policy = DEFAULT,
        *,
        observer: Observer | None = None,
        registry: Registry,
        max_connections: int | None = None,
    ) -> None:
        if max_connections is not None:
            positive_limit(max_connections)
        self._transport = transport
        self._observer = observer
        self._registry = registry
        self._max_connections = max_connections
        self.session = Session(policy, clock=time.monotonic, observer=self._on_event)
        self._ended = False

    # --- context manager -------------------------------------------------------------------

    async def __aenter__(self) -> PolicyConnection:
        full = self._max_connections is not None and len(self._registry) >= self._max_connections
        self._registry.open.add(self)
        if full:
            await self.close(Outcome.OVERLOADED)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                await self.close(Outcome.COMPLETED)
            elif isinstance(exc, Exception):
                logger.error("websocket handler failed", exc_info=exc)
                close = self.session.fail(exc)
                if close is not None:
                    await self._send_close(close)
            else:  # cancelled or interrupted: the server is going away
                await asyncio.shield(self.close(Outcome.GOING_AWAY))
            await self._finish()
        finally:
            self._registry.open.discard(self)

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
        except PeerGone as gone:
            self._peer_gone(gone)
            return _END
        result = session.receive(data)
        if type(result) is Accept:
            return result.message
        if isinstance(result, Close):
            await self._send_close(result)
        return _END

    async def send(self, message: object) -> bool:
        """Send ``message`` through the policy; ``False`` if it was not sent.

        A message over the outbound limit is degraded or closes the connection (1009 under
        the default profile); an unserialisable one closes it (1011). A send after the peer
        left returns ``False`` rather than raising.
        """
        result = self.session.send(message)
        if type(result) is not Send:
            if isinstance(result, Close):
                await self._send_close(result)
            return False
        if result.large:
            logger.warning("large websocket message: %d bytes", result.size)
        try:
            await self._transport.send(result.data, result.text)
        except PeerGone as gone:
            self._peer_gone(gone)
            return False
        return True

    # --- closing ---------------------------------------------------------------------------

    async def close(self, outcome: Outcome = Outcome.COMPLETED, reason: str | None = None) -> None:
        """Close with ``outcome`` (and optionally a custom reason) if still open."""
        close = self.session.finish(outcome, reason)
        if close is not None:
            await self._send_close(close)

    @property
    def is_open(self) -> bool:
        return self.session.is_open

    @property
    def close_event(self) -> CloseEvent | None:
        return self.session.event

    async def _send_close(self, close: Close) -> None:
        await self._transport.close(close.code, close.reason)
        await self._finish()

    async def _finish(self) -> None:
        if self._ended:
            return
        self._ended = True
        gone = self._transport.peer_close()
        if gone is not None:
            self._peer_gone(gone)
        self.session.transport_closed()
        self._registry.open.discard(self)

    def _peer_gone(self, gone: PeerGone) -> None:
        if gone.frame:
            self.session.peer_closed(gone.code, gone.reason)
        else:
            self.session.transport_closed()

    def _on_event(self, event: CloseEvent) -> None:
        _log_close(event)
        if self._observer is not None:
            try:
                self._observer(event)
            except Exception:
                logger.exception("close observer failed")

"""``Session``: one connection's state machine, and the one owner of how it ended.

States: ``OPEN -> CLOSING -> CLOSED`` (or ``OPEN -> CLOSED`` when the peer closes first or
the transport drops). The session closes at most once; once it has decided to close it
returns ``None`` for everything it is asked to receive, send or finish.

How the connection ended is decided here, once: either the session closed first (it
decided a ``Close``: ``closed_by="local"``), or the transport reports how the connection
ended under it, as a :class:`Disconnect` that this module classifies from what the
transport saw. :meth:`Session.ended` turns that into the one :class:`CloseEvent` the
observer, the logs, the metrics and the adapters' ``Closed`` exception all carry.

It is sans-IO: the adapter reads frames, asks the session, and does what it answers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from ._actions import Accept, Close, Send
from ._arguments import callable_or_none, instance
from ._enums import Outcome, Violation
from ._inbound import decide_inbound
from ._outbound import decide_outbound
from .codes import CloseCode, close_label, code_info
from .lifecycle import close_for
from .policy import DEFAULT, Policy

__all__ = ["ClosedBy", "Disconnect", "Observer", "State"]


class State(enum.Enum):
    """Where a session is: ``OPEN``, ``CLOSING`` (it decided to close: a close frame is due
    or on its way) or ``CLOSED`` (the connection is over; its ``CloseEvent`` exists)."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# Read on every message: a module constant is ~30x cheaper than State.OPEN on CPython 3.11,
# where an enum member is looked up through a descriptor.
_OPEN = State.OPEN

#: Who closed the connection first: ``"local"`` this library (the policy, or the app
#: through it); ``"peer"`` the other end; ``"server"`` the WebSocket implementation on this
#: side, by itself (a size limit of its own, a framing error it caught, its shutdown);
#: ``"transport"`` nobody: the connection dropped without a close frame.
ClosedBy = Literal["local", "peer", "server", "transport"]

_ABNORMAL = int(CloseCode.ABNORMAL_CLOSURE)
_NO_STATUS = int(CloseCode.NO_STATUS_RCVD)


@dataclass(frozen=True, slots=True)
class Disconnect:
    """How a connection ended under the session, as its transport reported it.

    ``Disconnect()`` is a drop the transport saw itself (no close frame: 1006). A transport
    that reports close frames builds one with :meth:`from_frames`; one that reports only a
    code (ASGI servers, aiohttp) with :meth:`from_code`. Those two classify what the
    transport saw, once, for every adapter: ``closed_by`` is ``"peer"``, ``"server"`` or
    ``"transport"`` (see :data:`ClosedBy`), ``code`` and ``reason`` are the close that ended
    it, and ``inferred`` is true when ``closed_by`` was read from a code alone.
    """

    closed_by: Literal["peer", "server", "transport"] = "transport"
    code: int = _ABNORMAL
    reason: str = ""
    inferred: bool = False

    @classmethod
    def from_frames(
        cls,
        received: tuple[int, str] | None,
        sent: tuple[int, str] | None,
        received_first: bool | None = None,
    ) -> Disconnect:
        """From the close frames the transport saw: ``received`` from the peer (code 1005
        for one without a code), ``sent`` by this side's WebSocket implementation, each
        ``(code, reason)`` or ``None``, and, when both exist, whether the peer's came first.

        The first frame decides: this side's implementation (``"server"``) when it sent
        first, the peer when its frame came first, a drop when there was none.
        """
        if sent is not None and (received is None or received_first is False):
            return cls("server", int(sent[0]), sent[1])
        if received is not None:
            return cls("peer", int(received[0]), received[1])
        return cls()

    @classmethod
    def from_code(cls, code: int | None, reason: str = "") -> Disconnect:
        """From the one code a server reports for the end (an ASGI disconnect's ``code``),
        which does not say who sent it: ``None`` or 1006 is a drop, 1005 a peer's close
        without a code, a code only servers send (1011-1014) this side's server's own
        close, any other the peer's. Always ``inferred``."""
        if not isinstance(code, int) or code == _ABNORMAL:
            return cls(inferred=True)
        code = int(code)  # a plain int, as from_frames gives, whatever IntEnum a server used
        if code == _NO_STATUS:
            return cls("peer", code, "", inferred=True)
        info = code_info(code)
        if info is not None and info.sent_by == "server":
            return cls("server", code, reason or "", inferred=True)
        return cls("peer", code, reason or "", inferred=True)


#: Why this side's server closed by itself, where its code says it.
_SERVER_VIOLATIONS: dict[int, Violation] = {
    CloseCode.MESSAGE_TOO_BIG: Violation.TOO_BIG,
    CloseCode.INVALID_DATA: Violation.INVALID_UTF8,
}
_SERVER_OUTCOMES: dict[int, Outcome] = {
    CloseCode.GOING_AWAY: Outcome.GOING_AWAY,
    CloseCode.SERVICE_RESTART: Outcome.RESTARTING,
    CloseCode.TRY_AGAIN_LATER: Outcome.OVERLOADED,
}


@dataclass(frozen=True, slots=True)
class CloseEvent:
    """How one connection ended: for the app (``Closed.event``), logs and metrics.

    - ``code``, ``label``, ``reason``: the close that ended it: ours when we closed first,
      the peer's when it did (1005 when its close frame had no code), the server's when it
      closed by itself, 1006 when the connection dropped with no close frame. ``label`` is
      ``codes.close_label(code)``, a bounded metric label.
    - ``closed_by``: who closed first, one of :data:`ClosedBy`.
    - ``inferred``: true when the server reported only a code and ``closed_by`` was read
      from it (every ASGI server; websockets and aiohttp report the frames); some hide the
      truth there, e.g. hypercorn reports every client close as 1006 (docs/adapters.md).
    - ``violation``, ``outcome``, ``detail``: why, when we closed (``detail`` is for
      operators, never sent), and, where the code says it, when the server did (1009 is
      ``Violation.TOO_BIG``, 1007 ``Violation.INVALID_UTF8``, 1012 ``Outcome.RESTARTING``).
    - ``duration``: seconds from the session's clock (``None`` when it was given none).
    - ``messages_in`` and ``bytes_in``: messages received and their bytes, as the decision
      measured them (a refused text message counts its length in characters, a lower bound
      for non-ASCII text, so that it is never copied to be counted); ``messages_out`` and
      ``bytes_out``: what the policy let through to the transport, including a last send
      the transport could not deliver because the peer had left.
    """

    code: int
    label: str
    reason: str
    closed_by: ClosedBy
    inferred: bool
    violation: Violation | None
    outcome: Outcome | None
    detail: str | None
    duration: float | None
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int


#: What observes a session: called once with its ``CloseEvent``.
Observer = Callable[[CloseEvent], None]


class Session:
    """One connection's policy state. Not thread-safe: one session per connection.

    :param policy: the endpoint's :class:`~ws_close_policy.Policy` (default ``Policy()``).
    :param clock: returns seconds (e.g. ``time.monotonic``), for the event's duration; the
        session reads no clock of its own, so without one ``CloseEvent.duration`` is ``None``.
        The adapters pass ``time.monotonic``.
    :param observer: called once with the :class:`CloseEvent` when the connection is over.
        An exception it raises is kept in ``observer_error``, never propagated.
    """

    def __init__(
        self,
        policy: Policy = DEFAULT,
        *,
        clock: Callable[[], float] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.policy = instance(policy, Policy, "policy")
        self._clock = callable_or_none(clock, "clock")
        self._observer = callable_or_none(observer, "observer")
        self._started = clock() if clock is not None else None
        self.state = State.OPEN
        self.event: CloseEvent | None = None
        self.observer_error: BaseException | None = None
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self._decided: Close | None = None  # the close we decided on, if we closed first

    # --- messages --------------------------------------------------------------------------

    def receive(self, data: str | bytes) -> Accept | Close | None:
        """Decide on a received message; ``None`` once closing (the message is ignored)."""
        if self.state is not _OPEN:
            return None
        self.messages_in += 1
        result = decide_inbound(data, self.policy)
        if isinstance(result, Close):
            self.bytes_in += len(data)  # never copied to be counted, even if it is huge
            return self._close_first(result)
        self.bytes_in += result.size
        return result

    def send(self, message: object) -> Send | Close | None:
        """Decide on an outgoing message; ``None`` once closing (nothing may be sent)."""
        if self.state is not _OPEN:
            return None
        result = decide_outbound(message, self.policy)
        if isinstance(result, Close):
            return self._close_first(result)
        self.messages_out += 1
        self.bytes_out += result.size
        return result

    def forward(self, action: Send | Close) -> Send | Close | None:
        """Apply an outbound decision made elsewhere (one decision for a fan-out to many
        sessions): a ``Send`` is counted and returned, a ``Close`` closes this session and
        is returned; ``None`` once closing (nothing may be sent)."""
        if self.state is not _OPEN:
            return None
        if type(action) is Send:  # a fan-out calls this once per session: Send first
            return self._count(action)
        return self._close_first(instance(action, Close, "action"))

    @staticmethod
    def forward_many(sessions: Iterable[Session], send: Send) -> int:
        """``forward(send)`` for many sessions in one pass (a fan-out decided once): counts
        ``send`` in each open one; returns how many, leaving out those closing."""
        instance(send, Send, "send")
        size, counted = send.size, 0
        for session in sessions:
            if session.state is _OPEN:
                session.messages_out += 1
                session.bytes_out += size
                counted += 1
        return counted

    # --- ending ----------------------------------------------------------------------------

    def finish(
        self, outcome: Outcome | int = Outcome.COMPLETED, reason: str | None = None
    ) -> Close | None:
        """Close for ``outcome``: an :class:`Outcome` (completed by default, cancelled ...)
        or an application code in 3000-4999 with its ``reason`` (see :func:`close_for`).
        ``None`` if already closing."""
        close = close_for(outcome, self.policy, reason)
        if self.state is not _OPEN:
            return None
        return self._close_first(close)

    def fail(self, exc: BaseException) -> Close | None:
        """Close because the handler failed: the profile's ``FAILED`` code (1011 by default).

        The reason is the profile's generic one; the exception only reaches ``detail``.
        """
        if self.state is not _OPEN:
            return None
        detail = f"{type(exc).__name__}: {exc}"[:200]
        return self._close_first(close_for(Outcome.FAILED, self.policy, detail=detail))

    def ended(self, disconnect: Disconnect | None = None) -> CloseEvent:
        """The connection is over: its :class:`CloseEvent`, made once (later calls return
        the same one) and handed to the observer.

        When the session closed first (it decided a ``Close``) the event says so
        (``closed_by="local"``, our code), whatever the transport saw afterwards. Otherwise
        ``disconnect`` says how the connection ended; ``None`` is a drop (``Disconnect()``).
        """
        if self.event is None:
            self.state = State.CLOSED
            self.event = self._make_event(disconnect or _DROPPED)
            if self._observer is not None:
                try:
                    self._observer(self.event)
                except Exception as exc:  # a broken metrics hook must not break the connection
                    self.observer_error = exc
        return self.event

    @property
    def is_open(self) -> bool:
        """Whether the session is ``OPEN``: it has not decided to close, nor ended."""
        return self.state is _OPEN

    # --- internals -------------------------------------------------------------------------

    def _count(self, send: Send) -> Send:
        self.messages_out += 1
        self.bytes_out += send.size
        return send

    def _close_first(self, close: Close) -> Close:
        self.state = State.CLOSING
        self._decided = close
        return close

    def _duration(self) -> float | None:
        if self._clock is None or self._started is None:
            return None
        return max(0.0, self._clock() - self._started)

    def _make_event(self, disconnect: Disconnect) -> CloseEvent:
        close = self._decided
        if close is not None:
            closed_by: ClosedBy = "local"
            code, reason, inferred = int(close.code), close.reason, False
            violation, outcome, detail = close.violation, close.outcome, close.detail
        else:
            closed_by, code, reason = disconnect.closed_by, disconnect.code, disconnect.reason
            inferred, detail = disconnect.inferred, None
            server = closed_by == "server"
            violation = _SERVER_VIOLATIONS.get(code) if server else None
            outcome = _SERVER_OUTCOMES.get(code) if server else None
        return CloseEvent(
            code=code,
            label=close_label(code),
            reason=reason,
            closed_by=closed_by,
            inferred=inferred,
            violation=violation,
            outcome=outcome,
            detail=detail,
            duration=self._duration(),
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
        )


_DROPPED = Disconnect()

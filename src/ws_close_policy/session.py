"""``Session``: one connection's state machine, composing the decisions.

States: ``OPEN -> CLOSING -> CLOSED`` (or ``OPEN -> CLOSED`` when the peer closes first or
the transport drops). The session closes at most once; once it has decided to close it
returns ``None`` for everything it is asked to receive, send or finish. When the connection
is over it hands one :class:`CloseEvent` to the observer.

It is sans-IO: the adapter reads frames, asks the session, and does what it answers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .actions import Accept, Close, Send
from .arguments import callable_or_none, instance
from .codes import CloseCode, close_label
from .enums import Outcome, Violation
from .inbound import decide_inbound
from .lifecycle import close_for
from .outbound import decide_outbound
from .policy import DEFAULT, Policy

__all__ = ["CloseEvent", "ClosedBy", "Observer", "Session", "State"]


class State(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"  # we sent (or must send) a close frame; waiting for the peer's
    CLOSED = "closed"


#: Who closed first: ``"local"`` this library (the policy, or the app through it);
#: ``"peer"`` the other end; ``"server"`` the WebSocket implementation on this side, by itself
#: (a limit of its own, a framing error it caught, its shutdown); ``"transport"`` nobody:
#: the connection dropped without a close frame.
ClosedBy = Literal["local", "peer", "server", "transport"]

#: Why a server's own close happened, where its code says it.
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
    """How one connection ended, for logs and metrics.

    ``code`` is the code that ended it: ours when we closed first, the peer's when it did
    (1005 when its close frame had no code), the server's when it closed by itself, 1006
    when the transport dropped with no close. ``reason`` is what was on the wire.
    ``violation``, ``outcome`` and ``detail`` say why when we closed, and, where the code
    says it, when the server did (1009 is ``Violation.TOO_BIG``, 1007
    ``Violation.INVALID_UTF8``, 1012 ``Outcome.RESTARTING``). ``closed_by`` says who closed
    first (see :data:`ClosedBy`). ``duration`` is in seconds, from the
    session's clock (``None`` when it was given none). ``messages_out`` and ``bytes_out``
    count what the policy let through to the transport, including a last send the
    transport could not deliver because the peer had left.
    """

    code: int
    label: str
    reason: str
    closed_by: ClosedBy
    violation: Violation | None
    outcome: Outcome | None
    detail: str | None
    duration: float | None
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int


Observer = Callable[[CloseEvent], None]


def _size(data: str | bytes) -> int:
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    return len(data)


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
        self.decided_close: Close | None = None  # the close we decided on, if we closed first
        self.event: CloseEvent | None = None
        self.observer_error: BaseException | None = None
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self._peer: tuple[int, str] | None = None
        self._closed_by: ClosedBy | None = None

    # --- messages --------------------------------------------------------------------------

    def receive(self, data: str | bytes) -> Accept | Close | None:
        """Decide on a received message; ``None`` once closing (the message is ignored)."""
        if self.state is not State.OPEN:
            return None
        self.messages_in += 1
        self.bytes_in += _size(data)
        result = decide_inbound(data, self.policy)
        if type(result) is Close:
            return self._close_first(result)
        return result

    def send(self, message: object) -> Send | Close | None:
        """Decide on an outgoing message; ``None`` once closing (nothing may be sent)."""
        if self.state is not State.OPEN:
            return None
        result = decide_outbound(message, self.policy)
        if type(result) is Close:
            return self._close_first(result)
        assert isinstance(result, Send)
        self.messages_out += 1
        self.bytes_out += result.size
        return result

    # --- ending ----------------------------------------------------------------------------

    def finish(self, outcome: Outcome | int, reason: str | None = None) -> Close | None:
        """Close for ``outcome``: an :class:`Outcome` (completed, cancelled ...) or an
        application code in 3000-4999 with its ``reason`` (see :func:`close_for`).
        ``None`` if already closing."""
        close = close_for(outcome, self.policy, reason)
        if self.state is not State.OPEN:
            return None
        return self._close_first(close)

    def forward(self, action: Send | Close) -> Send | Close | None:
        """Apply an outbound decision made elsewhere (one decision for a fan-out to many
        sessions): a ``Send`` is counted and returned, a ``Close`` closes this session and
        is returned; ``None`` once closing (nothing may be sent)."""
        if self.state is not State.OPEN:
            return None
        if type(action) is not Send:  # a fan-out calls this once per session: Send first
            if isinstance(action, Close):
                return self._close_first(action)
            instance(action, Send, "action")
        self.messages_out += 1
        self.bytes_out += action.size
        return action

    def fail(self, exc: BaseException) -> Close | None:
        """Close because the handler failed: the profile's ``FAILED`` code (1011 by default).

        The reason is the profile's generic one; the exception only reaches ``detail``.
        """
        if self.state is not State.OPEN:
            return None
        detail = f"{type(exc).__name__}: {exc}"[:200]
        return self._close_first(close_for(Outcome.FAILED, self.policy, detail=detail))

    def peer_closed(self, code: int | None, reason: str = "") -> None:
        """The peer's close frame arrived (``code=None``: it carried no code, i.e. 1005)."""
        if self._peer is None:
            self._peer = (CloseCode.NO_STATUS_RCVD if code is None else code, reason)
        if self.state is State.OPEN:
            self._closed_by = "peer"
        self._end()

    def server_closed(self, code: int, reason: str = "") -> None:
        """The WebSocket implementation on this side closed the connection by itself with
        ``code`` (a size limit of its own, a framing error it caught, its shutdown)."""
        if self.state is State.OPEN and self._peer is None:
            self._closed_by = "server"
            self._peer = (code, reason)
        self._end()

    def transport_closed(self) -> None:
        """The connection is gone. Idempotent; emits the ``CloseEvent`` if not yet done."""
        if self.state is State.OPEN and self._peer is None:
            self._closed_by = "transport"
        self._end()

    @property
    def is_open(self) -> bool:
        return self.state is State.OPEN

    # --- internals -------------------------------------------------------------------------

    def _close_first(self, close: Close) -> Close:
        self.state = State.CLOSING
        self.decided_close = close
        self._closed_by = "local"
        return close

    def _end(self) -> None:
        if self.event is not None:
            return
        self.state = State.CLOSED
        self.event = self._make_event()
        if self._observer is not None:
            try:
                self._observer(self.event)
            except Exception as exc:  # a broken metrics hook must not break the connection
                self.observer_error = exc

    def _duration(self) -> float | None:
        if self._clock is None or self._started is None:
            return None
        return max(0.0, self._clock() - self._started)

    def _make_event(self) -> CloseEvent:
        closed_by = self._closed_by or "transport"
        close = self.decided_close
        if closed_by == "local" and close is not None:
            code, reason = int(close.code), close.reason
        elif self._peer is not None:
            code, reason = int(self._peer[0]), self._peer[1]
        else:
            code, reason = int(CloseCode.ABNORMAL_CLOSURE), ""
        violation = close.violation if close else None
        outcome = close.outcome if close else None
        if closed_by == "server":
            violation = _SERVER_VIOLATIONS.get(code)
            outcome = _SERVER_OUTCOMES.get(code)
        return CloseEvent(
            code=code,
            label=close_label(code),
            reason=reason,
            closed_by=closed_by,
            violation=violation,
            outcome=outcome,
            detail=close.detail if close else None,
            duration=self._duration(),
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
        )

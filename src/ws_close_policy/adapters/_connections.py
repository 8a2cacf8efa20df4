"""``Connections``: the guarded connections one app has open, its admission limit, its
drain and its fan-out, shared by every adapter.

The app creates one and hands it to ``guard``: nothing is kept at module level, and two
apps in one process share nothing. The decisions (admit or not, when each connection is
drained, what a broadcast message is) are the core's; this module only keeps the set and
runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random as _random
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .._actions import Close, Reject, Send
from .._arguments import function, instance, positive_int, positive_number
from .._enums import Outcome
from .._outbound import decide_outbound
from ..lifecycle import admission, drain_delays
from ..metrics import Metrics
from ..policy import DEFAULT, Policy
from ..session import Session, State
from ._tasks import Tasks

if TYPE_CHECKING:
    from ._connection import PolicyConnection, SendMany

logger = logging.getLogger("ws_close_policy")
_OPEN = State.OPEN  # a constant: enum members are slow to look up on CPython 3.11


class Connections:
    """The guarded connections one app has open: an admission limit, a drain, a fan-out.

    Create one per app and pass it to ``guard(..., connections=...)``; nothing is shared
    between two ``Connections``.

    :param policy: the policy of ``broadcast`` messages (default ``Policy()``).
    :param max_open: when that many are open, a new guarded connection is accepted and
        closed with ``Outcome.OVERLOADED`` (1013); the adapters' ``admit`` refuses it before
        the upgrade with HTTP 503 instead. ``None`` (default): no limit.
    :param drain_window: seconds over which ``drain`` spreads its closes (default 5.0).
    :param max_buffer: a connection with more bytes than this waiting to be written when a
        ``broadcast`` starts is too slow for it (where the server can say; default 1 MiB).
    :param slow_after: a ``broadcast`` send still pending after this many seconds is too
        slow (default 1.0). A connection too slow is closed with ``Outcome.OVERLOADED``
        (1013) instead of stalling the others.
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
        for method in ("opened", "closed", "draining", "drained"):
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
        self._first_drain: asyncio.Task[int] | None = None
        self._tasks = Tasks(logger, "websocket background task")
        self._slow: set[PolicyConnection] = set()  # closed as too slow, not yet gone

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
        """Whether a drain has started: new connections are refused from then on."""
        return self._draining

    def admission(self) -> Outcome | None:
        """Whether a new connection would be served now: ``None``, or the outcome to refuse
        it with (``lifecycle.admission``: 1012 while draining, 1013 when full)."""
        return admission(len(self._open), self.max_open, self._draining)

    # --- drain -----------------------------------------------------------------------------

    async def drain(
        self, outcome: Outcome | int = Outcome.RESTARTING, window: float | None = None
    ) -> int:
        """Close every open connection with ``outcome`` (1012 by default), each at its own
        moment within ``window`` seconds (default ``drain_window``; ``lifecycle.drain_delays``),
        so that their clients do not come back in one herd; returns how many it closed (not
        those that ended by themselves meanwhile). From now on new connections are refused
        (see :attr:`draining`). ``window=0`` closes at once, including the connections an
        earlier drain is still waiting to close."""
        spread = (
            self.drain_window if window is None else positive_number(window, "window", zero=True)
        )
        self._draining = True
        if spread == 0:
            for waiting in self._waiting:
                waiting.set()
        hurry = asyncio.Event()
        self._waiting.add(hurry)
        targets = list(self._open)
        started = time.monotonic()
        logger.info("draining %d websocket(s) within %.1f s", len(targets), spread)
        self._report("draining", len(targets))

        async def close_later(connection: PolicyConnection, delay: float) -> bool:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # its moment, or sooner if hurried
                    await hurry.wait()
            return await connection.close(outcome)

        delays = drain_delays(len(targets), spread, self._random)
        try:
            closed = await asyncio.gather(*map(close_later, targets, delays))
        finally:
            self._waiting.discard(hurry)
        self._report("drained", time.monotonic() - started, sum(closed))
        return sum(closed)

    def start_drain(self, signum: int | None = None) -> asyncio.Task[int]:
        """Drain in the background, as a server's first shutdown signal (``signum``) asks.
        Called again while that drain runs, close the rest at once, unless the signal is
        SIGTERM: a repeated SIGTERM is relayed by a process manager (hypercorn's parent
        terminates its other workers when one exits), while a second Ctrl-C (SIGINT) is a
        person in a hurry. Returns the first drain's task (its result: how many it
        closed). For the adapters' signal plumbing."""
        if self._first_drain is None:
            self._first_drain = self._tasks.spawn(self.drain())
        elif not self._first_drain.done() and signum != signal.SIGTERM:
            self._tasks.spawn(self.drain(window=0))
        return self._first_drain

    # --- fan-out ---------------------------------------------------------------------------

    async def broadcast(
        self, message: object, *, to: Iterable[PolicyConnection] | None = None
    ) -> int:
        """Send ``message`` to every open connection (or those in ``to``); returns to how
        many it went, not counting those closed as too slow.

        The message is decided and serialised once, under this object's policy: its size
        guard runs once (a message it closes for closes every target). The sends run
        concurrently: no connection waits on another. One too slow to keep up (more than
        ``max_buffer`` bytes still waiting to be written, where the server says; or a send
        still pending after ``slow_after`` seconds, which is cancelled) is closed with
        ``Outcome.OVERLOADED`` (1013, "try again later") in the background.
        """
        return await self.forward(decide_outbound(message, self.policy), to=to)

    async def forward(
        self, action: Send | Close, *, to: Iterable[PolicyConnection] | None = None
    ) -> int:
        """Deliver an action decided elsewhere to every open connection (or those in
        ``to``), as ``broadcast`` delivers the message it decides: a ``Send`` goes out as it
        is, never serialised or measured again, with the same handling of slow connections;
        a ``Close`` closes each. Returns to how many the ``Send`` went (0 for a ``Close``).
        ``ws_close_policy.fanout.Subscriber`` delivers what a publisher decided this way.
        """
        if not isinstance(action, Send | Close):
            raise TypeError(f"action must be a Send or a Close, not {type(action).__name__}")
        decided = action
        # Passes over the connections without a call each, where the server allows: this
        # runs for every connection of every broadcast.
        limit = self.max_buffer
        pool = self._open if to is None else to
        targets = [c for c in pool if c._session.state is _OPEN]
        if isinstance(decided, Close):
            await asyncio.gather(*(c.forward(decided) for c in targets), return_exceptions=True)
            return 0
        slow: list[PolicyConnection] = []
        later: list[PolicyConnection] = []  # their transport cannot queue: a task each
        batches: dict[SendMany, list[PolicyConnection]] = {}  # one class, as a rule
        for connection in targets:
            backlog = connection._backlog
            if backlog is not None and backlog() > limit:
                slow.append(connection)
            elif (send_many := connection._send_many) is None:
                later.append(connection)
            elif (batch := batches.get(send_many)) is not None:
                batch.append(connection)
            else:
                batches[send_many] = [connection]
        sent = 0
        for send_many, batch in batches.items():
            sent += Session.forward_many([c._session for c in batch], decided)
            send_many([c._transport for c in batch], decided.data, decided.text)
        sends = {asyncio.ensure_future(c.forward(decided)): c for c in later}
        if sends:
            done, pending = await asyncio.wait(sends, timeout=self.slow_after)
            for task in pending:
                task.cancel()
                slow.append(sends[task])
            sent += sum(not task.cancelled() and task.exception() is None for task in done)
        for connection in slow:
            if connection in self._slow:  # its close is under way already
                continue
            self._slow.add(connection)
            logger.warning(
                "websocket %s: too slow for a broadcast, closing",
                connection.id,
                extra={"ws_connection": connection.id},
            )
            self._tasks.spawn(connection.close(Outcome.OVERLOADED))
        return sent

    # --- the connections' side ------------------------------------------------------------

    def _enter(self, connection: PolicyConnection) -> Outcome | None:
        """A guarded connection opened: track it; the outcome to refuse it with, if any."""
        refused = self.admission()
        self._open.add(connection)
        self._report("opened")
        return refused

    def _leave(self, connection: PolicyConnection) -> None:
        self._open.discard(connection)
        self._slow.discard(connection)

    def _report(self, what: str, *args: Any) -> None:
        """Tell the metrics, if any: a failure there is logged, never raised."""
        if self.metrics is None:
            return
        try:
            getattr(self.metrics, what)(*args)
        except Exception:
            logger.exception("metrics %s() failed", what)


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

"""Client-side reconnect advice: what to do after each close code, with jitter on every retry.

``advise_reconnect(code, attempt, random=random.random)`` is a pure function: the profile
says what a code means for a client (stop, retry, refresh credentials, reduce the payload),
the policy says how long to wait. Every delay is drawn from a window ("full jitter": uniform
in ``[0, min(cap, base * factor ** attempt)]``), not only the first, so clients closed
together do not come back together.

It reads no global random source: the caller passes ``random`` (a function returning a float
in ``[0, 1)``, such as ``random.random``). Without one the advice is deterministic: the same
delays as ``ReconnectPolicy(jitter="none")``, for tests. ``ReconnectAdvice.window`` always
says where a jittered delay would fall.

``Reconnector`` keeps the little state a client needs across connections: the attempt
counter (reset only once a connection has stayed up for a while, measured with the clock it
is given), and whether the last close already led to a credentials refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._arguments import callable_or_none, instance, integer, non_negative_int, positive_number
from ._enums import Outcome, ReconnectAction
from .codes import CloseCode, describe
from .profile import Profile

__all__ = [
    "APP_CODE_BANDS",
    "DEFAULT_RECONNECT",
    "PUSHER_BANDS",
    "Band",
    "advice_table",
]

Random = Callable[[], float]
Jitter = Literal["full", "none"]


@dataclass(frozen=True, slots=True)
class ReconnectAdvice:
    """What to do next: ``action``, after waiting ``delay`` seconds; ``why`` explains it.

    ``window`` is the range ``(low, high)`` in seconds that a jittered ``delay`` is drawn
    from (``(0.0, 0.0)`` for a stop).
    """

    action: ReconnectAction
    delay: float
    why: str
    window: tuple[float, float] = (0.0, 0.0)

    @property
    def should_reconnect(self) -> bool:
        """Whether the action is to connect again (anything but ``STOP``)."""
        return self.action is not ReconnectAction.STOP


@dataclass(frozen=True, slots=True)
class Band:
    """A range of private codes (inclusive) and what a client does after one of them.

    ``immediate`` reconnects with no backoff (still jittered by up to ``base`` seconds).
    """

    first: int
    last: int
    action: ReconnectAction
    immediate: bool = False

    def __post_init__(self) -> None:
        first, last = integer(self.first, "first"), integer(self.last, "last")
        if not 3000 <= first <= last <= 4999:
            raise ValueError(f"band {first}-{last} must lie within 3000-4999")
        object.__setattr__(self, "action", ReconnectAction(self.action))


#: The default convention for application codes: 4000 plus the HTTP status that says the
#: same thing (as graphql-ws's 4400, 4401, 4403, 4429, 4500). 4000-4499 say the request
#: cannot succeed as made (4004 "Job not found", 4403 "Forbidden"): stop. 4500-4999 say the
#: server failed: reconnect with backoff. Three client errors are not final: 4401 (refresh
#: the credentials), 4408 (timeout) and 4429 (too many requests) retry. The first band that
#: holds a code decides; a profile's own entry for a code comes before any band.
APP_CODE_BANDS: Final = (
    Band(4401, 4401, ReconnectAction.REFRESH_CREDENTIALS),
    Band(4408, 4408, ReconnectAction.RETRY),
    Band(4429, 4429, ReconnectAction.RETRY),
    Band(4000, 4499, ReconnectAction.STOP),
    Band(4500, 4999, ReconnectAction.RETRY),
)

#: Pusher's convention: 4000-4099 stop, 4100-4199 back off, 4200-4299 reconnect at once.
PUSHER_BANDS: Final = (
    Band(4000, 4099, ReconnectAction.STOP),
    Band(4100, 4199, ReconnectAction.RETRY),
    Band(4200, 4299, ReconnectAction.RETRY, immediate=True),
)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How long to wait, and when to give up. Every argument is validated (``ValueError``).

    :param base: first backoff ceiling in seconds (default 1.0).
    :param factor: growth of the ceiling per attempt (default 2.0, at least 1).
    :param cap: largest ceiling in seconds (default 60.0).
    :param max_attempts: attempts before giving up (default 10); attempt numbers start at 0.
    :param restart_delay: after 1012 (service restart), or the code the profile gives
        ``Outcome.RESTARTING``, a uniform delay in this window (default 5-30 s, the IANA
        registry's guidance).
    :param jitter: ``"full"`` (default) or ``"none"`` (exact ceilings, for tests); with
        ``"full"`` the delay is drawn with the ``random`` the caller passes.
    :param profile: the code -> action table (default ``Profile.ACTIONABLE``).
    :param private_bands: actions for private codes the profile does not name, first match
        first (default :data:`APP_CODE_BANDS`: 4000-4499 stop, 4500-4999 retry; ``()`` for
        none, :data:`PUSHER_BANDS` for Pusher's).
    :param private_default: action for any other 3000-4999 code (default retry with backoff).
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    max_attempts: int = 10
    restart_delay: tuple[float, float] = (5.0, 30.0)
    jitter: Jitter = "full"
    profile: Profile = Profile.ACTIONABLE
    private_bands: tuple[Band, ...] = APP_CODE_BANDS
    private_default: ReconnectAction = ReconnectAction.RETRY

    def __post_init__(self) -> None:
        positive_number(self.base, "base")
        positive_number(self.cap, "cap")
        if positive_number(self.factor, "factor") < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor!r}")
        if not 1 <= integer(self.max_attempts, "max_attempts") <= 10_000:
            raise ValueError(f"max_attempts must be in 1-10000, got {self.max_attempts!r}")
        window = tuple(instance(self.restart_delay, tuple, "restart_delay"))
        if len(window) != 2:
            raise ValueError(f"restart_delay must be (low, high) seconds, got {window!r}")
        low = positive_number(window[0], "restart_delay", zero=True)
        high = positive_number(window[1], "restart_delay", zero=True)
        if low > high:
            raise ValueError(f"restart_delay must satisfy low <= high, got {window!r}")
        object.__setattr__(self, "restart_delay", (low, high))
        if self.jitter not in ("full", "none"):
            raise ValueError(f"jitter must be 'full' or 'none', got {self.jitter!r}")
        instance(self.profile, Profile, "profile")
        bands = tuple(self.private_bands)
        for band in bands:
            instance(band, Band, "private_bands")
        object.__setattr__(self, "private_bands", bands)
        object.__setattr__(self, "private_default", ReconnectAction(self.private_default))

    def ceiling(self, attempt: int) -> float:
        """The backoff ceiling for ``attempt``: ``min(cap, base * factor ** attempt)``."""
        try:
            return min(self.cap, self.base * self.factor**attempt)
        except OverflowError:
            return self.cap


#: ``ReconnectPolicy()``: the default of every reconnect decision.
DEFAULT_RECONNECT: Final = ReconnectPolicy()


def _action_for(code: int, policy: ReconnectPolicy) -> tuple[ReconnectAction, bool, str]:
    """(action, immediate, how the code was read) for any int."""
    named = policy.profile.client_action(code)
    if named is not None:
        return named, False, f"{policy.profile.name} says {named.value}"
    if 3000 <= code <= 4999:
        for band in policy.private_bands:
            if band.first <= code <= band.last:
                return band.action, band.immediate, f"band {band.first}-{band.last}"
        return policy.private_default, False, "unlisted private code"
    # 1004, 1016-2999, 0-999, 5000+: not a code a server sends; read it as a dropped link.
    fallback = policy.profile.client_action(CloseCode.ABNORMAL_CLOSURE) or ReconnectAction.RETRY
    return fallback, False, "not a valid close code, treated as 1006"


def advise_reconnect(
    code: int | None,
    attempt: int,
    policy: ReconnectPolicy = DEFAULT_RECONNECT,
    *,
    random: Random | None = None,
) -> ReconnectAdvice:
    """What a client should do after a close with ``code`` before attempt number ``attempt``.

    ``code=None`` means the connection dropped with no close frame (1006). Any int is
    accepted: codes outside 0-65535 or not valid on the wire are treated as 1006.
    ``attempt`` counts reconnect attempts already made since the last stable connection
    (0 for the first). ``random`` returns a float in [0, 1) (pass ``random.random``) and
    drives every jitter; without it the delay is the deterministic one of
    ``jitter="none"``.
    """
    non_negative_int(attempt, "attempt")
    if code is not None:
        integer(code, "code")
    instance(policy, ReconnectPolicy, "policy")
    callable_or_none(random, "random")
    if code is None:
        code, seen = CloseCode.ABNORMAL_CLOSURE, "no close frame (1006)"
    else:
        seen = describe(code)
    action, immediate, reading = _action_for(code, policy)
    if action is ReconnectAction.STOP:
        return ReconnectAdvice(action, 0.0, f"{seen}: {reading}: do not reconnect")
    if attempt >= policy.max_attempts:
        return ReconnectAdvice(
            ReconnectAction.STOP,
            0.0,
            f"{seen}: gave up after {policy.max_attempts} attempts",
        )
    window, fixed, how = _window(code, attempt, action, immediate, policy)
    delay = _draw(window, fixed, policy, random)
    return ReconnectAdvice(action, delay, f"{seen}: {reading}: {how}", window)


def _window(
    code: int, attempt: int, action: ReconnectAction, immediate: bool, policy: ReconnectPolicy
) -> tuple[tuple[float, float], float, str]:
    """The jitter window, the delay without jitter, and how it was chosen."""
    if code in _restart_codes(policy) and action is ReconnectAction.RETRY:
        low, high = policy.restart_delay
        return (low, high), low, f"service restarting, wait {low:g}-{high:g} s"
    if immediate or action is not ReconnectAction.RETRY:
        # Refresh credentials, reduce payload, or an immediate band: reconnect soon, but
        # spread over up to `base` seconds so a fleet does not return in the same instant.
        return (0.0, policy.base), 0.0, f"{action.value}, then reconnect"
    ceiling = policy.ceiling(attempt)
    how = f"retry {attempt + 1} of {policy.max_attempts}, backoff up to {ceiling:g} s"
    return (0.0, ceiling), ceiling, how


def _restart_codes(policy: ReconnectPolicy) -> set[int]:
    """1012, and the code the profile gives a restart, which get the restart window."""
    return {CloseCode.SERVICE_RESTART, int(policy.profile.outcomes[Outcome.RESTARTING].code)}


def _draw(
    window: tuple[float, float], fixed: float, policy: ReconnectPolicy, random: Random | None
) -> float:
    """A delay uniform in ``window`` (full jitter), or ``fixed`` without jitter."""
    if random is None or policy.jitter == "none":
        return fixed
    value = random()
    if not 0.0 <= value < 1.0:
        raise ValueError(f"random must return a float in [0, 1), got {value!r}")
    low, high = window
    return low + (high - low) * value


class Reconnector:
    """The state a client keeps across connections (sans-IO: clock and random given).

    Call ``on_open()`` when a connection is established and ``on_close(code)`` when it ends
    (``None`` when it dropped without a close frame); the latter returns the advice. A
    handshake refused with an HTTP status goes to ``on_handshake_failure(status)``.

    :param stable_after: seconds a connection must stay up before the attempt counter
        resets (default 10.0), so a server that accepts and closes at once does not get a
        tight reconnect loop.
    :param clock: returns seconds (pass ``time.monotonic``). Without a clock no connection
        counts as stable: the counter only grows, up to ``max_attempts``.
    :param random: returns a float in [0, 1) (pass ``random.random``); without it the
        delays are not jittered (see :func:`advise_reconnect`).
    """

    def __init__(
        self,
        policy: ReconnectPolicy = DEFAULT_RECONNECT,
        *,
        stable_after: float = 10.0,
        clock: Callable[[], float] | None = None,
        random: Random | None = None,
    ) -> None:
        self.policy = instance(policy, ReconnectPolicy, "policy")
        self.stable_after = positive_number(stable_after, "stable_after", zero=True)
        self._clock = callable_or_none(clock, "clock")
        self._random = callable_or_none(random, "random")
        self.attempt = 0
        self.last_code: int | None = None
        self._opened_at: float | None = None
        self._refreshing = False  # the previous close asked for new credentials

    def on_open(self) -> None:
        """A connection was established."""
        self._opened_at = self._clock() if self._clock is not None else None

    def on_close(self, code: int | None) -> ReconnectAdvice:
        """The connection ended with ``code``: what to do now."""
        if self._was_stable():
            self.attempt = 0
            self._refreshing = False
        self._opened_at = None
        self.last_code = code
        advice = advise_reconnect(code, self.attempt, self.policy, random=self._random)
        if advice.action is ReconnectAction.REFRESH_CREDENTIALS:
            if self._refreshing:
                seen = "no close frame" if code is None else describe(code)
                why = f"{seen}: credentials refused again on the next connection: stop"
                return ReconnectAdvice(ReconnectAction.STOP, 0.0, why)
            self._refreshing = True
        else:
            self._refreshing = False
        return self._count(advice)

    def on_handshake_failure(
        self, status: int, retry_after: float | None = None
    ) -> ReconnectAdvice:
        """The server refused the upgrade with HTTP ``status`` (and maybe ``Retry-After``).

        401 and 403 stop (the credentials were refused before any WebSocket existed), as
        does any other 4xx but 429. 429 and 503 wait for ``Retry-After`` (at most ``cap``
        seconds), plus a jitter of up to the backoff ceiling so clients refused together do
        not return together; other 5xx back off. ``status`` must be 400-599.
        """
        if not 400 <= integer(status, "status") <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if retry_after is not None:
            retry_after = min(
                positive_number(retry_after, "retry_after", zero=True), self.policy.cap
            )
        self._opened_at = None
        self.last_code = None
        if status < 500 and status != 429:
            return ReconnectAdvice(
                ReconnectAction.STOP, 0.0, f"handshake refused with HTTP {status}: stop"
            )
        if self.attempt >= self.policy.max_attempts:
            return ReconnectAdvice(
                ReconnectAction.STOP, 0.0, f"HTTP {status}: gave up after {self.attempt} attempts"
            )
        ceiling = self.policy.ceiling(self.attempt)
        why = f"handshake refused with HTTP {status}: retry"
        if retry_after is None:
            delay = _draw((0.0, ceiling), ceiling, self.policy, self._random)
            window = (0.0, ceiling)
        else:
            window = (retry_after, retry_after + ceiling)
            delay = _draw(window, max(retry_after, ceiling), self.policy, self._random)
            why += f" after Retry-After {retry_after:g} s"
        return self._count(ReconnectAdvice(ReconnectAction.RETRY, delay, why, window))

    def _was_stable(self) -> bool:
        if self._clock is None or self._opened_at is None:
            return False
        return self._clock() - self._opened_at >= self.stable_after

    def _count(self, advice: ReconnectAdvice) -> ReconnectAdvice:
        if advice.action is not ReconnectAction.STOP:
            self.attempt += 1
        return advice


def advice_table(policy: ReconnectPolicy = DEFAULT_RECONNECT) -> dict[str, Any]:
    """The advice of ``policy`` as JSON-ready data, for clients in other languages (the
    demo's browser page computes its advice from it, as :func:`advise_reconnect` does).

    Keys: ``profile`` (its name); ``actions`` (code, as a string, to action, from the
    profile); ``invalid`` (the action for a code no server sends, read as 1006);
    ``bands`` (``first``, ``last``, ``action``, ``immediate``) and ``private_default`` for
    the other 3000-4999 codes; ``restart_codes`` and ``restart_delay`` (the window after
    them); ``base``, ``factor``, ``cap``, ``max_attempts`` and ``jitter`` for the backoff.
    """
    instance(policy, ReconnectPolicy, "policy")
    profile = policy.profile
    invalid = profile.client_action(CloseCode.ABNORMAL_CLOSURE) or ReconnectAction.RETRY
    return {
        "profile": profile.name,
        "actions": {str(code): action.value for code, action in profile.client_actions.items()},
        "invalid": invalid.value,
        "bands": [
            {"first": b.first, "last": b.last, "action": b.action.value, "immediate": b.immediate}
            for b in policy.private_bands
        ],
        "private_default": policy.private_default.value,
        "restart_codes": sorted(_restart_codes(policy)),
        "restart_delay": list(policy.restart_delay),
        "base": policy.base,
        "factor": policy.factor,
        "cap": policy.cap,
        "max_attempts": policy.max_attempts,
        "jitter": policy.jitter,
    }

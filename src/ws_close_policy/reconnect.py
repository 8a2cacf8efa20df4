"""Client-side reconnect advice: what to do after each close code, with jitter on every retry.

``advise_reconnect(code, attempt)`` is a pure function: the profile says what a code means
for a client (stop, retry, refresh credentials, reduce the payload), the policy says how long
to wait. Every delay is jittered ("full jitter": uniform in ``[0, min(cap, base * factor **
attempt)]``), not only the first, so clients closed together do not come back together.

``Reconnector`` keeps the little state a client needs across connections: the attempt
counter (reset only once a connection has stayed up for a while), and whether the last close
already led to a credentials refresh.
"""

from __future__ import annotations

import math
import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from .codes import CloseCode, describe
from .profile import Profile, ReconnectAction

__all__ = [
    "DEFAULT_RECONNECT",
    "PUSHER_BANDS",
    "Band",
    "ReconnectAction",
    "ReconnectAdvice",
    "ReconnectPolicy",
    "Reconnector",
    "advise_reconnect",
]

Random = Callable[[], float]
Jitter = Literal["full", "none"]


@dataclass(frozen=True, slots=True)
class ReconnectAdvice:
    """What to do next: ``action``, after waiting ``delay`` seconds; ``why`` explains it."""

    action: ReconnectAction
    delay: float
    why: str

    @property
    def should_reconnect(self) -> bool:
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
        if not (isinstance(self.first, int) and isinstance(self.last, int)) or not (
            3000 <= self.first <= self.last <= 4999
        ):
            raise ValueError(f"band {self.first}-{self.last} must lie within 3000-4999")
        object.__setattr__(self, "action", ReconnectAction(self.action))


#: Pusher's convention: 4000-4099 stop, 4100-4199 back off, 4200-4299 reconnect at once.
PUSHER_BANDS: Final = (
    Band(4000, 4099, ReconnectAction.STOP),
    Band(4100, 4199, ReconnectAction.RETRY),
    Band(4200, 4299, ReconnectAction.RETRY, immediate=True),
)


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How long to wait, and when to give up. Every argument is validated (``ValueError``).

    :param base: first backoff ceiling in seconds (default 1.0).
    :param factor: growth of the ceiling per attempt (default 2.0, at least 1).
    :param cap: largest ceiling in seconds (default 60.0).
    :param max_attempts: attempts before giving up (default 10); attempt numbers start at 0.
    :param restart_delay: after 1012 (service restart), a uniform delay in this window
        (default 5-30 s, the IANA registry's guidance).
    :param jitter: ``"full"`` (default) or ``"none"`` (exact ceilings, for tests).
    :param profile: the code -> action table (default ``Profile.SEED``).
    :param private_bands: actions for private codes the profile does not name.
    :param private_default: action for any other 3000-4999 code (default retry with backoff).
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    max_attempts: int = 10
    restart_delay: tuple[float, float] = (5.0, 30.0)
    jitter: Jitter = "full"
    profile: Profile = Profile.SEED
    private_bands: tuple[Band, ...] = ()
    private_default: ReconnectAction = ReconnectAction.RETRY

    def __post_init__(self) -> None:
        _positive(self.base, "base")
        _positive(self.cap, "cap")
        if _positive(self.factor, "factor") < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor!r}")
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or not 1 <= self.max_attempts <= 10_000
        ):
            raise ValueError(f"max_attempts must be an int in 1-10000, got {self.max_attempts!r}")
        window = tuple(self.restart_delay)
        if len(window) != 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in window
        ):
            raise ValueError(f"restart_delay must be (low, high) seconds, got {window!r}")
        if not 0 <= window[0] <= window[1]:
            raise ValueError(f"restart_delay must satisfy 0 <= low <= high, got {window!r}")
        object.__setattr__(self, "restart_delay", (float(window[0]), float(window[1])))
        if self.jitter not in ("full", "none"):
            raise ValueError(f"jitter must be 'full' or 'none', got {self.jitter!r}")
        if not isinstance(self.profile, Profile):
            raise ValueError(f"profile must be a Profile, got {self.profile!r}")
        bands = tuple(self.private_bands)
        if not all(isinstance(b, Band) for b in bands):
            raise ValueError("private_bands must hold Band values")
        object.__setattr__(self, "private_bands", bands)
        object.__setattr__(self, "private_default", ReconnectAction(self.private_default))

    def ceiling(self, attempt: int) -> float:
        """The backoff ceiling for ``attempt``: ``min(cap, base * factor ** attempt)``."""
        try:
            return min(self.cap, self.base * self.factor**attempt)
        except OverflowError:
            return self.cap


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
    random: Random = _random.random,
) -> ReconnectAdvice:
    """What a client should do after a close with ``code`` before attempt number ``attempt``.

    ``code=None`` means the connection dropped with no close frame (1006). Any int is
    accepted: codes outside 0-65535 or not valid on the wire are treated as 1006.
    ``attempt`` counts reconnect attempts already made since the last stable connection
    (0 for the first). ``random`` returns a float in [0, 1) and drives every jitter.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValueError(f"attempt must be a non-negative int, got {attempt!r}")
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise ValueError(f"code must be an int or None, got {code!r}")
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
    delay, how = _delay(code, attempt, action, immediate, policy, random)
    return ReconnectAdvice(action, delay, f"{seen}: {reading}: {how}")


def _draw(random: Random) -> float:
    value = random()
    if not 0.0 <= value < 1.0:
        raise ValueError(f"random must return a float in [0, 1), got {value!r}")
    return value


def _delay(
    code: int,
    attempt: int,
    action: ReconnectAction,
    immediate: bool,
    policy: ReconnectPolicy,
    random: Random,
) -> tuple[float, str]:
    full = policy.jitter == "full"
    if code == CloseCode.SERVICE_RESTART and action is ReconnectAction.RETRY:
        low, high = policy.restart_delay
        delay = low + (high - low) * _draw(random) if full else low
        return delay, f"service restarting, wait {low:g}-{high:g} s"
    if immediate or action is not ReconnectAction.RETRY:
        # Refresh credentials, reduce payload, or an immediate band: reconnect soon, but
        # spread over up to `base` seconds so a fleet does not return in the same instant.
        return (policy.base * _draw(random) if full else 0.0), f"{action.value}, then reconnect"
    ceiling = policy.ceiling(attempt)
    delay = ceiling * _draw(random) if full else ceiling
    return delay, f"retry {attempt + 1} of {policy.max_attempts}, backoff up to {ceiling:g} s"


class Reconnector:
    """The state a client keeps across connections (sans-IO; clock and random injected).

    Call ``on_open()`` when a connection is established and ``on_close(code)`` when it ends
    (``None`` when it dropped without a close frame); the latter returns the advice. A
    handshake refused with an HTTP status goes to ``on_handshake_failure(status)``.

    :param stable_after: seconds a connection must stay up before the attempt counter
        resets (default 10.0), so a server that accepts and closes at once does not get a
        tight reconnect loop.
    """

    def __init__(
        self,
        policy: ReconnectPolicy = DEFAULT_RECONNECT,
        *,
        stable_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        random: Random = _random.random,
    ) -> None:
        if not isinstance(policy, ReconnectPolicy):
            raise ValueError(f"policy must be a ReconnectPolicy, got {policy!r}")
        if isinstance(stable_after, bool) or not isinstance(stable_after, int | float):
            raise ValueError(f"stable_after must be a number of seconds, got {stable_after!r}")
        if not 0 <= stable_after < math.inf:
            raise ValueError(f"stable_after must be >= 0 and finite, got {stable_after!r}")
        self.policy = policy
        self.stable_after = float(stable_after)
        self._clock = clock
        self._random = random
        self.attempt = 0
        self.last_code: int | None = None
        self._opened_at: float | None = None
        self._refreshing = False  # the previous close asked for new credentials

    def on_open(self) -> None:
        """A connection was established."""
        self._opened_at = self._clock()

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
                why = f"{seen}: credentials refused again right after a refresh: stop"
                return ReconnectAdvice(ReconnectAction.STOP, 0.0, why)
            self._refreshing = True
        else:
            self._refreshing = False
        return self._count(advice)

    def on_handshake_failure(
        self, status: int, retry_after: float | None = None
    ) -> ReconnectAdvice:
        """The server refused the upgrade with HTTP ``status`` (and maybe ``Retry-After``).

        401 and 403 stop (the credentials were refused before any WebSocket existed); 429 and
        503 retry after at least ``Retry-After``; other 5xx retry with backoff; other 4xx stop.
        """
        self._opened_at = None
        self.last_code = None
        if status in (401, 403) or (400 <= status < 500 and status != 429):
            return ReconnectAdvice(
                ReconnectAction.STOP, 0.0, f"handshake refused with HTTP {status}: stop"
            )
        if self.attempt >= self.policy.max_attempts:
            return ReconnectAdvice(
                ReconnectAction.STOP, 0.0, f"HTTP {status}: gave up after {self.attempt} attempts"
            )
        ceiling = self.policy.ceiling(self.attempt)
        backoff = ceiling * _draw(self._random) if self.policy.jitter == "full" else ceiling
        delay = backoff if retry_after is None else max(float(retry_after), backoff)
        why = f"handshake refused with HTTP {status}: retry"
        if retry_after is not None:
            why += f" after Retry-After {retry_after:g} s"
        return self._count(ReconnectAdvice(ReconnectAction.RETRY, delay, why))

    def _was_stable(self) -> bool:
        return self._opened_at is not None and self._clock() - self._opened_at >= self.stable_after

    def _count(self, advice: ReconnectAdvice) -> ReconnectAdvice:
        if advice.action is not ReconnectAction.STOP:
            self.attempt += 1
        return advice

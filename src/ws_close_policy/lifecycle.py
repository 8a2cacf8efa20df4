"""How a connection starts and ends: who is admitted, what a refusal is, when a drain closes
each connection, and the close for an outcome. Pure functions: the adapters ask, then act.

The rule:

* **before the upgrade** a refusal is an HTTP response: 401 with ``WWW-Authenticate`` for a
  missing or bad token, 403 for a refused ``Origin``, 426, 429 or 503 with ``Retry-After``.
  Browsers cannot read it, but every other client can, and no WebSocket exists yet to carry
  a close code. Where a status cannot be sent (a server without the ASGI denial extension,
  or a browser client), :func:`refusal_close` says which close stands for it;
* **after the upgrade** it is a close code: an expired or refused token is 1008
  (``Outcome.POLICY_VIOLATION``), never an HTTP status; :func:`close_for` gives the close
  for any outcome.

The ``Reject`` builders live on the action type: ``Reject.unauthorized()``,
``Reject.forbidden()``, ``Reject.upgrade_required()``, ``Reject.too_many_requests(30)``,
``Reject.unavailable(30)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import ClassVar

from ._actions import Close, Reject
from ._arguments import function, instance, non_negative_int, positive_number, text
from ._enums import Outcome
from .policy import DEFAULT, Policy

__all__ = ["Origin", "Origins", "admission", "drain_delays", "refusal_close"]

#: One entry of an ``Origin`` allow-list: an exact value, a compiled pattern that must match
#: the whole header, or ``None`` for clients that send no ``Origin`` (most non-browsers).
Origin = str | re.Pattern[str] | None


def admission(open_now: int, max_open: int | None, draining: bool) -> Outcome | None:
    """Whether a new connection is served: ``None`` to admit it, else the outcome to refuse
    it with: ``Outcome.RESTARTING`` (1012) while draining, ``Outcome.OVERLOADED`` (1013) when
    ``max_open`` connections are open (``None``: no limit). Before the upgrade the refusal is
    HTTP 503; after it, a close with that outcome's code."""
    non_negative_int(open_now, "open_now")
    if draining:
        return Outcome.RESTARTING
    if max_open is not None and open_now >= max_open:
        return Outcome.OVERLOADED
    return None


def refusal_close(
    refusal: Reject,
    policy: Policy = DEFAULT,
    *,
    outcome: Outcome | None = None,
    reason: str | None = None,
) -> Close:
    """The close that stands for an HTTP ``refusal`` where its status cannot reach the
    client: ``outcome`` when given, else ``Outcome.POLICY_VIOLATION`` (1008) for 401 and 403
    and ``Outcome.OVERLOADED`` (1013) for any other status, with the profile's reason (or
    ``reason``)."""
    instance(refusal, Reject, "refusal")
    if outcome is None:
        denied = refusal.status in (401, 403)
        outcome = Outcome.POLICY_VIOLATION if denied else Outcome.OVERLOADED
    return close_for(instance(outcome, Outcome, "outcome"), policy, reason)


class Origins:
    """An ``Origin`` allow-list with the semantics of ``websockets``' own ``origins=``.

    ``Origins([None, "https://app.example", re.compile(r"https://.*\\.example")])``: each
    entry is an :data:`Origin`; anything else is a ``TypeError``. Browsers send cookies with
    the handshake, so without such a check any web page can open a connection in its
    visitor's name (cross-site WebSocket hijacking).
    """

    __slots__ = ("allowed",)

    #: The close reason for a refused ``Origin`` where the refusal must be a close (a
    #: browser cannot read a refused handshake's status): the profile's 1008 reason is
    #: about credentials.
    reason: ClassVar[str] = "Origin not allowed"

    def __init__(self, origins: Iterable[Origin]) -> None:
        self.allowed: tuple[Origin, ...] = tuple(origins)
        for origin in self.allowed:
            if origin is not None and not isinstance(origin, str | re.Pattern):
                raise TypeError(f"origins must hold str, re.Pattern or None, not {origin!r}")

    def refusal(self, origin: str | None) -> Reject | None:
        """``None`` when the ``Origin`` header value ``origin`` (``None``: no header) is
        allowed, else HTTP 403."""
        for allowed in self.allowed:
            if allowed is None:
                if origin is None:
                    return None
            elif origin is not None and (
                origin == allowed
                if isinstance(allowed, str)
                else allowed.fullmatch(origin) is not None
            ):
                return None
        return Reject.forbidden()


def drain_delays(count: int, window: float, random: Callable[[], float]) -> list[float]:
    """When a drain closes each of ``count`` connections: seconds from its start, uniform in
    ``[0, window)`` (``random`` returns a float in [0, 1), e.g. ``random.random``), so that
    their clients do not come back in one herd. ``window=0`` closes them all at once."""
    non_negative_int(count, "count")
    spread = positive_number(window, "window", zero=True)
    draw = function(random, "random")
    return [spread * draw() for _ in range(count)]


def close_for(
    outcome: Outcome | int,
    policy: Policy = DEFAULT,
    reason: str | None = None,
    *,
    detail: str | None = None,
) -> Close:
    """The close for ``outcome``: the one way to end a connection for an outcome or with an
    application's own code (``Session.finish`` and the adapters' ``close`` call it).

    ``outcome`` is an :class:`Outcome` (its code comes from the policy's profile) or an
    application code in 3000-4999, such as 4004 for "Job not found". ``reason`` replaces
    the profile's short generic reason (an application code has none unless given); it is
    cut to 123 UTF-8 bytes. Never put exception text or internals in it: the peer reads
    it. ``detail`` is kept for logs only.
    """
    instance(policy, Policy, "policy")
    if reason is not None:
        text(reason, "reason")
    if isinstance(outcome, Outcome):
        rule = policy.profile.outcomes[outcome]
        sent = rule.reason if reason is None else reason
        return Close(rule.code, sent, outcome=outcome, detail=detail)
    if not isinstance(outcome, int) or isinstance(outcome, bool):
        raise TypeError(
            f"outcome must be an Outcome or an application code (int), not {type(outcome).__name__}"
        )
    if not 3000 <= outcome <= 4999:
        raise ValueError(
            f"outcome {outcome} is not an application code (3000-4999); "
            "use an Outcome for the protocol's codes"
        )
    return Close(outcome, reason or "", detail=detail)

"""How a connection ends: ``close_for(outcome)`` after the upgrade, ``Reject`` before it.

The rule:

* **before the upgrade** a refusal is an HTTP response: 401 with ``WWW-Authenticate`` for a
  missing or bad token, 403, 426, 429 or 503 with ``Retry-After``. Browsers cannot read it,
  but every other client can, and no WebSocket exists yet to carry a close code;
* **after the upgrade** it is a close code: an expired or refused token is 1008
  (``Outcome.POLICY_VIOLATION``), never an HTTP status.

The ``Reject`` builders live on the action type: ``Reject.unauthorized()``,
``Reject.forbidden()``, ``Reject.upgrade_required()``, ``Reject.too_many_requests(30)``,
``Reject.unavailable(30)``.
"""

from __future__ import annotations

from .actions import Close
from .arguments import instance, text
from .enums import Outcome
from .policy import DEFAULT, Policy

__all__ = ["close_for"]


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

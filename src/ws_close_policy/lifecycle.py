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
    outcome: Outcome,
    policy: Policy = DEFAULT,
    reason: str | None = None,
    *,
    detail: str | None = None,
) -> Close:
    """The close for ``outcome`` under the policy's profile: the one way to end a connection
    for an outcome (``Session.finish`` and the adapters' ``close`` call it).

    ``reason`` replaces the profile's short generic reason; it is cut to 123 UTF-8 bytes.
    Never put exception text or internals in it: the peer reads it. ``detail`` is kept for
    logs only.
    """
    rule = instance(policy, Policy, "policy").profile.outcomes[
        instance(outcome, Outcome, "outcome")
    ]
    if reason is not None:
        text(reason, "reason")
    return Close(
        rule.code, rule.reason if reason is None else reason, outcome=outcome, detail=detail
    )

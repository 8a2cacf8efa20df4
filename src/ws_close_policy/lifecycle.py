"""How a connection ends: ``close_for(outcome)`` after the upgrade, ``Reject`` before it.

The rule from the review:

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
from .policy import DEFAULT, Policy
from .profile import Outcome

__all__ = ["close_for"]


def close_for(outcome: Outcome, policy: Policy = DEFAULT, reason: str | None = None) -> Close:
    """The close for ``outcome`` under the policy's profile.

    ``reason`` replaces the profile's short generic reason; it is cut to 123 UTF-8 bytes.
    Never put exception text or internals in it: the peer reads it.
    """
    if not isinstance(outcome, Outcome):
        raise ValueError(f"outcome must be an Outcome, got {outcome!r}")
    if reason is not None and not isinstance(reason, str):
        raise ValueError(f"reason must be a str or None, got {reason!r}")
    return policy.profile.close_for_outcome(outcome, reason)

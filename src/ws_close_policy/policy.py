"""``Policy`` bundles the inbound and outbound rules with a profile; the two decisions.

Build one policy per kind of endpoint and share it: it is immutable, and its decision
functions are prepared once, when it is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._accel import dispatch
from .actions import Accept, Close, Send
from .inbound import Decider as InboundDecider
from .inbound import InboundPolicy, inbound_decider
from .outbound import Decider as OutboundDecider
from .outbound import OutboundPolicy, outbound_decider
from .profile import Profile

__all__ = ["DEFAULT", "Policy", "decide_inbound", "decide_outbound"]


@dataclass(frozen=True, slots=True)
class Policy:
    """The whole policy of one endpoint: ``Policy()`` is the default (SEED profile)."""

    inbound: InboundPolicy = field(default_factory=InboundPolicy)
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    profile: Profile = Profile.SEED
    _decide_inbound: InboundDecider = field(init=False, repr=False, compare=False)
    _decide_outbound: OutboundDecider = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, kind in (
            ("inbound", InboundPolicy),
            ("outbound", OutboundPolicy),
            ("profile", Profile),
        ):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name} must be a {kind.__name__}, got {getattr(self, name)!r}")
        object.__setattr__(self, "_decide_inbound", inbound_decider(self.inbound, self.profile))
        object.__setattr__(self, "_decide_outbound", outbound_decider(self.outbound, self.profile))


DEFAULT = Policy()


@dispatch(Policy, "_decide_inbound")
def decide_inbound(data: str | bytes, policy: Policy = DEFAULT) -> Accept | Close:
    """Accept a received message or close the connection; never raises for str or bytes.

    See :mod:`ws_close_policy.inbound` for the order of the checks.
    """
    return policy._decide_inbound(data)


@dispatch(Policy, "_decide_outbound")
def decide_outbound(message: Any, policy: Policy = DEFAULT) -> Send | Close:
    """Serialise and measure ``message`` once: ``Send`` it, or ``Close`` (too big, unserialisable).

    ``str`` is sent as a text frame and ``bytes`` as a binary frame, measured, not re-encoded.
    """
    return policy._decide_outbound(message)

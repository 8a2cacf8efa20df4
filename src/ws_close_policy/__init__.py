"""ws-close-policy: a correct, tested WebSocket close-code policy.

The core is sans-IO: decisions are pure functions that take data and return an action
(``Accept``, ``Send``, ``Close`` or ``Reject``). Adapters for ``websockets`` and Starlette
live in :mod:`ws_close_policy.adapters` and are imported only when used.
"""

from .actions import Accept, Close, InvalidClose, Reject, Send
from .codecs import Codec
from .codes import CloseCode, describe, encode_reason, is_receivable, is_sendable
from .inbound import InboundPolicy
from .lifecycle import close_for
from .outbound import OutboundPolicy
from .policy import DEFAULT, Policy, decide_inbound, decide_outbound
from .profile import Outcome, Profile, ReconnectAction, Rule, Violation
from .reconnect import (
    ReconnectAdvice,
    Reconnector,
    ReconnectPolicy,
    advise_reconnect,
)
from .session import CloseCounter, CloseEvent, Session

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT",
    "Accept",
    "Close",
    "CloseCode",
    "CloseCounter",
    "CloseEvent",
    "Codec",
    "InboundPolicy",
    "InvalidClose",
    "OutboundPolicy",
    "Outcome",
    "Policy",
    "Profile",
    "ReconnectAction",
    "ReconnectAdvice",
    "ReconnectPolicy",
    "Reconnector",
    "Reject",
    "Rule",
    "Send",
    "Session",
    "Violation",
    "__version__",
    "advise_reconnect",
    "close_for",
    "decide_inbound",
    "decide_outbound",
    "describe",
    "encode_reason",
    "is_receivable",
    "is_sendable",
]

"""ws-close-policy: a correct, tested WebSocket close-code policy.

The core is sans-IO: decisions are pure functions that take data and return an action
(``Accept``, ``Send``, ``Close`` or ``Reject``). Adapters for ``websockets`` and Starlette
live in :mod:`ws_close_policy.adapters` and are imported only when used. ``docs/api.md``
lists every public name, here and in the submodules.
"""

from ._actions import Accept, Close, Reject, Send
from ._enums import Outcome, ReconnectAction, Violation
from ._inbound import decide_inbound
from ._outbound import decide_outbound
from .codes import CloseCode
from .lifecycle import close_for
from .policy import InboundPolicy, OutboundPolicy, Policy
from .profile import Profile
from .reconnect import ReconnectAdvice, Reconnector, ReconnectPolicy, advise_reconnect
from .session import CloseEvent, Session

__version__ = "0.1.0.dev0"

__all__ = [
    "Accept",
    "Close",
    "CloseCode",
    "CloseEvent",
    "InboundPolicy",
    "OutboundPolicy",
    "Outcome",
    "Policy",
    "Profile",
    "ReconnectAction",
    "ReconnectAdvice",
    "ReconnectPolicy",
    "Reconnector",
    "Reject",
    "Send",
    "Session",
    "Violation",
    "__version__",
    "advise_reconnect",
    "close_for",
    "decide_inbound",
    "decide_outbound",
]

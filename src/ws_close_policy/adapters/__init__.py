"""Adapters turning the core's actions into frames on real servers.

What every adapter shares is here: :class:`PolicyConnection` (one guarded connection),
:class:`Connections` (the app's connections: admission limit, drain, fan-out),
:class:`Closed`, and the :class:`Transport` an adapter implements. Import the adapter you
need; each imports its framework only when imported itself:

* :mod:`ws_close_policy.adapters.websockets` for the ``websockets`` library;
* :mod:`ws_close_policy.adapters.starlette` for Starlette and FastAPI, on any ASGI server;
* :mod:`ws_close_policy.adapters.aiohttp` for ``aiohttp.web``.
"""

from ._connection import CLOSE_READ_LIMIT, CLOSE_TIMEOUT, Closed, PolicyConnection, Transport
from ._connections import Connections

__all__ = [
    "CLOSE_READ_LIMIT",
    "CLOSE_TIMEOUT",
    "Closed",
    "Connections",
    "PolicyConnection",
    "Transport",
]

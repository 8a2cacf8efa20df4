"""The ASGI lifespan of the Starlette adapter (``starlette.lifespan``): drain on the ASGI
server's own SIGTERM or SIGINT, before the server closes the sockets.

ASGI servers (uvicorn, hypercorn ``--workers 0``) install Python signal handlers of their
own before the lifespan starts; a drain is chained in front of them, and their handler
runs once every connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import FrameType
from typing import Any

from .._arguments import instance
from ._connections import Connections

logger = logging.getLogger("ws_close_policy")

Lifespan = Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]


def lifespan(connections: Connections) -> Lifespan:
    """An ASGI lifespan (Starlette's and FastAPI's ``lifespan=``) that drains
    ``connections`` on the server's own SIGTERM or SIGINT, before the server closes the
    sockets::

        app = FastAPI(lifespan=lifespan(connections))

    On startup it puts a handler in front of the server's signal handlers: the first signal
    starts the drain, and the server's own handler runs once every connection is closed (a
    second SIGINT closes the rest at once; a repeated SIGTERM does not). Its state holds
    ``connections`` (``websocket.state.connections``). On shutdown whatever is still open
    is closed at once. Your own lifespan can enter it: ``async with lifespan(connections)(app):``.
    """
    instance(connections, Connections, "connections")

    @asynccontextmanager
    async def drain_on_shutdown(_: Any) -> AsyncIterator[dict[str, Any]]:
        restore = _chain_signal_handlers(connections)
        try:
            yield {"connections": connections}
        finally:
            restore()
            if len(connections):  # what a drain left open; no second drain to count else
                await connections.drain(window=0)

    return drain_on_shutdown


def _chain_signal_handlers(connections: Connections) -> Callable[[], None]:
    """Put a drain in front of the server's SIGTERM and SIGINT handlers; how to undo it."""
    if threading.current_thread() is not threading.main_thread():
        logger.debug("not in the main thread: no drain on signals")
        return lambda: None
    loop = asyncio.get_running_loop()
    # Only handlers this process can chain to: a Python callable, or the default action. One
    # installed outside Python (getsignal() gives None) or an ignored signal is left alone:
    # taking it over could keep the server from stopping.
    previous: dict[int, Any] = {
        sig: old
        for sig in (signal.SIGTERM, signal.SIGINT)
        if callable(old := signal.getsignal(sig)) or old == signal.SIG_DFL
    }
    chained: set[asyncio.Task[int]] = set()

    def drain_first(signum: int, frame: FrameType | None) -> None:
        drain = connections.start_drain(signum)  # the first drains
        if drain not in chained:  # then the server's own handler, once
            chained.add(drain)
            drain.add_done_callback(lambda _: _call(previous[signum], signum, frame))

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(drain_first, signum, frame)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, old)

    return restore


def _call(handler: Any, signum: int, frame: FrameType | None) -> None:
    """Run a signal handler as the signal would have: a callable, or the default action."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

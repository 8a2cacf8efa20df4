"""Adapter for the ``websockets`` library (``websockets.asyncio``, version 14 or later).

Server::

    from websockets.asyncio.server import serve
    from ws_close_policy import Outcome, Policy
    from ws_close_policy.adapters import Connections
    from ws_close_policy.adapters.websockets import (
        admit, authenticate, chain, drain_on_signal, guard, serve_options,
    )

    policy = Policy()
    connections = Connections(max_open=1000)

    async def handler(ws):
        async with guard(ws, policy, connections=connections) as conn:  # 1000 / 1011
            async for message in conn:            # only valid messages; bad ones close 1002
                await conn.send({"type": "pong"})

    async with serve(handler, "127.0.0.1", 8765,
                     process_request=chain(authenticate(token_ok), admit(connections)),
                     **serve_options(policy)):
        await drain_on_signal(connections)        # SIGTERM: every client sees 1012

The reconnecting client lives in :mod:`ws_close_policy.client`.
"""

from __future__ import annotations

import asyncio
import http
import signal
from collections.abc import Awaitable, Callable
from typing import Any

try:
    from websockets.asyncio.client import ClientConnection
    from websockets.asyncio.server import ServerConnection, broadcast
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosed
    from websockets.frames import Close as Frame
    from websockets.http11 import Request, Response
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "ws_close_policy.adapters.websockets needs websockets: "
        "pip install 'ws-close-policy[websockets]'"
    ) from exc

from .._actions import Reject
from .._arguments import function, instance
from ..policy import DEFAULT, Policy, server_max_size
from ..session import Disconnect, Observer
from ._connection import CLOSE_TIMEOUT, PolicyConnection
from ._connections import Connections, refusal_from

__all__ = [
    "ProcessRequest",
    "admit",
    "authenticate",
    "chain",
    "drain_on_signal",
    "guard",
    "serve_options",
    "to_response",
]


class _WebsocketsTransport:
    """A websockets connection: its own ``recv`` and ``send``, called directly; how it
    ended is read from ``ConnectionClosed``'s frames."""

    closed: tuple[type[Exception], ...] = (ConnectionClosed,)

    def __init__(self, connection: ServerConnection | ClientConnection) -> None:
        self.connection = connection
        self.receive = connection.recv
        self.send = connection.send
        # websockets documents no accessor for its write buffer: its asyncio transport's.
        self.write_buffer_size = connection.transport.get_write_buffer_size

    def disconnect(self, exc: Exception) -> Disconnect:
        assert isinstance(exc, ConnectionClosed)
        return Disconnect.from_frames(_frame(exc.rcvd), _frame(exc.sent), exc.rcvd_then_sent)

    async def close(self, code: int, reason: str) -> None:
        # It waits for the peer's close frame itself (close_timeout), dropping late messages.
        await self.connection.close(code, reason)

    def remote(self) -> str | None:
        address = self.connection.remote_address
        return None if not address else f"{address[0]}:{address[1]}"

    @staticmethod
    def send_many(transports: list[_WebsocketsTransport], data: str | bytes, text: bool) -> None:
        # One websockets.broadcast: it skips the connections that are closing.
        broadcast([t.connection for t in transports], data, text=text)


def _frame(frame: Frame | None) -> tuple[int, str] | None:
    return None if frame is None else (int(frame.code), frame.reason)


def guard(
    connection: ServerConnection | ClientConnection,
    policy: Policy = DEFAULT,
    *,
    connections: Connections | None = None,
    observer: Observer | None = None,
) -> PolicyConnection:
    """Wrap a ``websockets`` connection so the policy decides every message and close;
    ``connections`` (the app's admission limit, drain and fan-out) and ``observer`` (gets
    the ``CloseEvent``) as for every adapter."""
    if not isinstance(connection, ServerConnection | ClientConnection):
        raise TypeError(
            f"connection must be a websockets ServerConnection or ClientConnection, "
            f"not {type(connection).__name__}"
        )
    return PolicyConnection(
        _WebsocketsTransport(connection), policy, connections=connections, observer=observer
    )


def serve_options(policy: Policy = DEFAULT, **options: Any) -> dict[str, Any]:
    """Keyword arguments for ``websockets.asyncio.server.serve``: yours, merged with the
    policy's message limit.

    ``max_size`` becomes ``policy.server_max_size(policy)`` (twice the policy's limit): a
    message over the policy's limit but within that reaches the policy, which closes with
    the profile's code and reason; a larger one is refused by websockets from its frame
    header, before it is buffered, with websockets' own reason.

    Your own ``max_size`` (an int, ``None``, or a ``(message, fragment)`` pair) is merged:
    the stricter limit wins; one below the policy's limit is a ``ValueError`` that says why,
    a wrong type a ``TypeError``. ``close_timeout`` (how long websockets waits for the
    client's close frame) defaults to ``CLOSE_TIMEOUT`` (5 s), every adapter's wait, not
    websockets' 10 s. Every other option passes through, ``origins=`` included (the
    ``Origin`` allow-list: other origins get HTTP 403 before the upgrade).
    """
    merged = {"close_timeout": CLOSE_TIMEOUT, **options}
    given = options.get("max_size")
    parts = given if isinstance(given, tuple) else (given, None)
    if len(parts) != 2:
        raise ValueError(
            f"max_size must be an int, None or a (message, fragment) pair, got {given!r}"
        )
    message = server_max_size(policy, parts[0])
    if parts[1] is None:
        merged["max_size"] = message
    else:
        merged["max_size"] = (message, server_max_size(policy, parts[1], what="fragment"))
    return merged


def to_response(reject: Reject) -> Response:
    """A ``Reject`` as a ``websockets`` HTTP response (for ``process_request``)."""
    instance(reject, Reject, "reject")
    headers = Headers(reject.headers)
    headers["Content-Length"] = str(len(reject.body))
    headers["Connection"] = "close"
    status = http.HTTPStatus(reject.status)
    return Response(status.value, status.phrase, headers, reject.body)


Check = Callable[[Request], "bool | Reject | Awaitable[bool | Reject]"]
#: The type of a ``process_request`` hook.
ProcessRequest = Callable[[ServerConnection, Request], Awaitable[Response | None]]


def authenticate(check: Check, *, realm: str = "websocket") -> ProcessRequest:
    """A ``process_request`` hook refusing the upgrade when ``check(request)`` fails.

    ``check`` (sync or async) returns ``True`` to let the connection through, ``False`` for
    401 with ``WWW-Authenticate: Bearer realm=...``, or a ``Reject`` to send instead. An
    exception in ``check`` is logged and answered with 401 (never leaked). Compare tokens
    with ``hmac.compare_digest``, as the examples do.
    """
    function(check, "check")
    unauthorized = Reject.unauthorized(realm=realm)

    async def process_request(_: ServerConnection, request: Request) -> Response | None:
        refusal = await refusal_from(check, request, unauthorized)
        return None if refusal is None else to_response(refusal)

    return process_request


def admit(connections: Connections, *, retry_after: int | None = None) -> ProcessRequest:
    """A ``process_request`` hook answering HTTP 503 (with ``Retry-After`` when given) while
    ``connections`` is full or draining. Clients other than browsers read the status;
    browsers cannot, and ``guard`` alone closes the extra connection with 1013 instead."""
    instance(connections, Connections, "connections")
    unavailable = to_response(Reject.unavailable(retry_after))

    async def process_request(_: ServerConnection, __: Request) -> Response | None:
        return None if connections.admission() is None else unavailable

    return process_request


def chain(*hooks: ProcessRequest) -> ProcessRequest:
    """Run ``process_request`` hooks in order; the first response wins."""
    for hook in hooks:
        function(hook, "hook")

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        for hook in hooks:
            response = await hook(connection, request)
            if response is not None:
                return response
        return None

    return process_request


async def drain_on_signal(connections: Connections, *signals: signal.Signals) -> int:
    """Wait for SIGTERM or SIGINT (or ``signals``), then drain ``connections``; returns how
    many it closed. A second SIGINT closes the rest at once (``Connections.start_drain``).
    For ``websockets.serve``,
    whose app owns the event loop::

        async with serve(handler, host, port):
            await drain_on_signal(connections)
    """
    instance(connections, Connections, "connections")
    loop = asyncio.get_running_loop()
    drains: list[asyncio.Task[int]] = []
    signalled = asyncio.Event()

    def on_signal(signum: int) -> None:
        drains.append(connections.start_drain(signum))  # the first drains
        signalled.set()

    wanted = signals or (signal.SIGTERM, signal.SIGINT)
    for sig in wanted:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await signalled.wait()
        return await drains[0]
    finally:
        for sig in wanted:
            loop.remove_signal_handler(sig)

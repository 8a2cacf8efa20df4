"""Adapter for the ``websockets`` library (``websockets.asyncio``, version 14 or later).

Server::

    from websockets.asyncio.server import serve
    from ws_close_policy import Outcome, Policy
    from ws_close_policy.adapters.websockets import (
        Connections, authenticate, chain, admit, guard, serve_options,
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
        await connections.drain_on_signal()       # SIGTERM: every client sees 1012

The reconnecting client lives in :mod:`ws_close_policy.client`.
"""

from __future__ import annotations

import http
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

try:
    from websockets.asyncio.client import ClientConnection
    from websockets.asyncio.server import ServerConnection, broadcast
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request, Response
    from websockets.protocol import State as ProtocolState
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "ws_close_policy.adapters.websockets needs websockets: "
        "pip install 'ws-close-policy[websockets]'"
    ) from exc

from ..actions import Reject
from ..arguments import function, instance, positive_int
from ..policy import DEFAULT, Policy
from ..session import Observer
from .connection import (
    Closed,
    Connections,
    PolicyConnection,
    refusal_from,
    server_max_size,
)

__all__ = [
    "Closed",
    "Connections",
    "PolicyConnection",
    "admit",
    "authenticate",
    "chain",
    "guard",
    "serve_options",
    "server_max_size",
    "to_response",
]


class _WebsocketsTransport:
    def __init__(self, connection: ServerConnection | ClientConnection) -> None:
        self.connection = connection

    async def receive(self) -> str | bytes:
        try:
            return await self.connection.recv()
        except ConnectionClosed:
            raise self._closed() from None

    async def send(self, data: str | bytes, text: bool) -> None:
        try:
            await self.connection.send(data, text=text)
        except ConnectionClosed:
            raise self._closed() from None

    async def close(self, code: int, reason: str, *, linger: bool = True) -> None:  # noqa: ARG002
        # Idempotent; waits for the closing handshake (close_timeout), reading and dropping
        # whatever the peer still sends until its close frame arrives. websockets has no
        # way to skip that wait, and when its server goes away it does the same itself.
        await self.connection.close(code, reason)

    def peer_close(self) -> Closed | None:
        protocol = self.connection.protocol
        sent, received = protocol.close_sent, protocol.close_rcvd
        if sent is not None and (received is None or not protocol.close_rcvd_then_sent):
            # This side closed first: the policy (the session knows) or websockets itself.
            return Closed(int(sent.code), sent.reason, server=True)
        if received is not None:
            return Closed(int(received.code), received.reason)
        if protocol.state is ProtocolState.CLOSED:
            return Closed(frame=False)
        return None

    async def deliver(
        self,
        transports: Sequence[_WebsocketsTransport],
        data: str | bytes,
        text: bool,
        *,
        max_buffer: int,
        slow_after: float,  # noqa: ARG002 - websockets says what it buffers
    ) -> list[_WebsocketsTransport]:
        # websockets' own broadcast: the frame is built once and written to each connection
        # without awaiting any (it skips connections that are closing).
        broadcast([t.connection for t in transports], data, text=text)
        return [
            t for t in transports if t.connection.transport.get_write_buffer_size() > max_buffer
        ]

    def remote(self) -> str | None:
        address = self.connection.remote_address
        return None if not address else f"{address[0]}:{address[1]}"

    def _closed(self) -> Closed:
        # websockets raises ConnectionClosed once its protocol is CLOSED, built from the
        # protocol's close frames: peer_close reads the same ones.
        return self.peer_close() or Closed(frame=False)


def guard(
    connection: ServerConnection | ClientConnection,
    policy: Policy = DEFAULT,
    *,
    connections: Connections | None = None,
    observer: Observer | None = None,
) -> PolicyConnection:
    """Wrap a ``websockets`` connection so the policy decides every message and close.

    ``connections``: the app's :class:`Connections`, for its admission limit (the
    connection past ``max_open`` is accepted and closed with 1013, a code browsers can
    read), its drain and its fan-out. ``observer`` gets the ``CloseEvent``.
    """
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

    ``max_size`` becomes :func:`server_max_size` (twice the policy's limit): a message over
    the policy's limit but within that reaches the policy, which closes with the profile's
    code and reason; a larger one is refused by websockets from its frame header, before
    it is buffered, with websockets' own reason. Every other close keeps websockets' reason
    (for instance "too many fragments").

    Your own ``max_size`` (an int, ``None``, or a ``(message, fragment)`` pair) is merged:
    the stricter limit wins. A message or fragment limit below the policy's limit is a
    conflict (websockets would refuse single-frame messages the policy accepts), and raises
    a ``ValueError`` that says so; a wrong type is a ``TypeError``. Every other option
    passes through, ``origins=`` included (the ``Origin`` allow-list: other origins get
    HTTP 403 before the upgrade).
    """
    limit = server_max_size(policy)
    merged = dict(options)
    if "max_size" not in options:
        merged["max_size"] = limit
        return merged
    message, fragment = _max_size(options["max_size"])
    for part, what in ((message, "message"), (fragment, "fragment")):
        if part is not None and part < policy.inbound.max_bytes:
            raise ValueError(
                f"max_size: a {what} limit of {part} bytes is below the policy's inbound "
                f"limit ({policy.inbound.max_bytes} bytes): websockets would refuse messages "
                "the policy accepts, with its own reason; lower InboundPolicy.max_bytes instead"
            )
    stricter = limit if message is None else min(message, limit)
    merged["max_size"] = stricter if fragment is None else (stricter, fragment)
    return merged


def _max_size(value: object) -> tuple[int | None, int | None]:
    """websockets' ``max_size``: an int, ``None``, or a ``(message, fragment)`` pair."""
    parts = value if isinstance(value, tuple) else (value, None)
    if len(parts) != 2:
        raise ValueError(
            f"max_size must be an int, None or a (message, fragment) pair, got {value!r}"
        )
    message, fragment = (None if part is None else positive_int(part, "max_size") for part in parts)
    return message, fragment


def to_response(reject: Reject) -> Response:
    """A ``Reject`` as a ``websockets`` HTTP response (for ``process_request``)."""
    instance(reject, Reject, "reject")
    headers = Headers(reject.headers)
    headers["Content-Length"] = str(len(reject.body))
    headers["Connection"] = "close"
    status = http.HTTPStatus(reject.status)
    return Response(status.value, status.phrase, headers, reject.body)


Check = Callable[[Request], "bool | Reject | Awaitable[bool | Reject]"]
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

    async def process_request(
        connection: ServerConnection,  # noqa: ARG001 - the hook's signature
        request: Request,
    ) -> Response | None:
        refusal = await refusal_from(check, request, unauthorized)
        return None if refusal is None else to_response(refusal)

    return process_request


def admit(connections: Connections, *, retry_after: int | None = None) -> ProcessRequest:
    """A ``process_request`` hook answering HTTP 503 (with ``Retry-After`` when given) while
    ``connections`` is full or draining. Clients other than browsers read the status;
    browsers cannot, and ``guard`` alone closes the extra connection with 1013 instead."""
    instance(connections, Connections, "connections")
    unavailable = Reject.unavailable(retry_after)

    async def process_request(
        connection: ServerConnection,  # noqa: ARG001 - the hook's signature
        request: Request,  # noqa: ARG001
    ) -> Response | None:
        if connections.full or connections.draining:
            return to_response(unavailable)
        return None

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

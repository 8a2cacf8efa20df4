"""Adapter for ``aiohttp.web`` (3.11 or later): handler decorators refusing before the upgrade,
``websocket(policy)`` for the response, ``guard`` around it (it prepares the response), and
``drain_on_shutdown`` for ``web.run_app``'s signals. See ``examples/aiohttp_app.py``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

try:
    from aiohttp import WSMsgType, web
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "ws_close_policy.adapters.aiohttp needs aiohttp: pip install 'ws-close-policy[aiohttp]'"
    ) from exc

from .._actions import Reject
from .._arguments import function, instance
from ..lifecycle import Origin, Origins
from ..policy import DEFAULT, Policy, server_max_size
from ..session import Disconnect, Observer
from ._connection import CLOSE_TIMEOUT, Gone, PolicyConnection, Translating
from ._connections import Connections, refusal_from

__all__ = ["admit", "authenticate", "check_origin", "drain_on_shutdown", "guard", "websocket"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Decorator = Callable[[Handler], Handler]


class _AiohttpTransport(Translating):  # one WebSocketResponse; it answers a peer's close
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws, self.request = ws, request
        self._gone: Disconnect | None = None

    async def receive(self) -> str | bytes:
        if self._gone is None:
            message = await self.ws.receive()
            if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
                return message.data  # type: ignore[no-any-return]
            if message.type is WSMsgType.CLOSE:  # the peer's close frame
                self._gone = Disconnect.from_frames((message.data, message.extra or ""), None)
            elif message.type is WSMsgType.ERROR and hasattr(message.data, "code"):
                self._gone = Disconnect.from_frames(None, (message.data.code, ""))  # its own
            else:  # CLOSING (ours is under way), CLOSED or another ERROR: no frame from it
                self._gone = Disconnect()
        raise Gone(self._gone)

    async def send(self, data: str | bytes, *, text: bool) -> None:
        try:
            if isinstance(data, str):
                await self.ws.send_str(data)
            else:
                await self.ws.send_frame(data, WSMsgType.TEXT if text else WSMsgType.BINARY)
        except OSError:  # "Cannot write to closing transport": the peer is gone
            raise Gone(Disconnect()) from None

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    def remote(self) -> str | None:
        peer = self.ws.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if peer else None

    def write_buffer_size(self) -> int:
        return self.request.transport.get_write_buffer_size() if self.request.transport else 0


def guard(
    ws: web.WebSocketResponse,
    request: web.Request,
    policy: Policy = DEFAULT,
    *,
    connections: Connections | None = None,
    observer: Observer | None = None,
) -> PolicyConnection:
    """Wrap ``ws`` (prepared for ``request`` on entry if not yet): the policy decides every
    message and close; ``connections`` and ``observer`` as for the other adapters."""
    instance(ws, web.WebSocketResponse, "ws")
    instance(request, web.BaseRequest, "request")

    async def prepare() -> None:
        if not ws.prepared:
            await ws.prepare(request)

    transport = _AiohttpTransport(ws, request)
    return PolicyConnection(
        transport, policy, connections=connections, observer=observer, accept=prepare
    )


def websocket(policy: Policy = DEFAULT, **options: Any) -> web.WebSocketResponse:
    """A ``WebSocketResponse``: your ``options``, ``max_msg_size`` merged by
    ``policy.server_max_size`` (aiohttp's ``0`` is none), ``timeout`` ``CLOSE_TIMEOUT``."""
    yours = options.get("max_msg_size") or None
    options["max_msg_size"] = server_max_size(policy, yours, name="max_msg_size")
    options.setdefault("timeout", CLOSE_TIMEOUT)
    return web.WebSocketResponse(**options)


def _refusing(decide: Callable[[web.Request], Any]) -> Decorator:
    """A handler decorator answering ``decide(request)``'s ``Reject`` (sync or async)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def refusing(request: web.Request) -> web.StreamResponse:
            refusal = decide(request)
            if inspect.isawaitable(refusal):
                refusal = await refusal
            if refusal is None:
                return await handler(request)
            return web.Response(status=refusal.status, headers=refusal.headers, body=refusal.body)

        return refusing

    return decorate


def authenticate(check: Callable[[web.Request], Any], *, realm: str = "websocket") -> Decorator:
    """HTTP 401 with ``WWW-Authenticate`` unless ``check(request)`` (sync or async) returns
    ``True``; a ``Reject`` it returns is sent instead; an exception in it is logged, 401."""
    refused = Reject.unauthorized(realm=realm)
    return _refusing(functools.partial(refusal_from, function(check, "check"), otherwise=refused))


def check_origin(origins: Iterable[Origin]) -> Decorator:
    """HTTP 403 unless the ``Origin`` header is allowed (``lifecycle.Origins``)."""
    allowed = Origins(origins)
    return _refusing(lambda request: allowed.refusal(request.headers.get("Origin")))


def admit(connections: Connections, *, retry_after: int | None = None) -> Decorator:
    """HTTP 503 (``Retry-After`` when given) while ``connections`` is full or draining."""
    refused = Reject.unavailable(retry_after)
    instance(connections, Connections, "connections")
    return _refusing(lambda _: None if connections.admission() is None else refused)


def drain_on_shutdown(app: web.Application, connections: Connections) -> None:
    """Drain ``connections`` (1012) when ``app`` shuts down (``web.run_app`` on SIGTERM or
    SIGINT), before aiohttp waits for the handlers; a second signal cancels them (1001)."""
    instance(connections, Connections, "connections")

    async def drain(_: web.Application) -> None:
        await connections.drain()

    app.on_shutdown.append(drain)

"""Adapter for Starlette and FastAPI, on any ASGI server (uvicorn, hypercorn, ...).

The same ``PolicyConnection`` as the ``websockets`` adapter. It always sends an explicit,
valid close frame before the app returns (so no server turns a crash into 1006), never
passes a code or reason a server would choke on, and never lets a send after the peer left
raise out of the adapter::

    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from ws_close_policy import Outcome, Policy
    from ws_close_policy.adapters.starlette import authenticated, guard

    policy = Policy()

    @authenticated(lambda ws: ws.query_params.get("token") == "demo-token", realm="jobs")
    async def jobs(websocket):
        async with guard(websocket, policy) as conn:     # accepts; 1000 / 1011 on exit
            async for message in conn:
                if message["type"] == "cancel":
                    await conn.close(Outcome.CANCELLED)
                else:
                    await conn.send({"type": "pong"})

    app = Starlette(routes=[WebSocketRoute("/jobs/{job_id}", jobs)])
"""

from __future__ import annotations

import functools
import random as _random
from collections.abc import Awaitable, Callable
from typing import Any, Literal, ParamSpec

from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..actions import Reject
from ..codes import CloseCode
from ..enums import Outcome
from ..lifecycle import close_for
from ..policy import DEFAULT, Policy
from ..session import Observer
from .connection import (
    PeerGone,
    PolicyConnection,
    Registry,
    logger,
    positive_limit,
    refusal_from,
)

__all__ = [
    "DENIAL_EXTENSION",
    "PolicyConnection",
    "admitted",
    "authenticated",
    "drain",
    "guard",
    "registry",
    "reject",
    "server_max_size",
]

#: The ASGI extension that lets an app answer the handshake with an HTTP response.
DENIAL_EXTENSION = "websocket.http.response"

#: The guarded Starlette connections open in this process.
registry = Registry()

Fallback = Literal["accept_close", "close"]


class _StarletteTransport:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._peer: PeerGone | None = None

    async def receive(self) -> str | bytes:
        if self._peer is not None:
            raise self._peer
        try:
            message = await self.websocket.receive()
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._peer = PeerGone(frame=False)
            raise self._peer from None
        if message["type"] == "websocket.disconnect":
            self._peer = _peer_from(message.get("code"), message.get("reason") or "")
            raise self._peer
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def send(self, data: str | bytes, text: bool) -> None:
        # ASGI carries text frames as str: orjson / msgspec output is decoded once here.
        if text and isinstance(data, bytes):
            data = data.decode("utf-8")
        message = (
            {"type": "websocket.send", "text": data}
            if text
            else {
                "type": "websocket.send",
                "bytes": data,
            }
        )
        try:
            await self.websocket.send(message)
        except WebSocketDisconnect as exc:
            raise _peer_from(exc.code, exc.reason or "") from None
        except (RuntimeError, OSError):
            raise PeerGone(frame=False) from None

    async def close(self, code: int, reason: str) -> None:
        if self.websocket.application_state is not WebSocketState.CONNECTED:
            return
        try:
            await self.websocket.close(code, reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            logger.debug("close frame not sent: the connection is already gone")

    def peer_close(self) -> PeerGone | None:
        return self._peer


def _peer_from(code: object, reason: str) -> PeerGone:
    if not isinstance(code, int) or code == CloseCode.ABNORMAL_CLOSURE:
        return PeerGone(frame=False)
    if code == CloseCode.NO_STATUS_RCVD:
        return PeerGone(None, "")
    return PeerGone(code, reason)


class _GuardedConnection(PolicyConnection):
    """Accepts the WebSocket on entry when the app has not done so yet."""

    def __init__(self, websocket: WebSocket, *args: Any, **kwargs: Any) -> None:
        super().__init__(_StarletteTransport(websocket), *args, **kwargs)
        self.websocket = websocket

    async def __aenter__(self) -> PolicyConnection:
        if self.websocket.application_state is WebSocketState.CONNECTING:
            await self.websocket.accept()
        return await super().__aenter__()


def guard(
    websocket: WebSocket,
    policy: Policy = DEFAULT,
    *,
    observer: Observer | None = None,
    max_connections: int | None = None,
) -> PolicyConnection:
    """Wrap a Starlette (or FastAPI) WebSocket so the policy decides every message and close.

    Entering the block accepts the connection if the app has not. ``max_connections``: when
    that many guarded connections are open, this one is accepted and closed with 1013.
    """
    return _GuardedConnection(
        websocket, policy, observer=observer, registry=registry, max_connections=max_connections
    )


async def drain(
    outcome: Outcome = Outcome.RESTARTING,
    window: float = 5.0,
    *,
    random: Callable[[], float] = _random.random,
) -> int:
    """Close every guarded open connection with ``outcome`` (1012 by default), spread with
    jitter over ``window`` seconds; returns how many. Call it from your shutdown path
    before the server's own (uvicorn closes every socket with 1012 at once on SIGTERM;
    hypercorn drops them)."""
    return await registry.drain(outcome, window, random=random)


_FALLBACK_OUTCOME = {401: Outcome.POLICY_VIOLATION, 403: Outcome.POLICY_VIOLATION}


async def reject(
    websocket: WebSocket,
    refusal: Reject,
    policy: Policy = DEFAULT,
    *,
    fallback: Fallback = "accept_close",
) -> None:
    """Refuse the handshake with ``refusal``'s HTTP status, before ``accept()``.

    Uses the ASGI ``websocket.http.response`` extension when the server offers it (uvicorn
    and hypercorn do). Otherwise ``fallback`` decides: ``"accept_close"`` accepts and closes
    with the profile's code (1008 for 401/403, 1013 for 429/503: browsers can read it), or
    ``"close"`` closes before accepting (the client sees HTTP 403, the status is lost).
    """
    if websocket.application_state is not WebSocketState.CONNECTING:
        raise ValueError("reject() must be called before the WebSocket is accepted")
    if fallback not in ("accept_close", "close"):
        raise ValueError(f"fallback must be 'accept_close' or 'close', got {fallback!r}")
    if DENIAL_EXTENSION in websocket.scope.get("extensions", {}):
        response = Response(refusal.body, refusal.status, headers=dict(refusal.headers))
        await websocket.send_denial_response(response)
        return
    if fallback == "close":
        await websocket.close(CloseCode.POLICY_VIOLATION)
        return
    outcome = _FALLBACK_OUTCOME.get(refusal.status, Outcome.OVERLOADED)
    close = close_for(outcome, policy)
    await websocket.accept()
    await websocket.close(close.code, close.reason)


P = ParamSpec("P")
Check = Callable[[WebSocket], "bool | Reject | Awaitable[bool | Reject]"]


def _find_websocket(args: tuple[Any, ...], kwargs: dict[str, Any]) -> WebSocket:
    for value in (*args, *kwargs.values()):
        if isinstance(value, WebSocket):
            return value
    raise ValueError("the endpoint received no WebSocket argument")


def authenticated(
    check: Check,
    *,
    realm: str = "websocket",
    policy: Policy = DEFAULT,
    fallback: Fallback = "accept_close",
) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, Awaitable[None]]]:
    """Decorate a Starlette or FastAPI WebSocket endpoint with a pre-upgrade check.

    ``check(websocket)`` (sync or async) returns ``True``, ``False`` (401 with
    ``WWW-Authenticate: Bearer realm=...``) or a ``Reject``. An exception in the check is
    logged and answered 401. The endpoint keeps its signature, so FastAPI's dependency
    injection still works.
    """
    unauthorized = Reject.unauthorized(realm=realm)

    def decorate(endpoint: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
        @functools.wraps(endpoint)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
            websocket = _find_websocket(args, kwargs)
            refusal = await refusal_from(check, websocket, unauthorized)
            if refusal is not None:
                await reject(websocket, refusal, policy, fallback=fallback)
                return
            await endpoint(*args, **kwargs)

        return wrapper

    return decorate


def admitted(
    max_connections: int,
    *,
    retry_after: int | None = None,
    policy: Policy = DEFAULT,
    fallback: Fallback = "accept_close",
) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, Awaitable[None]]]:
    """Decorate an endpoint to refuse with HTTP 503 (``Retry-After``) before the upgrade
    while ``max_connections`` guarded connections are open. For browsers prefer
    ``guard(..., max_connections=N)``, which accepts and closes with 1013.
    """
    positive_limit(max_connections)
    unavailable = Reject.unavailable(retry_after)

    def decorate(endpoint: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
        @functools.wraps(endpoint)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
            if len(registry) >= max_connections:
                await reject(_find_websocket(args, kwargs), unavailable, policy, fallback=fallback)
                return
            await endpoint(*args, **kwargs)

        return wrapper

    return decorate


def server_max_size(policy: Policy = DEFAULT) -> int:
    """The server-side message limit that matches ``policy``: ``InboundPolicy.max_bytes``.

    Pass it as uvicorn's ``ws_max_size`` (``--ws-max-size``) or hypercorn's
    ``websocket_max_message_size`` so the server refuses oversized messages before
    buffering them. Where the server allows more, the policy's own check still closes
    with the profile's code (1009 "Message too large" under the default profile).
    """
    return policy.inbound.max_bytes

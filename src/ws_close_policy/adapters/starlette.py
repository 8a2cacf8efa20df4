"""Adapter for Starlette and FastAPI, on any ASGI server (uvicorn, hypercorn, granian ...):
``guard`` (it accepts), ``lifespan`` (drains on the server's SIGTERM), and the refusals
before the upgrade (``authenticate``, ``admit``, ``check_origin``): FastAPI dependencies,
or a call at the top of a plain Starlette endpoint. They raise Starlette's own exceptions:
``HTTPException`` (the HTTP refusal) where the server has the ASGI denial extension, else
``WebSocketException`` with the close ``lifecycle.refusal_close`` picks. See
``examples/fastapi_app.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

try:
    from starlette.exceptions import HTTPException, WebSocketException
    from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "ws_close_policy.adapters.starlette needs starlette: "
        "pip install 'ws-close-policy[starlette]'"
    ) from exc

from .._actions import Reject
from .._arguments import boolean, function, instance
from .._enums import Outcome
from ..lifecycle import Origin, Origins, refusal_close
from ..policy import DEFAULT, Policy
from ..session import Disconnect, Observer
from ._asgi import lifespan
from ._connection import Gone, PolicyConnection, Translating
from ._connections import Connections, refusal_from

__all__ = [
    "DENIAL_EXTENSION",
    "admit",
    "authenticate",
    "check_origin",
    "guard",
    "lifespan",
    "refuse",
]

#: The ASGI extension that lets an app answer the handshake with an HTTP response.
DENIAL_EXTENSION = "websocket.http.response"
Fallback = Literal["accept_close", "close"]


class _StarletteTransport(Translating):
    """One ASGI WebSocket. ASGI reports only a code for the end, never who sent it."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._gone: Disconnect | None = None

    async def receive(self) -> str | bytes:
        if self._gone is None:
            try:
                message = await self.websocket.receive()
            except (WebSocketDisconnect, OSError):
                self._gone = Disconnect()
            else:
                if message["type"] == "websocket.receive":
                    text = message.get("text")
                    return text if text is not None else bytes(message.get("bytes") or b"")
                self._gone = Disconnect.from_code(message.get("code"), message.get("reason", ""))
        raise Gone(self._gone)

    async def send(self, data: str | bytes, *, text: bool) -> None:
        message: dict[str, Any]
        if text:  # ASGI carries text frames as str: orjson / msgspec output is decoded once
            text_data = data if isinstance(data, str) else data.decode()
            message = {"type": "websocket.send", "text": text_data}
        else:
            binary = data.encode() if isinstance(data, str) else data
            message = {"type": "websocket.send", "bytes": binary}
        try:
            await self.websocket.send(message)
        except WebSocketDisconnect as gone:
            raise Gone(Disconnect.from_code(gone.code, gone.reason)) from None
        except OSError:
            raise Gone(Disconnect()) from None

    async def close(self, code: int, reason: str) -> None:
        # Starlette documents no accessor: application_state is its own record of the state.
        if self.websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, OSError):  # the client is gone
                await self.websocket.close(code, reason)

    def remote(self) -> str | None:
        client = self.websocket.client
        return None if client is None else f"{client.host}:{client.port}"


def guard(
    websocket: WebSocket,
    policy: Policy = DEFAULT,
    *,
    connections: Connections | None = None,
    observer: Observer | None = None,
) -> PolicyConnection:
    """Wrap a Starlette (or FastAPI) WebSocket (accepted on entry if the app has not): the
    policy decides every message and close; ``connections`` (the app's admission limit,
    drain and fan-out) and ``observer`` (gets the ``CloseEvent``) as for every adapter."""
    instance(websocket, WebSocket, "websocket")

    async def accept() -> None:
        if websocket.application_state is WebSocketState.CONNECTING:
            await websocket.accept()

    transport = _StarletteTransport(websocket)
    return PolicyConnection(
        transport, policy, connections=connections, observer=observer, accept=accept
    )


async def refuse(
    websocket: WebSocket,
    refusal: Reject,
    policy: Policy = DEFAULT,
    *,
    fallback: Fallback = "accept_close",
    outcome: Outcome | None = None,
    for_browsers: bool = False,
    reason: str | None = None,
) -> None:
    """Refuse the handshake with ``refusal``, before ``accept()``: always raises.

    ``HTTPException`` (its status and headers) where the server offers the
    ``websocket.http.response`` extension (uvicorn, hypercorn, granian). Elsewhere, or
    always with ``for_browsers=True`` (a browser reads close codes, never a refused
    handshake's status), ``WebSocketException`` with ``lifecycle.refusal_close(refusal,
    policy, outcome=outcome, reason=reason)``: after accepting (``fallback="accept_close"``,
    which browsers can read) or before, as HTTP 403 (``fallback="close"``).
    """
    if websocket.application_state is not WebSocketState.CONNECTING:
        raise ValueError("refuse() must be called before the WebSocket is accepted")
    _check_fallback(fallback)
    if DENIAL_EXTENSION in websocket.scope.get("extensions", {}) and not for_browsers:
        headers = {k: v for k, v in refusal.headers if k.lower() != "content-type"}
        raise HTTPException(refusal.status, refusal.body.decode().strip(), headers=headers)
    close = refusal_close(refusal, policy, outcome=outcome, reason=reason)
    if fallback == "accept_close" or for_browsers:
        await websocket.accept()
    raise WebSocketException(int(close.code), close.reason)


def _check_fallback(fallback: str) -> None:
    if fallback not in ("accept_close", "close"):
        raise ValueError(f"fallback must be 'accept_close' or 'close', got {fallback!r}")


Dependency = Callable[[WebSocket], Awaitable[None]]
#: A refusal (and the outcome standing for it), or None to let the connection through.
_Decide = Callable[[WebSocket], Awaitable[tuple[Reject, Outcome | None] | None]]


def _dependency(
    decide: _Decide, policy: Policy, fallback: Fallback, for_browsers: bool, reason: str | None
) -> Dependency:
    """A FastAPI dependency (``Depends(check)``), also awaitable in a plain endpoint."""
    instance(policy, Policy, "policy")
    _check_fallback(fallback)
    boolean(for_browsers, "for_browsers")

    async def check(websocket: WebSocket) -> None:
        decided = await decide(websocket)
        if decided is not None:
            refusal, outcome = decided
            await refuse(
                websocket,
                refusal,
                policy,
                fallback=fallback,
                outcome=outcome,
                for_browsers=for_browsers,
                reason=reason,
            )

    return check


def authenticate(
    check: Callable[[WebSocket], Any],
    *,
    realm: str = "websocket",
    policy: Policy = DEFAULT,
    fallback: Fallback = "accept_close",
    for_browsers: bool = False,
) -> Dependency:
    """A dependency: HTTP 401 with ``WWW-Authenticate: Bearer realm=...`` unless
    ``check(websocket)`` (sync or async) returns ``True``; a ``Reject`` it returns is sent
    instead; an exception in it is logged and answered 401. FastAPI solves a route's
    ``dependencies`` first, so ``dependencies=[Depends(authenticate(token_ok))]`` runs before
    any of yours. ``policy``, ``fallback``, ``for_browsers``: :func:`refuse`'s, for every
    check here."""
    function(check, "check")
    unauthorized = Reject.unauthorized(realm=realm)

    async def decide(websocket: WebSocket) -> tuple[Reject, None] | None:
        refusal = await refusal_from(check, websocket, unauthorized)
        return None if refusal is None else (refusal, None)

    return _dependency(decide, policy, fallback, for_browsers, None)


def admit(
    connections: Connections,
    *,
    retry_after: int | None = None,
    policy: Policy | None = None,
    fallback: Fallback = "accept_close",
    for_browsers: bool = False,
) -> Dependency:
    """A dependency: HTTP 503 (``Retry-After`` when given) while ``connections`` is full or
    draining; the fallback closes with its admission's code (1013, 1012 while draining),
    under ``policy`` (default ``connections.policy``)."""
    instance(connections, Connections, "connections")
    unavailable = Reject.unavailable(retry_after)

    async def decide(_: WebSocket) -> tuple[Reject, Outcome] | None:
        refused = connections.admission()
        return None if refused is None else (unavailable, refused)

    return _dependency(decide, policy or connections.policy, fallback, for_browsers, None)


def check_origin(
    origins: Iterable[Origin],
    *,
    policy: Policy = DEFAULT,
    fallback: Fallback = "accept_close",
    for_browsers: bool = False,
) -> Dependency:
    """A dependency: HTTP 403 unless the ``Origin`` header is one of ``origins``
    (``lifecycle.Origins``). Neither Starlette nor uvicorn checks it: without this any web
    page can open a WebSocket to your app in its visitor's name."""
    allowed = Origins(origins)

    async def decide(websocket: WebSocket) -> tuple[Reject, None] | None:
        refusal = allowed.refusal(websocket.headers.get("origin"))
        return None if refusal is None else (refusal, None)

    return _dependency(decide, policy, fallback, for_browsers, Origins.reason)

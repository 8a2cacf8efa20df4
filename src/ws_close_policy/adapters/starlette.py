"""Adapter for Starlette and FastAPI, on any ASGI server (uvicorn, hypercorn, granian ...).

The same ``PolicyConnection`` as the ``websockets`` adapter. It always sends an explicit,
valid close frame before the app returns (so no server turns a crash into 1006), then
reads until the client's close arrives (so no server loses the close frame under pipelined
messages), never passes a code or reason a server would choke on, and turns a departed
client into :class:`Closed` on the next send, on every server::

    from fastapi import Depends, FastAPI, WebSocket
    from ws_close_policy import Policy
    from ws_close_policy.adapters.starlette import Connections, authenticate, guard

    policy = Policy()
    connections = Connections(max_open=1000)
    app = FastAPI(lifespan=connections.lifespan)  # drains (1012) on the server's SIGTERM

    @app.websocket("/jobs/{job_id}", dependencies=[Depends(authenticate(token_ok))])
    async def jobs(websocket: WebSocket, job_id: str):
        async with guard(websocket, policy, connections=connections) as conn:
            async for message in conn:
                await conn.send({"type": "pong"})

Refusals before the upgrade (``authenticate``, ``admit``, ``check_origin``) are
dependencies in FastAPI's idiom, also usable as a call at the top of a plain Starlette
endpoint or as the ``@authenticated`` decorator. They raise the framework's own
exceptions, so its exception handling answers: ``HTTPException`` becomes the HTTP refusal
through the ``websocket.http.response`` extension where the server has it; elsewhere
``WebSocketException`` closes with the profile's code, after accepting so that browsers can
read it (``fallback="accept_close"``) or before, as HTTP 403 (``fallback="close"``).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, ParamSpec

try:
    from starlette.exceptions import HTTPException, WebSocketException
    from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "ws_close_policy.adapters.starlette needs starlette: "
        "pip install 'ws-close-policy[starlette]'"
    ) from exc

from ..actions import Reject
from ..arguments import boolean, function, instance
from ..codes import CloseCode, code_info
from ..enums import Outcome
from ..lifecycle import close_for
from ..policy import DEFAULT, Policy
from ..session import Observer
from .connection import (
    CLOSE_READ_LIMIT,
    CLOSE_TIMEOUT,
    Closed,
    Connections,
    PolicyConnection,
    refusal_from,
    server_max_size,
)
from .logs import logger

__all__ = [
    "DENIAL_EXTENSION",
    "Closed",
    "Connections",
    "PolicyConnection",
    "admit",
    "authenticate",
    "authenticated",
    "check_origin",
    "guard",
    "refuse",
    "server_max_size",
]

#: The ASGI extension that lets an app answer the handshake with an HTTP response.
DENIAL_EXTENSION = "websocket.http.response"

Fallback = Literal["accept_close", "close"]
_FALLBACKS = ("accept_close", "close")
#: Messages read ahead, once the app sends without reading (see _StarletteTransport).
_INBOX = 16


class _StarletteTransport:
    """One ASGI WebSocket, read and written through Starlette.

    Some servers (hypercorn, granian) report success for a send after the client left,
    and only say so on the receive channel. So once the app sends twice in a row without
    reading, a background task reads ahead (at most 16 messages, then it waits for the
    app), and a departure shows up on the next send. An app that reads as it sends never
    starts that task.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._peer: Closed | None = None  # the client's close, once read
        self._closing = False  # we sent a close frame
        self.close_refused: Exception | None = None  # the server could not send our code
        self._read_lock = asyncio.Lock()  # one reader of the ASGI channel at a time
        self._sends_unread = 0  # sends since the app last read
        self._reader: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None  # made with the reader

    # --- reading ---------------------------------------------------------------------------

    async def receive(self) -> str | bytes:
        self._sends_unread = 0
        while True:
            inbox = self._inbox
            if self._peer is not None and (inbox is None or inbox.empty()):
                raise self._peer
            message = await (inbox.get() if inbox is not None else self._read_one())
            if message["type"] == "websocket.disconnect":
                raise self._peer or _peer_from(message)
            if not self._closing:  # after our close, late messages are dropped
                text = message.get("text")
                return str(text) if text is not None else bytes(message.get("bytes") or b"")

    async def _read_one(self) -> dict[str, Any]:
        """The next ASGI message; a disconnect (or a transport error) is remembered."""
        async with self._read_lock:
            if self._peer is not None:
                return {"type": "websocket.disconnect", "code": self._peer.code}
            try:
                message = dict(await self.websocket.receive())
            except (WebSocketDisconnect, OSError):
                message = {"type": "websocket.disconnect", "code": CloseCode.ABNORMAL_CLOSURE}
            if message["type"] == "websocket.disconnect":
                self._peer = _peer_from(message)
            return message

    def _read_ahead(self) -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_INBOX)

        async def read() -> None:
            while self._peer is None:
                message = await self._read_one()
                if not self._closing or message["type"] == "websocket.disconnect":
                    await inbox.put(message)

        self._inbox = inbox  # made only now: about 3 KiB that most connections never need
        self._reader = asyncio.ensure_future(read())

    # --- writing ---------------------------------------------------------------------------

    async def send(self, data: str | bytes, text: bool) -> None:
        if self._peer is not None:
            raise self._peer
        if self._reader is None and not self._read_lock.locked():
            self._sends_unread += 1
            if self._sends_unread > 1:  # sending without reading: watch for a departure
                self._read_ahead()
        message: dict[str, Any] = {"type": "websocket.send"}
        if text:  # ASGI carries text frames as str: orjson / msgspec output is decoded once
            message["text"] = _as_text(data)
        else:
            message["bytes"] = data.encode() if isinstance(data, str) else data
        try:
            await self.websocket.send(message)
        except WebSocketDisconnect as exc:
            self._peer = self._peer or _peer_from({"code": exc.code, "reason": exc.reason})
            raise self._peer from None
        except OSError:
            self._peer = self._peer or Closed(frame=False)
            raise self._peer from None

    # --- closing ---------------------------------------------------------------------------

    async def close(self, code: int, reason: str, *, linger: bool = True) -> None:
        if self._closing:
            return
        self._closing = True
        # Bounded as a whole: a server may leave a send pending for good once it has dropped
        # the connection (granian, shutting down).
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                if await self._send_close(code, reason) and linger:
                    await self._until_peer_closes()
        except TimeoutError:
            logger.debug("no close frame from the client within %s s", CLOSE_TIMEOUT)
            if self._reader is not None:
                self._reader.cancel()

    async def _send_close(self, code: int, reason: str) -> bool:
        """Send the close frame; whether to wait for the client's."""
        if self.websocket.application_state is not WebSocketState.CONNECTED:
            return True
        try:
            await self.websocket.close(int(code), reason)  # a plain int: daphne needs one
        except (WebSocketDisconnect, OSError):
            pass  # the client is gone already
        except Exception as exc:  # the server refused the close frame: end without it
            logger.warning("the server could not send close code %d: %s", code, exc)
            self.close_refused = exc
            return False
        return True

    async def _until_peer_closes(self) -> None:
        """Read (and drop) until the client's close arrives, so that messages it pipelined
        before seeing ours cannot make the server lose our close frame. At most
        CLOSE_READ_LIMIT bytes (and CLOSE_TIMEOUT seconds: see close)."""
        if self._reader is not None and self._inbox is not None:
            while not self._inbox.empty():  # unread messages: dropped, so that the reader
                self._inbox.get_nowait()  # is not stuck on a full inbox
            await self._reader
            return
        dropped = 0
        while self._peer is None and dropped <= CLOSE_READ_LIMIT:
            message = await self._read_one()
            dropped += len(message.get("text") or message.get("bytes") or b"")

    def peer_close(self) -> Closed | None:
        return self._peer

    def remote(self) -> str | None:
        client = self.websocket.client
        return None if client is None else f"{client.host}:{client.port}"

    async def deliver(
        self,
        transports: Sequence[_StarletteTransport],
        data: str | bytes,
        text: bool,
        *,
        max_buffer: int,  # noqa: ARG002 - ASGI cannot say what is buffered
        slow_after: float,
    ) -> list[_StarletteTransport]:
        # ASGI cannot say how much is buffered: a send still pending after slow_after is.
        sends = {asyncio.ensure_future(t.send(data, text)): t for t in transports}
        done, pending = await asyncio.wait(sends, timeout=slow_after)
        for task in pending:
            task.cancel()
        for task in done:
            task.exception()  # a departed client (Closed): its handler sees it next
        return [sends[task] for task in pending]


def _as_text(data: str | bytes) -> str:
    return data if isinstance(data, str) else data.decode("utf-8")


def _peer_from(message: dict[str, Any]) -> Closed:
    """How the connection ended, from an ASGI disconnect. ASGI does not say who closed; a
    code only servers send (1011-1014) must be this side's server's own."""
    code = message.get("code")
    if not isinstance(code, int) or code == CloseCode.ABNORMAL_CLOSURE:
        return Closed(frame=False)
    if code == CloseCode.NO_STATUS_RCVD:
        return Closed(None, "")
    reason = message.get("reason") or ""
    info = code_info(code)
    return Closed(int(code), reason, server=info is not None and info.sent_by == "server")


class _GuardedConnection(PolicyConnection):
    """Accepts the WebSocket on entry when the app has not done so yet."""

    def __init__(self, websocket: WebSocket, *args: Any, **kwargs: Any) -> None:
        self._asgi = _StarletteTransport(websocket)
        super().__init__(self._asgi, *args, **kwargs)
        self.websocket = websocket

    async def __aenter__(self) -> PolicyConnection:
        if self.websocket.application_state is WebSocketState.CONNECTING:
            await self.websocket.accept()
        return await super().__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool:
        suppress = await super().__aexit__(*exc_info)
        refused = self._asgi.close_refused
        if refused is not None and (exc_info[1] is None or suppress):
            # A server that cannot send the code (daphne sends only 1000 and 3000-4999)
            # would leave the connection open after the app returns: end it its own way.
            raise RuntimeError(f"the server could not send the close frame: {refused}")
        return suppress


def guard(
    websocket: WebSocket,
    policy: Policy = DEFAULT,
    *,
    connections: Connections | None = None,
    observer: Observer | None = None,
) -> PolicyConnection:
    """Wrap a Starlette (or FastAPI) WebSocket so the policy decides every message and close.

    Entering the block accepts the connection if the app has not. ``connections``: the
    app's :class:`Connections` (its admission limit: the connection past ``max_open`` is
    accepted and closed with 1013, a code browsers can read; its drain; its fan-out).
    """
    instance(websocket, WebSocket, "websocket")
    return _GuardedConnection(websocket, policy, connections=connections, observer=observer)


# --- refusals before the upgrade -------------------------------------------------------------


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

    Raises ``HTTPException`` (the refusal's status and headers) where the server offers the
    ``websocket.http.response`` extension (uvicorn, hypercorn), for the framework's own
    exception handling to answer with. Elsewhere ``fallback`` decides: ``"accept_close"``
    accepts and raises ``WebSocketException`` with the profile's code for ``outcome``
    (by default 1008 for 401 and 403, 1013 otherwise) and its reason (or ``reason``),
    which browsers can read; ``"close"`` raises it before accepting: the client sees HTTP
    403.

    ``for_browsers=True`` accepts and closes with the profile's code on every server: a
    browser cannot read the HTTP status of a refused handshake (it sees 1006), but it reads
    close codes and reasons.
    """
    if websocket.application_state is not WebSocketState.CONNECTING:
        raise ValueError("refuse() must be called before the WebSocket is accepted")
    if fallback not in _FALLBACKS:
        raise ValueError(f"fallback must be 'accept_close' or 'close', got {fallback!r}")
    if DENIAL_EXTENSION in websocket.scope.get("extensions", {}) and not for_browsers:
        headers = {k: v for k, v in refusal.headers if k.lower() != "content-type"}
        raise HTTPException(refusal.status, refusal.body.decode().strip(), headers=headers)
    if outcome is None:
        outcome = Outcome.POLICY_VIOLATION if refusal.status in (401, 403) else Outcome.OVERLOADED
    close = close_for(outcome, policy, reason)
    if fallback == "accept_close" or for_browsers:
        await websocket.accept()
    raise WebSocketException(int(close.code), close.reason)


Check = Callable[[WebSocket], "bool | Reject | Awaitable[bool | Reject]"]


class _PreUpgradeCheck:
    """A FastAPI dependency (``Depends(check)``), also awaitable in a plain endpoint."""

    def __init__(self, policy: Policy, fallback: Fallback, for_browsers: bool) -> None:
        instance(policy, Policy, "policy")
        if fallback not in _FALLBACKS:
            raise ValueError(f"fallback must be 'accept_close' or 'close', got {fallback!r}")
        self.policy = policy
        self.fallback: Fallback = fallback
        self.for_browsers = boolean(for_browsers, "for_browsers")

    async def refusal(self, websocket: WebSocket) -> Reject | None:
        raise NotImplementedError

    def fallback_outcome(self) -> Outcome | None:
        return None

    def fallback_reason(self) -> str | None:
        return None

    async def __call__(self, websocket: WebSocket) -> None:
        refusal = await self.refusal(websocket)
        if refusal is not None:
            await refuse(
                websocket,
                refusal,
                self.policy,
                fallback=self.fallback,
                outcome=self.fallback_outcome(),
                for_browsers=self.for_browsers,
                reason=self.fallback_reason(),
            )


class _Authenticate(_PreUpgradeCheck):
    def __init__(
        self, check: Check, realm: str, policy: Policy, fallback: Fallback, for_browsers: bool
    ) -> None:
        super().__init__(policy, fallback, for_browsers)
        self.check = function(check, "check")
        self.unauthorized = Reject.unauthorized(realm=realm)

    async def refusal(self, websocket: WebSocket) -> Reject | None:
        return await refusal_from(self.check, websocket, self.unauthorized)


def authenticate(
    check: Check,
    *,
    realm: str = "websocket",
    policy: Policy = DEFAULT,
    fallback: Fallback = "accept_close",
    for_browsers: bool = False,
) -> Callable[[WebSocket], Awaitable[None]]:
    """A dependency refusing the upgrade when ``check(websocket)`` fails.

    ``check`` (sync or async) returns ``True``, ``False`` (HTTP 401 with
    ``WWW-Authenticate: Bearer realm=...``) or a ``Reject``; an exception in it is logged
    and answered 401. In FastAPI::

        @app.websocket("/jobs/{job_id}", dependencies=[Depends(authenticate(token_ok))])

    FastAPI runs a route's ``dependencies`` first, in order, then the endpoint's own
    parameters' dependencies, so this check runs before any dependency of yours. In a plain
    Starlette endpoint, ``await authenticate(token_ok)(websocket)`` first thing, or use the
    ``@authenticated`` decorator. Compare tokens with ``hmac.compare_digest``.

    ``fallback`` and ``for_browsers`` (for every check here) are :func:`refuse`'s: with
    ``for_browsers=True`` a refused browser reads the profile's close code and reason
    instead of a bare 1006.
    """
    return _Authenticate(check, realm, policy, fallback, for_browsers)


class _Admit(_PreUpgradeCheck):
    def __init__(
        self,
        connections: Connections,
        retry_after: int | None,
        policy: Policy,
        fallback: Fallback,
        for_browsers: bool,
    ) -> None:
        super().__init__(policy, fallback, for_browsers)
        self.connections = instance(connections, Connections, "connections")
        self.unavailable = Reject.unavailable(retry_after)

    async def refusal(self, websocket: WebSocket) -> Reject | None:  # noqa: ARG002
        if self.connections.full or self.connections.draining:
            return self.unavailable
        return None

    def fallback_outcome(self) -> Outcome:
        return Outcome.RESTARTING if self.connections.draining else Outcome.OVERLOADED


def admit(
    connections: Connections,
    *,
    retry_after: int | None = None,
    policy: Policy | None = None,
    fallback: Fallback = "accept_close",
    for_browsers: bool = False,
) -> Callable[[WebSocket], Awaitable[None]]:
    """A dependency refusing the upgrade with HTTP 503 (``Retry-After`` when given) while
    ``connections`` is full or draining (fallback: 1013, or 1012 while draining, under
    ``policy``, by default ``connections.policy``). ``guard`` alone accepts the extra
    connection and closes it with 1013 (1012) instead, which browsers can read."""
    instance(connections, Connections, "connections")
    return _Admit(connections, retry_after, policy or connections.policy, fallback, for_browsers)


Origin = str | re.Pattern[str] | None


class _CheckOrigin(_PreUpgradeCheck):
    def __init__(
        self, origins: Iterable[Origin], policy: Policy, fallback: Fallback, for_browsers: bool
    ) -> None:
        super().__init__(policy, fallback, for_browsers)
        self.origins = tuple(origins)
        for origin in self.origins:
            if origin is not None and not isinstance(origin, str | re.Pattern):
                raise TypeError(f"origins must hold str, re.Pattern or None, not {origin!r}")

    async def refusal(self, websocket: WebSocket) -> Reject | None:
        origin = websocket.headers.get("origin")
        for allowed in self.origins:
            if allowed is None:
                if origin is None:
                    return None
            elif origin is not None and (
                origin == allowed
                if isinstance(allowed, str)
                else allowed.fullmatch(origin) is not None
            ):
                return None
        return Reject.forbidden()

    def fallback_reason(self) -> str:
        return "Origin not allowed"  # not the profile's 1008 reason, which is about tokens


def check_origin(
    origins: Iterable[Origin],
    *,
    policy: Policy = DEFAULT,
    fallback: Fallback = "accept_close",
    for_browsers: bool = False,
) -> Callable[[WebSocket], Awaitable[None]]:
    """A dependency refusing the upgrade with HTTP 403 unless the ``Origin`` header is one
    of ``origins`` (exact strings, or compiled patterns that must match it whole; include
    ``None`` to let clients without an ``Origin`` through, as most non-browser clients are).

    Browsers send cookies with the handshake and neither Starlette nor uvicorn checks
    ``Origin``: without this any web page can open a WebSocket to your app in its
    visitor's name (cross-site WebSocket hijacking). The same semantics as ``websockets``'
    own ``origins=``.
    """
    return _CheckOrigin(origins, policy, fallback, for_browsers)


P = ParamSpec("P")


def _find_websocket(args: tuple[Any, ...], kwargs: dict[str, Any]) -> WebSocket:
    for value in (*args, *kwargs.values()):
        if isinstance(value, WebSocket):
            return value
    raise TypeError("the endpoint received no WebSocket argument")


def authenticated(
    check: Check,
    *,
    realm: str = "websocket",
    policy: Policy = DEFAULT,
    fallback: Fallback = "accept_close",
    for_browsers: bool = False,
) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, Awaitable[None]]]:
    """``authenticate`` as a decorator for a Starlette or FastAPI WebSocket endpoint.

    The endpoint keeps its signature, so FastAPI still injects its dependencies, but they
    run before the check (FastAPI solves them, then calls the endpoint): prefer the
    dependency, first in the route's ``dependencies``, when they do work of their own.
    """
    dependency = authenticate(
        check, realm=realm, policy=policy, fallback=fallback, for_browsers=for_browsers
    )

    def decorate(endpoint: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
        @functools.wraps(endpoint)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
            await dependency(_find_websocket(args, kwargs))
            await endpoint(*args, **kwargs)

        return wrapper

    return decorate

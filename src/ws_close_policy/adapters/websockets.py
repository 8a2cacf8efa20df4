"""Adapter for the ``websockets`` library (``websockets.asyncio``, version 14 or later).

Server::

    from websockets.asyncio.server import serve
    from ws_close_policy import Outcome, Policy
    from ws_close_policy.adapters.websockets import authenticate, guard, serve_options

    policy = Policy()

    async def handler(ws):
        async with guard(ws, policy) as conn:      # 1000 on return, 1011 on an exception
            async for message in conn:            # only valid messages; bad ones close 1002
                if message["type"] == "cancel":
                    await conn.close(Outcome.CANCELLED)
                else:
                    await conn.send({"type": "pong"})

    async with serve(handler, "127.0.0.1", 8765,
                     process_request=authenticate(lambda request: token_ok(request)),
                     **serve_options(policy)):
        ...

Client: :func:`reconnecting` and :func:`messages`.
"""

from __future__ import annotations

import asyncio
import http
import inspect
import random as _random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import Protocol

from ..actions import Close, Reject
from ..enums import Outcome, ReconnectAction, Violation
from ..policy import DEFAULT, Policy
from ..reconnect import DEFAULT_RECONNECT, ReconnectAdvice, Reconnector, ReconnectPolicy
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
    "PolicyConnection",
    "Reconnecting",
    "admission",
    "authenticate",
    "drain",
    "guard",
    "messages",
    "reconnecting",
    "registry",
    "serve_options",
    "to_response",
]

#: The guarded connections open in this process (for ``max_connections`` and ``drain``).
registry = Registry()


class _WebsocketsTransport:
    def __init__(self, connection: ServerConnection | ClientConnection) -> None:
        self.connection = connection

    async def receive(self) -> str | bytes:
        try:
            return await self.connection.recv()
        except ConnectionClosed as exc:
            raise self._gone(exc) from None

    async def send(self, data: str | bytes, text: bool) -> None:
        try:
            await self.connection.send(data, text=text)
        except ConnectionClosed as exc:
            raise self._gone(exc) from None

    async def close(self, code: int, reason: str) -> None:
        await self.connection.close(code, reason)  # idempotent; waits for the handshake

    def peer_close(self) -> PeerGone | None:
        received = self.connection.protocol.close_rcvd
        if received is not None:
            return PeerGone(received.code, received.reason)
        if self.connection.protocol.state.name == "CLOSED":
            return PeerGone(frame=False)
        return None

    def _gone(self, exc: ConnectionClosed) -> PeerGone:
        if exc.rcvd is None:
            return PeerGone(frame=False)
        return PeerGone(exc.rcvd.code, exc.rcvd.reason)


def guard(
    connection: ServerConnection | ClientConnection,
    policy: Policy = DEFAULT,
    *,
    observer: Observer | None = None,
    max_connections: int | None = None,
) -> PolicyConnection:
    """Wrap a ``websockets`` connection so the policy decides every message and close.

    ``max_connections``: when that many guarded connections are already open, this one is
    accepted and closed at once with ``Outcome.OVERLOADED`` (1013), a code browsers can read.
    Use :func:`admission` instead to refuse with HTTP 503 before the upgrade.
    """
    return PolicyConnection(
        _WebsocketsTransport(connection),
        policy,
        observer=observer,
        registry=registry,
        max_connections=max_connections,
    )


async def drain(
    outcome: Outcome = Outcome.RESTARTING,
    window: float = 5.0,
    *,
    random: Callable[[], float] = _random.random,
) -> int:
    """Close every guarded open connection with ``outcome`` (1012 by default), spread with
    jitter over ``window`` seconds; returns how many were closed. Call it on SIGTERM::

        loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(drain()))
    """
    return await registry.drain(outcome, window, random=random)


def serve_options(policy: Policy = DEFAULT) -> dict[str, Any]:
    """Keyword arguments for ``websockets.asyncio.server.serve`` matching ``policy``.

    ``max_size`` makes the transport refuse a message over ``InboundPolicy.max_bytes``
    from its frame header, before buffering it; ``create_connection`` makes that refusal
    (and an invalid UTF-8 text frame) carry the profile's code and generic reason instead
    of the library's own text.
    """
    profile = policy.profile
    replacements: dict[int, Close] = {
        CloseCode.MESSAGE_TOO_BIG: profile.close_for_violation(Violation.TOO_BIG),
        CloseCode.INVALID_DATA: profile.close_for_violation(Violation.INVALID_UTF8),
    }

    class PolicyServerConnection(ServerConnection):
        def __init__(self, protocol: Any, *args: Any, **kwargs: Any) -> None:
            _replace_failures(protocol, replacements)
            super().__init__(protocol, *args, **kwargs)

    return {"max_size": policy.inbound.max_bytes, "create_connection": PolicyServerConnection}


def _replace_failures(protocol: Protocol, replacements: Mapping[int, Close]) -> None:
    fail = protocol.fail

    def fail_with_policy(code: int, reason: str = "") -> None:
        close = replacements.get(code)
        if close is not None:
            code, reason = close.code, close.reason
        fail(code, reason)

    protocol.fail = fail_with_policy  # type: ignore[method-assign]


def to_response(reject: Reject) -> Response:
    """A ``Reject`` as a ``websockets`` HTTP response (for ``process_request``)."""
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
    exception in ``check`` is logged and answered with 401 (never leaked).
    """
    unauthorized = Reject.unauthorized(realm=realm)

    async def process_request(
        connection: ServerConnection,  # noqa: ARG001 - the hook's signature
        request: Request,
    ) -> Response | None:
        refusal = await refusal_from(check, request, unauthorized)
        return None if refusal is None else to_response(refusal)

    return process_request


def admission(max_connections: int, *, retry_after: int | None = None) -> ProcessRequest:
    """A ``process_request`` hook answering 503 (with ``Retry-After``) when
    ``max_connections`` guarded connections are open. Clients other than browsers read the
    status; for browsers prefer ``guard(..., max_connections=N)``, which closes with 1013.
    """
    positive_limit(max_connections)
    unavailable = Reject.unavailable(retry_after)

    async def process_request(
        connection: ServerConnection,  # noqa: ARG001 - the hook's signature
        request: Request,  # noqa: ARG001
    ) -> Response | None:
        if len(registry) >= max_connections:
            return to_response(unavailable)
        return None

    return process_request


def chain(*hooks: ProcessRequest) -> ProcessRequest:
    """Run ``process_request`` hooks in order; the first response wins."""

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        for hook in hooks:
            response = await hook(connection, request)
            if response is not None:
                return response
        return None

    return process_request


# --- client ----------------------------------------------------------------------------------


async def messages(connection: ClientConnection) -> AsyncIterator[str | bytes]:
    """Messages until the connection closes, whatever the code (no ``ConnectionClosed``)."""
    try:
        async for message in connection:
            yield message
    except ConnectionClosed:
        return


Credentials = str | Mapping[str, str] | None
Refresh = Callable[[], "Credentials | Awaitable[Credentials]"]


class Reconnecting:
    """``async for connection in reconnecting(uri): ...``; see :func:`reconnecting`.

    After the loop, ``advice`` holds the advice that ended it and ``history`` every advice.
    """

    def __init__(
        self,
        uri: str,
        policy: ReconnectPolicy,
        *,
        refresh: Refresh | None,
        reduce_payload: Refresh | None,
        sleep: Callable[[float], Awaitable[None]],
        random: Callable[[], float],
        stable_after: float,
        connect_kwargs: dict[str, Any],
    ) -> None:
        self.uri = uri
        self.headers: dict[str, str] = dict(connect_kwargs.pop("additional_headers", None) or {})
        self.reconnector = Reconnector(
            policy, random=random, clock=time.monotonic, stable_after=stable_after
        )
        self._refresh = refresh
        self._reduce_payload = reduce_payload
        self._sleep = sleep
        self._connect_kwargs = connect_kwargs
        self.advice: ReconnectAdvice | None = None
        self.history: list[ReconnectAdvice] = []

    def __aiter__(self) -> AsyncIterator[ClientConnection]:
        return self._run()

    async def _run(self) -> AsyncIterator[ClientConnection]:
        while True:
            advice = await self._attempt_and_advise()
            if isinstance(advice, ClientConnection):
                connection = advice
                try:
                    yield connection
                finally:
                    await connection.close()
                advice = self.reconnector.on_close(_received_code(connection))
            self.advice = advice
            self.history.append(advice)
            logger.info(
                "reconnect advice: %s in %.2f s (%s)", advice.action, advice.delay, advice.why
            )
            if advice.action is ReconnectAction.STOP:
                return
            if advice.action is ReconnectAction.REFRESH_CREDENTIALS and self._refresh:
                await self._apply(self._refresh)
            if advice.action is ReconnectAction.REDUCE_PAYLOAD and self._reduce_payload:
                await self._apply(self._reduce_payload)
            await self._sleep(advice.delay)

    async def _attempt_and_advise(self) -> ClientConnection | ReconnectAdvice:
        try:
            connection = await connect(
                self.uri, additional_headers=self.headers or None, **self._connect_kwargs
            )
        except InvalidStatus as exc:
            response = exc.response
            return self.reconnector.on_handshake_failure(
                response.status_code, _retry_after(response.headers.get("Retry-After"))
            )
        except (TimeoutError, OSError, InvalidHandshake):
            return self.reconnector.on_close(None)
        self.reconnector.on_open()
        return connection

    async def _apply(self, hook: Refresh) -> None:
        result = hook()
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, str):
            self.uri = result
        elif isinstance(result, Mapping):
            self.headers.update(result)


def _received_code(connection: ClientConnection) -> int | None:
    received = connection.protocol.close_rcvd
    if received is None:
        return None  # dropped without a close frame: 1006
    return int(received.code)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date or garbage: fall back to backoff


def reconnecting(
    uri: str,
    policy: ReconnectPolicy = DEFAULT_RECONNECT,
    *,
    refresh: Refresh | None = None,
    reduce_payload: Refresh | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    random: Callable[[], float] = _random.random,
    stable_after: float = 10.0,
    **connect_kwargs: Any,
) -> Reconnecting:
    """Connections to ``uri``, reconnecting as the close codes advise.

    After each connection ends (or fails to open) the :class:`~ws_close_policy.Reconnector`
    advises: stop (the loop ends; ``.advice`` says why), or wait the jittered delay and
    reconnect. On 1008 ``refresh()`` is called first and on 1009 ``reduce_payload()``; each
    may return a new URI (``str``) or headers to add (a mapping). Handshake refusals count
    too: 401/403 stop, 429/503 wait for ``Retry-After``. ``sleep`` is injectable for tests::

        client = reconnecting("ws://host/jobs/1", refresh=new_token_headers)
        async for ws in client:
            async for message in messages(ws):
                ...
        print(client.advice.why)
    """
    return Reconnecting(
        uri,
        policy,
        refresh=refresh,
        reduce_payload=reduce_payload,
        sleep=sleep,
        random=random,
        stable_after=stable_after,
        connect_kwargs=connect_kwargs,
    )

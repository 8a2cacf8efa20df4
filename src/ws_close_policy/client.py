"""A reconnecting ``websockets`` client that follows the close codes' advice.

``reconnecting(uri)`` yields a connection, and when it ends asks a
:class:`~ws_close_policy.Reconnector` what to do: stop, or wait the jittered delay (after
refreshing the credentials on 1008, or asking for smaller payloads on 1009) and connect
again. It passes the real clock and random source (``time.monotonic``, ``random.random``)
to the sans-IO core. Needs the ``websockets`` extra::

    from ws_close_policy.client import messages, reconnecting

    client = reconnecting("ws://host/jobs/42", refresh=new_token_headers)
    async for ws in client:
        async for message in messages(ws):
            ...
    print(client.advice.why)  # why it stopped
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random as _random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

try:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "ws_close_policy.client needs websockets: pip install 'ws-close-policy[websockets]'"
    ) from exc

from ._arguments import callable_or_none, function, text
from ._enums import ReconnectAction
from .codes import CloseCode
from .reconnect import DEFAULT_RECONNECT, ReconnectAdvice, Reconnector, ReconnectPolicy

__all__ = ["HISTORY", "Reconnecting", "messages", "reconnecting"]

logger = logging.getLogger("ws_close_policy.client")

#: How many pieces of advice ``Reconnecting.history`` keeps, the latest.
HISTORY: Final = 100


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

    After the loop, ``advice`` holds the advice that ended it and ``history`` the last
    :data:`HISTORY` (100) pieces of advice, oldest first: a client that lives for weeks keeps
    no more.
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
        if not text(uri, "uri").startswith(("ws://", "wss://")):
            raise ValueError(f"uri must start with ws:// or wss://, got {uri!r}")
        self.uri = uri
        self.headers: dict[str, str] = dict(connect_kwargs.pop("additional_headers", None) or {})
        self.reconnector = Reconnector(
            policy, random=random, clock=time.monotonic, stable_after=stable_after
        )
        self._refresh = callable_or_none(refresh, "refresh")
        self._reduce_payload = callable_or_none(reduce_payload, "reduce_payload")
        self._sleep = function(sleep, "sleep")
        self._connect_kwargs = connect_kwargs
        self.advice: ReconnectAdvice | None = None
        self.history: deque[ReconnectAdvice] = deque(maxlen=HISTORY)

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
            self.history.append(advice)  # the last HISTORY only
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
    """The server's close code, ``None`` when none came (websockets' documented
    ``close_code`` says 1006 then)."""
    code = connection.close_code
    return None if code is None or code == CloseCode.ABNORMAL_CLOSURE else int(code)


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

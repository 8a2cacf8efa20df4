"""A plain `websockets` client that reports what it saw: used by ``demo`` and ``probe``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..codes import describe


@dataclass
class Observation:
    """The messages received and how the connection ended."""

    messages: list[Any] = field(default_factory=list)
    code: int | None = None  # the close frame's code; None without one
    reason: str = ""
    status: int | None = None  # HTTP status of a refused handshake
    headers: dict[str, str] = field(default_factory=dict)  # ... and its headers
    kept_open: float | None = None  # the server had not closed after this many seconds
    error: str | None = None  # could not connect

    def summary(self) -> str:
        if self.error is not None:
            return self.error
        if self.status is not None:
            return f"HTTP {self.status}"
        if self.kept_open is not None:
            return f"no close within {self.kept_open:g} s"
        if self.code is None:
            return "1006 (no close frame)"
        return f"{self.code} {self.reason!r}" if self.reason else describe(self.code)


def _decode(message: str | bytes) -> Any:
    try:
        return json.loads(message)
    except ValueError:
        return message


async def observe(
    uri: str,
    send: list[str | bytes] = (),  # type: ignore[assignment]
    *,
    timeout: float = 10.0,
    wait_first: bool = False,
    headers: dict[str, str] | None = None,
    total: float | None = None,
) -> Observation:
    """Connect, optionally wait for the first message, send, then read until closed (at
    most ``timeout`` seconds for each message and for the close, and ``total`` seconds in
    all when given, however many messages the server sends)."""
    seen = Observation()
    options: dict[str, Any] = {"open_timeout": timeout, "close_timeout": timeout}
    loop = asyncio.get_running_loop()
    end = None if total is None else loop.time() + total

    def within() -> float:  # each wait: ``timeout``, and never past the end
        at = loop.time() + timeout
        return at if end is None else min(at, end)

    # One asyncio.timeout per wait, never wait_for inside a timeout: on Python 3.11 the two
    # expiring together can leave the task cancelling forever (the probe hung under load).
    try:
        async with connect(uri, max_size=None, additional_headers=headers, **options) as ws:
            try:
                if wait_first:
                    async with asyncio.timeout_at(within()):
                        seen.messages.append(_decode(await ws.recv()))
                async with asyncio.timeout_at(end):
                    for message in send:
                        await ws.send(message)
                while True:
                    async with asyncio.timeout_at(within()):
                        seen.messages.append(_decode(await ws.recv()))
            except ConnectionClosed:
                pass
            except TimeoutError:
                seen.kept_open = timeout if total is None else total
                return seen
            received = ws.protocol.close_rcvd
            if received is not None:
                seen.code, seen.reason = int(received.code), received.reason
    except InvalidStatus as exc:
        seen.status = exc.response.status_code
        seen.headers = {k.lower(): v for k, v in exc.response.headers.raw_items()}
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        seen.error = f"cannot connect: {type(exc).__name__}: {exc}"[:120]
    return seen


async def handshake(
    uri: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> Observation:
    """Open a connection and close it at once (1000): whether the handshake succeeds."""
    seen = Observation()
    try:
        async with connect(
            uri, open_timeout=timeout, close_timeout=1.0, additional_headers=headers
        ):
            pass
    except InvalidStatus as exc:
        seen.status = exc.response.status_code
        seen.headers = {k.lower(): v for k, v in exc.response.headers.raw_items()}
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        seen.error = f"cannot connect: {type(exc).__name__}: {exc}"[:120]
    except ConnectionClosed:
        pass  # closed by the server before ours: the handshake itself succeeded
    return seen

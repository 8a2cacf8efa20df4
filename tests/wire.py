"""Helpers for wire-level tests: a plain `websockets` client that reports what it saw."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

T = TypeVar("T")

TIMEOUT = 15.0


def run(coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
    """Run a test coroutine on a fresh event loop, bounded in time."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@dataclass
class Seen:
    """What a client saw: the messages it received and the close frame (or its absence)."""

    received: list[str | bytes] = field(default_factory=list)
    code: int | None = None  # None: no close frame (1006)
    reason: str = ""
    status: int | None = None  # the HTTP status when the handshake was refused
    headers: dict[str, str] = field(default_factory=dict)


async def exchange(uri: str, *send: str | bytes, wait: float = TIMEOUT, **kwargs: Any) -> Seen:
    """Connect, send each message, then read until the server closes."""
    seen = Seen()
    try:
        async with connect(uri, open_timeout=wait, close_timeout=wait, **kwargs) as ws:
            try:
                for message in send:
                    await ws.send(message)
                while True:
                    seen.received.append(await asyncio.wait_for(ws.recv(), wait))
            except ConnectionClosed:
                pass
            await ws.wait_closed()
            received = ws.protocol.close_rcvd
            if received is not None:
                seen.code, seen.reason = int(received.code), received.reason
    except InvalidStatus as exc:
        seen.status = exc.response.status_code
        seen.headers = {k.lower(): v for k, v in exc.response.headers.raw_items()}
    return seen


async def close_received(ws: ClientConnection, wait: float) -> tuple[int, str] | None:
    """Read (and drop) messages until the connection closes, for at most ``wait`` seconds
    (else ``TimeoutError``): the server's close frame as (code, reason), or ``None`` when
    none came (the client sees 1006)."""
    try:
        async with asyncio.timeout(wait):
            async for _ in ws:
                pass
    except ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    return None if received is None else (int(received.code), received.reason)

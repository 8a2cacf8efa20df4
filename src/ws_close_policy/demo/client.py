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
    error: str | None = None  # could not connect, or the server never closed

    def summary(self) -> str:
        if self.error is not None:
            return self.error
        if self.status is not None:
            return f"HTTP {self.status}"
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
) -> Observation:
    """Connect, optionally wait for the first message, send, then read until closed."""
    seen = Observation()
    try:
        async with connect(uri, open_timeout=timeout, close_timeout=timeout, max_size=None) as ws:
            try:
                if wait_first:
                    seen.messages.append(_decode(await asyncio.wait_for(ws.recv(), timeout)))
                for message in send:
                    await ws.send(message)
                while True:
                    seen.messages.append(_decode(await asyncio.wait_for(ws.recv(), timeout)))
            except ConnectionClosed:
                pass
            except TimeoutError:
                seen.error = f"no close within {timeout:g} s"
                return seen
            received = ws.protocol.close_rcvd
            if received is not None:
                seen.code, seen.reason = int(received.code), received.reason
    except InvalidStatus as exc:
        seen.status = exc.response.status_code
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        seen.error = f"cannot connect: {type(exc).__name__}: {exc}"[:120]
    return seen

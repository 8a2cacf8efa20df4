"""An in-memory Transport: messages queued by the test, what the shared layer did, recorded.
It implements exactly the adapter contract (tests/test_architecture.py checks the real ones
against the same Protocol)."""

from __future__ import annotations

import asyncio
from typing import Any

from ws_close_policy.adapters import PolicyConnection
from ws_close_policy.adapters._connection import Gone, Translating
from ws_close_policy.policy import DEFAULT, Policy
from ws_close_policy.session import Disconnect


class FakeTransport(Translating):
    def __init__(self, *messages: str | bytes) -> None:
        self.inbox: asyncio.Queue[str | bytes | Disconnect] = asyncio.Queue()
        for message in messages:
            self.inbox.put_nowait(message)
        self.sent: list[tuple[str | bytes, bool]] = []
        self.closes: list[tuple[int, str]] = []
        self.gone: Disconnect | None = None
        self.backlog = 0  # bytes waiting to be written (write_buffer_size)
        self.stalled = False  # send never completes: a client too slow to read
        self.answers = True  # the peer answers our close frame with its own

    def leave(self, code: int | None = 1001, reason: str = "") -> None:
        """The peer closes (``None``: a close frame without a code)."""
        frame = (1005 if code is None else code, reason)
        self.gone = Disconnect.from_frames(frame, None)
        self.inbox.put_nowait(self.gone)

    def drop(self) -> None:
        """The connection drops without a close frame."""
        self.gone = Disconnect()
        self.inbox.put_nowait(self.gone)

    async def receive(self) -> str | bytes:
        if self.gone is not None and self.inbox.empty():
            raise Gone(self.gone)
        item = await self.inbox.get()
        if isinstance(item, Disconnect):
            raise Gone(item)
        return item

    async def send(self, data: str | bytes, *, text: bool) -> None:
        if self.gone is not None:
            raise Gone(self.gone)
        if self.stalled:
            await asyncio.Event().wait()
        self.sent.append((data, text))

    async def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))
        if self.gone is None and self.answers:
            self.leave(code, reason)

    def remote(self) -> str | None:
        return "127.0.0.1:50000"

    def write_buffer_size(self) -> int:
        return self.backlog


def guarded(transport: FakeTransport, policy: Policy = DEFAULT, **kwargs: Any) -> PolicyConnection:
    return PolicyConnection(transport, policy, **kwargs)

"""``Tasks``: background work that outlives the call that started it, kept (so it is not
collected mid-way), forgotten when done, and logged, never raised, when it fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class Tasks:
    """A set of background tasks; ``what`` names them in the log line of a failure."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Awaitable[T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._forget)
        return task

    async def cancel(self) -> None:
        """Cancel every task still running and wait for them."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (failure := task.exception()) is not None:
            self._logger.error("%s failed", self._what, exc_info=failure)

"""A real aiohttp server on 127.0.0.1 for in-process wire tests (AppRunner and TCPSite, as
``web.run_app`` runs them), on an ephemeral port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def aiohttp_server(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app``; yields its ws:// base URI. Leaving the block shuts the app down, as
    ``web.run_app`` does on a signal (``on_shutdown`` first, then the handlers)."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        (host, port) = runner.addresses[0][:2]
        yield f"ws://{host}:{port}"
    finally:
        await runner.cleanup()

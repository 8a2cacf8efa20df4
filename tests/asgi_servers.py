"""Real ASGI servers on 127.0.0.1 for wire tests: uvicorn (two WebSocket stacks), hypercorn."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

SERVERS = ("uvicorn-websockets-sansio", "uvicorn-wsproto", "hypercorn")


async def _accepting(port: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return


@asynccontextmanager
async def asgi_server(
    app: Any, kind: str, *, max_size: int = 16 * 1024 * 1024
) -> AsyncIterator[str]:
    """Serve ``app`` with server ``kind`` on an ephemeral port; yields the ws:// base URI."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    try:
        if kind.startswith("uvicorn-"):
            config = uvicorn.Config(
                app,
                ws=kind.removeprefix("uvicorn-"),
                lifespan="off",
                log_level="warning",
                log_config=None,  # its records go to the root logger: tests can read them
                ws_max_size=max_size,
            )
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve(sockets=[sock]))
            await _accepting(port)
            try:
                yield f"ws://127.0.0.1:{port}"
            finally:
                server.should_exit = True
                await asyncio.wait_for(task, 10)
        elif kind == "hypercorn":
            hconfig = HypercornConfig()
            hconfig.bind = [f"fd://{sock.detach()}"]  # hypercorn owns and closes the fd
            hconfig.websocket_max_message_size = max_size
            hconfig.errorlog = logging.getLogger("hypercorn.error")
            hconfig.accesslog = None
            stop = asyncio.Event()
            task = asyncio.create_task(hypercorn_serve(app, hconfig, shutdown_trigger=stop.wait))
            await _accepting(port)
            try:
                yield f"ws://127.0.0.1:{port}"
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
        else:
            raise ValueError(f"unknown server {kind!r}")
    finally:
        sock.close()

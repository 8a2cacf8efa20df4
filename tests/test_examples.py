"""The README's examples run and behave as their comments say, and the README shows them
exactly as they are in examples/."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from tests.asgi_servers import asgi_server
from tests.wire import Seen, exchange, run

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _scenarios(uri: str) -> list[Seen]:
    return [
        await exchange(uri + "?token=demo-token", '{"type": "ping"}', '{"type": "cancel"}'),
        await exchange(uri + "?token=demo-token", "{not json"),
        await exchange(uri + "?token=wrong"),
        await exchange(uri + "?token=demo-token-and-more"),  # no substring match
        await exchange(uri + "?x=token=demo-token"),
    ]


def _check(seen: list[Seen]) -> None:
    ping, bad, *refused = seen
    assert json.loads(ping.received[0]) == {"type": "pong"}
    assert (ping.code, ping.reason) == (1001, "Cancelled")
    assert (bad.code, bad.reason) == (1002, "Invalid JSON")
    assert [seen.status for seen in refused] == [401, 401, 401]


@pytest.mark.parametrize("name", ["websockets_server.py", "starlette_app.py"])
def test_readme_shows_the_examples_as_they_are(name: str) -> None:
    source = (ROOT / "examples" / name).read_text()
    assert f"```python\n{source}```" in (ROOT / "README.md").read_text()


def test_websockets_example() -> None:
    from examples import websockets_server

    async def scenario() -> list[Seen]:
        port = _free_port()
        server = asyncio.create_task(websockets_server.main(port))
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)
            else:
                writer.close()
                await writer.wait_closed()
                break
        try:
            return await _scenarios(f"ws://127.0.0.1:{port}/jobs/1")
        finally:
            server.cancel()
            with pytest.raises(asyncio.CancelledError):
                await server

    _check(run(scenario()))


def test_starlette_example() -> None:
    from examples.starlette_app import app

    async def scenario() -> list[Seen]:
        async with asgi_server(app, "uvicorn-websockets-sansio") as uri:
            return await _scenarios(uri + "/jobs/1")

    _check(run(scenario()))

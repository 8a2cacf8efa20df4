"""Fan-out through a real Redis to several real server processes (``make test-redis``).

Watchers are spread over ``uvicorn tests.fanout.app:app --workers 2`` (FastAPI, Starlette's
adapter) and ``python -m tests.fanout.app`` (the websockets adapter); a job publishes from
this process with the blocking ``Publisher``, as a task-queue worker would. What every
client sees on the wire is asserted: every message in order then the job's close, the
policy's 1009, 1013 when Redis is lost, and that a stalled reader slows nobody else.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.adapters.stacks import Server, free_port, started
from tests.fanout.redis_server import RedisServer, redis_server
from tests.wire import run
from ws_close_policy import Close, OutboundPolicy, Policy, Send
from ws_close_policy.adapters import CLOSE_TIMEOUT
from ws_close_policy.fanout import Publisher, PublishError

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

BIN = Path(sys.executable).parent
WAIT = 10.0  # seconds any one client waits for anything
TIMEOUT = 60.0  # seconds for a whole scenario, well inside pytest's timeout


@contextmanager
def fleet(tmp: Path, redis: RedisServer) -> Iterator[list[Server]]:
    """Two servers, three processes: uvicorn with two workers, and a websockets server."""
    env = {"WS_TEST_REDIS_URL": redis.url, "WS_TEST_HEALTH_INTERVAL": "1.0"}
    uvicorn_port, websockets_port = free_port(), free_port()
    uvicorn = [str(BIN / "uvicorn"), "tests.fanout.app:app", "--host", "127.0.0.1",
               "--port", str(uvicorn_port), "--workers", "2", "--log-level", "warning"]  # fmt: skip
    plain = [sys.executable, "-m", "tests.fanout.app", "--port", str(websockets_port)]
    with (
        started("uvicorn", uvicorn, uvicorn_port, tmp, **env) as first,
        started("websockets", plain, websockets_port, tmp, **env) as second,
    ):
        yield [first, second]


def stats(server: Server) -> dict[str, Any]:
    url = server.uri.replace("ws://", "http://") + "/stats"
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        result: dict[str, Any] = json.load(response)
        return result


async def watchers(
    stack: AsyncExitStack, servers: list[Server], topic: str, each: int
) -> list[ClientConnection]:
    """``each`` clients on every server, each once its subscription is confirmed."""
    clients = []
    for server in servers:
        for _ in range(each):
            client = await stack.enter_async_context(
                connect(f"{server.uri}/watch/{topic}", open_timeout=WAIT, ping_interval=None)
            )
            hello = json.loads(await asyncio.wait_for(client.recv(), WAIT))
            assert hello["type"] == "watching"
            clients.append(client)
    return clients


async def everything(client: ClientConnection) -> tuple[list[Any], int | None, str]:
    """Every message until the close, and the close's code and reason."""
    messages = []
    async with asyncio.timeout(WAIT):
        try:
            while True:
                messages.append(json.loads(await client.recv()))
        except ConnectionClosed:
            pass
        await client.wait_closed()
    return messages, client.close_code, client.close_reason or ""


@contextmanager
def stalled_watcher(server: Server, topic: str) -> Iterator[socket.socket]:
    """A raw client that reads up to its ``watching`` message, then never reads again; its
    receive window is small, so what the server writes piles up on the server's side."""
    port = int(server.uri.rpartition(":")[2])
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(WAIT)
        sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /watch/{topic} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        seen = b""
        while b'"watching"' not in seen:
            chunk = sock.recv(4096)
            assert chunk, f"closed before watching: {seen!r}"
            seen += chunk
        yield sock


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


def test_every_watcher_in_every_process_gets_all_100_in_order_then_1000(
    tmp_path: Path, redis: RedisServer
) -> None:
    run(in_order(tmp_path, redis), timeout=TIMEOUT)


async def in_order(tmp_path: Path, redis: RedisServer) -> None:
    with fleet(tmp_path, redis) as servers, Publisher(redis.url) as job:
        async with AsyncExitStack() as stack:
            clients = await watchers(stack, servers, "job:42", each=6)
            pids = {stats(server)["pid"] for server in servers}
            for step in range(100):
                published = await asyncio.to_thread(job.publish, "job:42", {"step": step})
                assert published.receivers >= 2  # at least one process of each server
            await asyncio.to_thread(job.finish, "job:42")
            results = await asyncio.gather(*map(everything, clients))
    assert len(pids) == 2
    for messages, code, reason in results:
        assert messages == [{"step": step} for step in range(100)]
        assert (code, reason) == (1000, "Completed")


def test_a_result_too_large_closes_every_watcher_with_1009_or_its_summary(
    tmp_path: Path, redis: RedisServer
) -> None:
    run(too_large(tmp_path, redis), timeout=TIMEOUT)


async def too_large(tmp_path: Path, redis: RedisServer) -> None:
    def summary(message: Any) -> Any:
        return {"rows": len(message["rows"]), "summary": True}

    strict = Policy(outbound=OutboundPolicy(max_bytes=1000))
    degrading = Policy(outbound=OutboundPolicy(max_bytes=1000, degrade=summary))
    result = {"rows": ["r" * 100] * 20}
    with (
        fleet(tmp_path, redis) as servers,
        Publisher(redis.url, strict) as job,
        Publisher(redis.url, degrading) as summarising,
    ):
        async with AsyncExitStack() as stack:
            plain = await watchers(stack, servers, "job:big", each=3)
            brief = await watchers(stack, servers, "job:big:summary", each=3)
            closed = job.publish("job:big", result)
            assert isinstance(closed.action, Close)
            assert closed.action.code == 1009
            assert closed.receivers >= 2
            sent = summarising.publish("job:big:summary", result)
            assert isinstance(sent.action, Send)
            assert sent.action.degraded
            summarising.finish("job:big:summary")
            plain_results = await asyncio.gather(*map(everything, plain))
            brief_results = await asyncio.gather(*map(everything, brief))
    for messages, code, reason in plain_results:
        assert (messages, code, reason) == ([], 1009, "Message too large")
    for messages, code, _ in brief_results:
        assert (messages, code) == ([{"rows": 20, "summary": True}], 1000)


def test_redis_killed_mid_job_closes_watchers_1013_and_a_restart_serves_them_again(
    tmp_path: Path, redis: RedisServer
) -> None:
    run(restart(tmp_path, redis), timeout=TIMEOUT)


async def restart(tmp_path: Path, redis: RedisServer) -> None:
    with fleet(tmp_path, redis) as servers, Publisher(redis.url, timeout=1.0) as job:
        async with AsyncExitStack() as stack:
            clients = await watchers(stack, servers, "job:7", each=3)
            for step in range(10):
                job.publish("job:7", {"step": step})
            redis.kill()
            started_at = time.monotonic()
            with pytest.raises(PublishError, match="job:7"):  # never a silent drop
                job.publish("job:7", {"step": 10})
            results = await asyncio.gather(*map(everything, clients))
            lost_within = time.monotonic() - started_at
        for messages, code, _ in results:
            assert messages == [{"step": step} for step in range(10)]
            assert code == 1013  # try again later: the advice is to reconnect with backoff
        assert lost_within < 5
        assert all(stats(server)["lost"] >= 1 for server in servers)
        assert "Redis subscription lost" in (tmp_path / "websockets.log").read_text()
        redis.start()  # same port: the clients reconnect, as their advice says
        async with AsyncExitStack() as stack:
            clients = await watchers(stack, servers, "job:7", each=3)
            for step in range(10, 20):
                job.publish("job:7", {"step": step})
            job.finish("job:7")
            results = await asyncio.gather(*map(everything, clients))
    for messages, code, _ in results:
        assert (messages, code) == ([{"step": step} for step in range(10, 20)], 1000)


def test_redis_unreachable_at_start_closes_1013_at_once_and_serves_once_it_is_up(
    tmp_path: Path,
) -> None:
    run(unreachable(tmp_path), timeout=TIMEOUT)


async def unreachable(tmp_path: Path) -> None:
    with redis_server(tmp_path, start=False) as redis, fleet(tmp_path, redis) as servers:
        for server in servers:
            started_at = time.monotonic()
            async with connect(f"{server.uri}/watch/job:1", open_timeout=WAIT) as client:
                messages, code, _ = await everything(client)
            assert (messages, code) == ([], 1013)
            assert time.monotonic() - started_at < 5  # the subscriber's timeout is 2 s
        with Publisher(redis.url, timeout=1.0) as job, pytest.raises(PublishError):
            job.publish("job:1", {"step": 0})
        redis.start()
        await asyncio.sleep(2.0)  # for `timeout` after a failed attempt, no new one is made
        async with AsyncExitStack() as stack:
            clients = await watchers(stack, servers, "job:1", each=2)
            with Publisher(redis.url) as job:
                job.publish("job:1", {"step": 0})
                job.finish("job:1")
            results = await asyncio.gather(*map(everything, clients))
    assert all(result[:2] == ([{"step": 0}], 1000) for result in results)


def test_a_stalled_watcher_is_closed_1013_and_slows_no_one_else(
    tmp_path: Path, redis: RedisServer
) -> None:
    run(stalled(tmp_path, redis), timeout=TIMEOUT)


async def stalled(tmp_path: Path, redis: RedisServer) -> None:
    count, row = 100, "x" * 100_000  # 10 MB for each watcher: far past the socket buffers
    with fleet(tmp_path, redis) as servers, Publisher(redis.url) as job:
        async with AsyncExitStack() as stack:
            for server in servers:
                stack.enter_context(stalled_watcher(server, "job:s"))
            readers = await watchers(stack, servers, "job:s", each=3)
            started_at = time.monotonic()
            for step in range(count):
                job.publish("job:s", {"step": step, "row": row})
            job.finish("job:s")
            results = await asyncio.gather(*map(everything, readers))
            took = time.monotonic() - started_at
            deadline = time.monotonic() + CLOSE_TIMEOUT + 2
            while any(stats(server)["open"] for server in servers):  # the stalled, closing
                assert time.monotonic() < deadline, "a stalled watcher was left open"
                await asyncio.sleep(0.1)
    for messages, code, _ in results:
        assert [m["step"] for m in messages] == list(range(count))
        assert code == 1000
    assert took < WAIT
    logs = (tmp_path / "uvicorn.log").read_text() + (tmp_path / "websockets.log").read_text()
    assert logs.count("closed: 1013 try_again_later by local (overloaded)") == 2
    assert logs.count("too slow for a broadcast") == 2  # once each, not once a message

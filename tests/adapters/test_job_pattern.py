"""The job-progress pattern (``conn.run``) over real sockets, on every adapter: a real server
in this process (websockets, uvicorn, hypercorn, aiohttp) and a real client. Each ending the
docs promise: the job's return closes with its outcome; its exception closes 1011 and is
logged once, by the server; the client leaving, ``cancel``, an invalid message and a drain
each cancel the job, and no task of the connection outlives its block. The same job
protocol runs in the wire matrix on server processes (tests/adapters/test_wire_matrix.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from tests.aiohttp_server import aiohttp_server
from tests.asgi_servers import asgi_server
from tests.wire import close_received, exchange, run
from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters import Closed, Connections, PolicyConnection
from ws_close_policy.adapters import aiohttp as aiohttp_adapter
from ws_close_policy.adapters import starlette as starlette_adapter
from ws_close_policy.adapters import websockets as websockets_adapter

STACKS = ("websockets", "uvicorn-websockets-sansio", "hypercorn", "aiohttp")
STEP = 0.02


class Jobs:
    """What the jobs did: how each ended, and the tasks each connection left behind."""

    def __init__(self) -> None:
        self.ended: list[str] = []
        self.leftover: list[asyncio.Task[Any]] = []
        self.connections = Connections(drain_window=0.3)

    async def job(self, conn: PolicyConnection, kind: str) -> int | None:
        steps = 3 if kind in ("short", "app_code") else 10_000
        try:
            for n in range(steps):
                await conn.send({"type": "progress", "n": n})
                await asyncio.sleep(STEP)
                if kind == "fails" and n == 1:
                    raise RuntimeError("the job's secret is hunter2")
        except asyncio.CancelledError:
            self.ended.append("cancelled")
            raise
        except Closed:
            self.ended.append("closed")
            raise
        self.ended.append("returned")
        return 4010 if kind == "app_code" else None

    async def serve(self, conn: PolicyConnection, kind: str) -> None:
        try:
            async with conn:
                async for message in conn.run(self.job(conn, kind)):
                    if message["type"] == "cancel":
                        await conn.close(Outcome.CANCELLED)
        finally:  # the connection's own tasks: its job (the producer) and its reader
            tasks = (conn._producer, conn._reader)
            self.leftover += [t for t in tasks if t is not None and not t.done()]


@asynccontextmanager
async def job_server(stack: str, jobs: Jobs) -> AsyncIterator[str]:
    """A server whose connection runs the job named by its path: /short, /fails, /long..."""
    policy, connections = Policy(), jobs.connections
    if stack == "websockets":

        async def handler(ws: ServerConnection) -> None:
            assert ws.request is not None
            conn = websockets_adapter.guard(ws, policy, connections=connections)
            await jobs.serve(conn, ws.request.path.strip("/"))

        async with serve(handler, "127.0.0.1", 0, **websockets_adapter.serve_options()) as s:
            yield f"ws://127.0.0.1:{s.sockets[0].getsockname()[1]}"
    elif stack == "aiohttp":

        async def aiohttp_handler(request: web.Request) -> web.StreamResponse:
            ws = aiohttp_adapter.websocket(policy)
            conn = aiohttp_adapter.guard(ws, request, policy, connections=connections)
            await jobs.serve(conn, request.match_info["kind"])
            return ws

        app = web.Application()
        app.router.add_get("/{kind}", aiohttp_handler)
        aiohttp_adapter.drain_on_shutdown(app, connections)
        async with aiohttp_server(app) as uri:
            yield uri
    else:

        async def endpoint(websocket: WebSocket) -> None:
            conn = starlette_adapter.guard(websocket, policy, connections=connections)
            await jobs.serve(conn, websocket.path_params["kind"])

        starlette_app = Starlette(routes=[WebSocketRoute("/{kind}", endpoint)])
        async with asgi_server(starlette_app, stack) as uri:
            yield uri


def _scenario(stack: str, play: Callable[[str, Jobs], Any]) -> tuple[Any, Jobs]:
    jobs = Jobs()

    async def scenario() -> Any:
        async with job_server(stack, jobs) as uri:
            result = await play(uri, jobs)
            async with asyncio.timeout(10):  # the handler has finished with its connection
                while len(jobs.connections):
                    await asyncio.sleep(0.01)
            return result

    return run(scenario()), jobs


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    ("kind", "code", "reason", "progress"),
    [("short", 1000, "Completed", 3), ("app_code", 4010, "", 3)],
)
def test_the_job_returning_closes_with_its_outcome(
    stack: str, kind: str, code: int, reason: str, progress: int
) -> None:
    seen, jobs = _scenario(stack, lambda uri, _: exchange(f"{uri}/{kind}"))
    assert (seen.code, seen.reason) == (code, reason)
    assert len(seen.received) == progress
    assert jobs.ended == ["returned"]
    assert jobs.leftover == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_job_raising_closes_1011_and_the_server_logs_it_once(
    stack: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    seen, jobs = _scenario(stack, lambda uri, _: exchange(f"{uri}/fails"))
    assert (seen.code, seen.reason) == (1011, "Internal error")  # nothing of the exception
    assert len(seen.received) == 2
    tracebacks = [r for r in caplog.records if r.exc_info and "hunter2" in str(r.exc_info[1])]
    assert len(tracebacks) == 1, [(r.name, r.getMessage()) for r in tracebacks]
    assert tracebacks[0].name != "ws_close_policy"  # logged by the server, once
    ours = [r for r in caplog.records if getattr(r, "ws_code", None) == 1011]
    assert len(ours) == 1  # and one close line of ours, naming it in ws_detail
    assert "RuntimeError" in str(ours[0].ws_detail)  # type: ignore[attr-defined]
    assert jobs.leftover == []


async def _read_then(uri: str, end: str) -> tuple[int, str] | None:
    """Read two progress messages of a long job, then ``end`` it from the client's side."""
    async with connect(f"{uri}/long") as ws:
        for _ in range(2):
            await ws.recv()
        if end == "leave":
            return None
        await ws.send('{"type": "cancel"}' if end == "cancel" else "{not json")
        return await close_received(ws, 10)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    ("end", "close"),
    [
        ("leave", None),
        ("cancel", (1001, "Cancelled")),
        ("invalid message", (1002, "Invalid JSON")),
    ],
)
def test_the_client_leaving_or_closing_cancels_the_job(
    stack: str, end: str, close: tuple[int, str] | None
) -> None:
    seen, jobs = _scenario(stack, lambda uri, _: _read_then(uri, end))
    assert seen == close
    # The client's close reaches the reader, which cancels the job; or, first, a send of
    # the job finds the connection over (Closed). Either way it stops.
    assert jobs.ended in (["cancelled"], ["closed"]) if end == "leave" else ["cancelled"]
    assert jobs.leftover == []


@pytest.mark.parametrize("stack", STACKS)
def test_a_drain_cancels_every_job_and_closes_1012(stack: str) -> None:
    async def play(uri: str, jobs: Jobs) -> list[tuple[int, str] | None]:
        async def client() -> tuple[int, str] | None:
            async with connect(f"{uri}/long") as ws:
                return await close_received(ws, 10)

        clients = [asyncio.create_task(client()) for _ in range(4)]
        async with asyncio.timeout(10):
            while len(jobs.connections) < 4:
                await asyncio.sleep(0.01)
        assert await jobs.connections.drain() == 4
        return list(await asyncio.gather(*clients))

    seen, jobs = _scenario(stack, play)
    assert seen == [(1012, "Service restarting")] * 4
    assert jobs.ended == ["cancelled"] * 4
    assert jobs.leftover == []

"""Run the reference server on either adapter: ``websockets`` or Starlette on uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

from .. import Outcome, Reject
from ..adapters import Connections
from ..lifecycle import Origins
from ..policy import server_max_size
from .jobs import DemoSettings, handle
from .page import PAGE_PATHS, page_response

if TYPE_CHECKING:
    from .fleet import Fleet

Adapter = Literal["websockets", "starlette"]
ADAPTERS: tuple[Adapter, ...] = ("websockets", "starlette")
DRAIN_WINDOW = 1.0

logger = logging.getLogger("ws_close_policy.demo")
NOT_FOUND = Reject(404, (("Content-Type", "text/plain; charset=utf-8"),), b"Not Found\n")


def _job_and_query(path: str) -> tuple[str | None, dict[str, str]]:
    parts = urlsplit(path)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    segments = parts.path.strip("/").split("/")
    if len(segments) == 2 and segments[0] == "jobs" and segments[1]:
        return segments[1], query
    return None, query


def listen(host: str, port: int) -> socket.socket:
    sock = socket.create_server((host, port), reuse_port=False)
    sock.setblocking(False)
    return sock


def _token_matches(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())


@asynccontextmanager
async def _websockets_server(
    sock: socket.socket, settings: DemoSettings, connections: Connections, fleet: Fleet | None
) -> AsyncIterator[Any]:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.datastructures import Headers
    from websockets.http11 import Request, Response

    from ..adapters import websockets as adapter

    def token_ok(request: Any) -> bool:
        job_id, query = _job_and_query(request.path)
        return job_id is not None and _token_matches(query.get("token"), settings.token)

    async def page(_: ServerConnection, request: Request) -> Response | None:
        found = page_response(request.path, settings)
        if found is None or request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        kind, body = found
        headers = Headers({"Content-Type": kind, "Content-Length": str(len(body))})
        return Response(200, "OK", headers, body)

    async def jobs_only(_: ServerConnection, request: Request) -> Response | None:
        if _job_and_query(request.path)[0] is None:
            return adapter.to_response(NOT_FOUND)
        return None

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        job_id, query = _job_and_query(ws.request.path)
        assert job_id is not None  # jobs_only() let it through
        policy = settings.policy(summary=query.get("summary") == "1")
        async with adapter.guard(ws, policy, connections=connections) as conn:
            if allowed is not None and allowed.refusal(ws.request.headers.get("Origin")):
                await conn.close(Outcome.POLICY_VIOLATION, Origins.reason)  # "close"
                return
            if not token_ok(ws.request):  # refusal="close": a browser reads 1008
                await conn.close(Outcome.POLICY_VIOLATION)
                return
            if fleet is None:
                await handle(conn, job_id, settings)
            else:
                await fleet.watch(conn, job_id, summary=query.get("summary") == "1")

    allowed = None if settings.origins is None else Origins(settings.origins)
    options = adapter.serve_options(settings.policy(summary=False))
    if allowed is not None and settings.refusal == "http":
        options["origins"] = list(allowed.allowed)  # websockets' own check: HTTP 403
        allowed = None
    hooks: list[adapter.ProcessRequest] = [page, jobs_only]
    if settings.refusal == "http":
        hooks.append(adapter.authenticate(token_ok, realm="jobs"))
    hook = adapter.chain(*hooks)
    async with serve(handler, sock=sock, process_request=hook, **options) as server:
        yield server


def _starlette_app(settings: DemoSettings, connections: Connections, fleet: Fleet | None) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import Response as HttpResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    from ..adapters import starlette as adapter

    def token_ok(websocket: WebSocket) -> bool:
        return _token_matches(websocket.query_params.get("token"), settings.token)

    for_browsers = settings.refusal == "close"  # accept, then close 1008: a browser reads it
    policy = settings.policy(summary=False)

    authenticate = adapter.authenticate(
        token_ok, realm="jobs", policy=policy, for_browsers=for_browsers
    )
    check_origin = (
        None
        if settings.origins is None
        else adapter.check_origin(settings.origins, policy=policy, for_browsers=for_browsers)
    )

    async def jobs(websocket: WebSocket) -> None:
        if check_origin is not None:
            await check_origin(websocket)  # HTTP 403, or with for_browsers a close 1008
        await authenticate(websocket)  # HTTP 401, or with for_browsers a close 1008
        job_id = websocket.path_params["job_id"]
        summary = websocket.query_params.get("summary") == "1"
        policy = settings.policy(summary)
        async with adapter.guard(websocket, policy, connections=connections) as conn:
            if fleet is None:
                await handle(conn, job_id, settings)
            else:
                await fleet.watch(conn, job_id, summary)

    async def page(request: HttpRequest) -> HttpResponse:
        found = page_response(request.url.path, settings)
        assert found is not None  # only the page's routes lead here
        kind, body = found
        return HttpResponse(body, media_type=kind.split(";")[0])

    routes: list[Any] = [Route(path, page) for path in PAGE_PATHS]
    return Starlette(routes=[*routes, WebSocketRoute("/jobs/{job_id}", jobs)])


@asynccontextmanager
async def _starlette_server(
    sock: socket.socket, settings: DemoSettings, connections: Connections, fleet: Fleet | None
) -> AsyncIterator[Any]:
    import uvicorn

    # Twice the policy's limit: a message just over it reaches the policy, which answers
    # with the profile's reason; a far larger one is still refused by uvicorn unbuffered.
    config = uvicorn.Config(
        _starlette_app(settings, connections, fleet),
        lifespan="off",
        log_level="critical" if settings.quiet else "warning",
        ws_max_size=server_max_size(settings.policy(summary=False)),
    )
    server = _uvicorn_server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task  # raises what went wrong
            await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def _uvicorn_server(config: Any) -> Any:
    import uvicorn

    class DemoServer(uvicorn.Server):
        """Without uvicorn's signal handlers: the demo drains (1012) first, then stops it."""

        def capture_signals(self) -> Any:
            return contextlib.nullcontext()

    return DemoServer(config)


@dataclass(frozen=True)
class Served:
    """A running demo server: its base URI (``ws://host:port``) and its connections."""

    uri: str
    connections: Connections

    @property
    def page(self) -> str:
        """The browser page's URL."""
        return "http" + self.uri.removeprefix("ws") + "/"


@asynccontextmanager
async def running(
    adapter: Adapter,
    settings: DemoSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    connections: Connections | None = None,
    *,
    sock: socket.socket | None = None,
    fleet: Fleet | None = None,
) -> AsyncIterator[Served]:
    """Serve the reference app until the block ends (with ``connections``, or its own; on
    ``sock``, a listening socket, or a new one on ``host:port``; with ``fleet``, jobs run
    elsewhere and reach the watchers through Redis)."""
    if connections is None:
        connections = _connections(settings)
    sock = listen(host, port) if sock is None else sock
    actual = sock.getsockname()[1]
    runner = _websockets_server if adapter == "websockets" else _starlette_server
    try:
        async with runner(sock, settings, connections, fleet):
            yield Served(f"ws://{host}:{actual}", connections)
    finally:
        sock.close()


async def serve_until_signalled(
    adapter: Adapter,
    settings: DemoSettings,
    host: str,
    port: int,
    *,
    ready: Callable[[str], Awaitable[None] | None] | None = None,
    sock: socket.socket | None = None,
    redis: str | None = None,
) -> None:
    """``serve-demo``: serve until SIGTERM or SIGINT, then drain (1012) and return. With
    ``redis`` (a URL), a fleet worker: jobs run in the jobs process (``_demo.fleet``).

    SIGUSR1 prints one JSON line of statistics (open tasks and guarded connections) to
    stdout, for the load test's leak checks.
    """
    from ..adapters.websockets import drain_on_signal

    loop = asyncio.get_running_loop()
    connections = _connections(settings)
    # The signal handlers go in before the socket listens: a SIGTERM as soon as the port
    # accepts drains (nothing, then) and exits 0, instead of killing the process.
    drained = asyncio.ensure_future(drain_on_signal(connections))
    await asyncio.sleep(0)  # drain_on_signal installs its handlers as it starts
    loop.add_signal_handler(signal.SIGUSR1, _print_stats, connections)
    try:
        async with contextlib.AsyncExitStack() as stack:
            fleet = None
            if redis is not None:
                from ..fanout import Subscriber
                from .fleet import Fleet

                subscriber = await stack.enter_async_context(Subscriber(redis, connections))
                fleet = Fleet(redis, subscriber, settings)
                stack.push_async_callback(fleet.aclose)
            served = await stack.enter_async_context(
                running(adapter, settings, host, port, connections, sock=sock, fleet=fleet)
            )
            if ready is not None:
                result = ready(served.uri)
                if result is not None:
                    await result
            closed = await drained
            logger.info("drained %d connection(s) with 1012", closed)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        drained.cancel()


def _connections(settings: DemoSettings) -> Connections:
    return Connections(max_open=settings.max_connections, drain_window=DRAIN_WINDOW)


def _print_stats(connections: Connections) -> None:
    stats = {"tasks": len(asyncio.all_tasks()), "guarded": len(connections)}
    print(json.dumps(stats), flush=True)

"""The Prometheus and OpenTelemetry exporters after real wire scenarios: a real server (the
websockets library, and uvicorn serving Starlette), a real client, then a scrape of a real
Prometheus registry and a read of an in-memory OpenTelemetry reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from tests import job_protocol
from tests.aiohttp_server import aiohttp_server
from tests.asgi_servers import asgi_server
from tests.wire import exchange, run
from ws_close_policy import InboundPolicy, OutboundPolicy, Policy
from ws_close_policy.adapters import Connections
from ws_close_policy.adapters import aiohttp as aiohttp_adapter
from ws_close_policy.adapters import starlette as starlette_adapter
from ws_close_policy.adapters import websockets as websockets_adapter
from ws_close_policy.metrics import Metrics
from ws_close_policy.metrics.opentelemetry import OpenTelemetryMetrics
from ws_close_policy.metrics.prometheus import PrometheusMetrics

POLICY = Policy(
    InboundPolicy(max_bytes=64 * 1024),
    OutboundPolicy(max_bytes=job_protocol.OUTBOUND_LIMIT),
)
STACKS = ("websockets", "uvicorn-websockets-sansio", "aiohttp")


@asynccontextmanager
async def job_server(stack: str, connections: Connections) -> AsyncIterator[str]:
    """The job protocol on ``stack``, every connection in ``connections``."""
    if stack == "websockets":

        async def handler(ws: ServerConnection) -> None:
            async with websockets_adapter.guard(ws, POLICY, connections=connections) as conn:
                await job_protocol.serve_job(conn)

        async with serve(handler, "127.0.0.1", 0, **websockets_adapter.serve_options(POLICY)) as s:
            yield f"ws://127.0.0.1:{s.sockets[0].getsockname()[1]}"
    elif stack == "aiohttp":

        async def aiohttp_handler(request: web.Request) -> web.StreamResponse:
            ws = aiohttp_adapter.websocket(POLICY)
            async with aiohttp_adapter.guard(ws, request, POLICY, connections=connections) as c:
                await job_protocol.serve_job(c)
            return ws

        aiohttp_app = web.Application()
        aiohttp_app.router.add_get("/", aiohttp_handler)
        async with aiohttp_server(aiohttp_app) as uri:
            yield uri
    else:

        async def endpoint(websocket: WebSocket) -> None:
            async with starlette_adapter.guard(websocket, POLICY, connections=connections) as conn:
                await job_protocol.serve_job(conn)

        app = Starlette(routes=[WebSocketRoute("/", endpoint)])
        async with asgi_server(app, stack) as uri:
            yield uri


async def _scenarios(stack: str, metrics: Metrics) -> None:
    """Two bad messages, a normal end, a client close, then a drain of two connections."""
    connections = Connections(POLICY, metrics=metrics, drain_window=0.2)
    async with job_server(stack, connections) as uri:
        await exchange(uri, '{"invalid": "json"')  # 1002 invalid_json
        await exchange(uri, '{"type": "ping", "p": "' + "x" * 70_000 + '"}')  # 1009 too_big
        await exchange(uri, '{"type": "ping"}', '{"type": "complete"}')  # pong, then 1000
        async with connect(uri) as ws:  # the client closes first
            await ws.send('{"type": "ping"}')
            await ws.recv()
        held = [await connect(uri) for _ in range(2)]
        async with asyncio.timeout(5):
            while len(connections) < 2:
                await asyncio.sleep(0.01)
        assert await connections.drain() == 2
        for ws in held:
            await ws.wait_closed()


def _prometheus(
    registry: CollectorRegistry,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry, as the text a Prometheus server scrapes."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _closes(**labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("websocket_closes_total", tuple(sorted(labels.items())))


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_after_real_scenarios(stack: str) -> None:
    registry = CollectorRegistry()
    run(_scenarios(stack, PrometheusMetrics(registry)), timeout=30)
    samples = _prometheus(registry)
    expected_closes = {
        _closes(
            label="protocol_error", code_class="client_error", closed_by="local",
            violation="invalid_json",
        ): 1,
        _closes(
            label="message_too_big", code_class="client_error", closed_by="local",
            violation="too_big",
        ): 1,
        _closes(
            label="normal_closure", code_class="normal", closed_by="local", violation="none"
        ): 1,
        _closes(
            label="normal_closure", code_class="normal", closed_by="peer", violation="none"
        ): 1,
        _closes(
            label="service_restart", code_class="retry_later", closed_by="local", violation="none"
        ): 2,
    }  # fmt: skip
    closes = {key: value for key, value in samples.items() if key[0] == "websocket_closes_total"}
    assert closes == expected_closes
    assert samples[("websocket_open_connections", ())] == 0
    assert samples[("websocket_messages_total", (("direction", "in"),))] == 5
    assert samples[("websocket_messages_total", (("direction", "out"),))] == 3  # 2 pongs, 1 done
    assert samples[("websocket_message_bytes_total", (("direction", "in"),))] > 70_000
    assert samples[("websocket_drain_duration_seconds_count", ())] == 1
    assert 0 < samples[("websocket_drain_duration_seconds_sum", ())] < 5
    assert samples[("websocket_drained_connections_total", ())] == 2
    assert samples[("websocket_drains_started_total", ())] == 1
    assert samples[("websocket_draining", ())] == 0  # over


def _otel(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], float]]]:
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    # a sum's value, or a histogram's count (how many were recorded)
                    value = float(getattr(point, "value", 0) or getattr(point, "count", 0))
                    attributes: dict[str, Any] = dict(point.attributes or {})
                    points.setdefault(metric.name, []).append((attributes, value))
    return points


@pytest.mark.parametrize("stack", STACKS)
def test_opentelemetry_after_real_scenarios(stack: str) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    run(_scenarios(stack, OpenTelemetryMetrics(provider)), timeout=30)
    points = _otel(reader)
    closes = {
        (a["label"], a["closed_by"], a["violation"]): v for a, v in points["websocket.closes"]
    }
    assert closes == {
        ("protocol_error", "local", "invalid_json"): 1,
        ("message_too_big", "local", "too_big"): 1,
        ("normal_closure", "local", "none"): 1,
        ("normal_closure", "peer", "none"): 1,
        ("service_restart", "local", "none"): 2,
    }
    assert points["websocket.connections.open"] == [({}, 0)]
    messages = {a["direction"]: v for a, v in points["websocket.messages"]}
    assert messages == {"in": 5, "out": 3}
    assert points["websocket.drain.duration"] == [({}, 1)]
    assert points["websocket.drained.connections"] == [({}, 2)]
    assert points["websocket.draining"] == [({}, 0)]  # over


class Broken:
    """Metrics that fail: the connections must not notice."""

    def opened(self) -> None:
        raise RuntimeError("metrics backend down")

    def closed(self, event: Any) -> None:
        raise RuntimeError("metrics backend down")

    def draining(self, connections: int) -> None:
        raise RuntimeError("metrics backend down")

    def drained(self, seconds: float, connections: int) -> None:
        raise RuntimeError("metrics backend down")


def test_a_drain_is_seen_by_a_scrape_while_it_runs() -> None:
    # A scrape every 15 s almost never falls between a drain's end and the exit: the
    # draining gauge is 1 from its start (docs/metrics.md).
    registry = CollectorRegistry()
    connections = Connections(drain_window=0.5, metrics=PrometheusMetrics(registry))

    async def handler(ws: ServerConnection) -> None:
        async with websockets_adapter.guard(ws, connections=connections) as conn:
            async for _ in conn:
                pass

    async def scenario() -> list[float]:
        async with serve(handler, "127.0.0.1", 0) as server:
            uri = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            async with connect(uri) as ws:
                drain = asyncio.create_task(connections.drain())
                await asyncio.sleep(0)  # the drain has started: it reports before it waits
                during = registry.get_sample_value("websocket_draining")
                await drain
                await ws.wait_closed()
            return [during or 0.0, registry.get_sample_value("websocket_draining") or 0.0]

    assert run(scenario()) == [1.0, 0.0]


def test_broken_metrics_are_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    run(_scenarios("websockets", Broken()), timeout=30)
    failures = [r for r in caplog.records if "metrics" in r.getMessage()]
    assert failures
    assert all(r.exc_info is not None for r in failures)


def test_metrics_must_have_the_three_methods() -> None:
    with pytest.raises(TypeError, match="metrics must have an opened"):
        Connections(metrics=object())  # type: ignore[arg-type]


def test_one_deploy_is_one_drain_in_the_metrics() -> None:
    # The lifespan closes at shutdown what a drain left open: with nothing left, that is no
    # second drain (it counted one per worker twice, with a 0 s duration, in deployment.md's
    # multiprocess setup).
    registry = CollectorRegistry()
    connections = Connections(drain_window=0.1, metrics=PrometheusMetrics(registry))

    async def scenario() -> None:
        async with starlette_adapter.lifespan(connections)(Starlette()):
            await connections.drain()  # the signal's drain

    run(scenario())
    assert registry.get_sample_value("websocket_drains_started_total") == 1
    assert registry.get_sample_value("websocket_drain_duration_seconds_count") == 1

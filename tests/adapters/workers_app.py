"""A small FastAPI app for tests/adapters/test_workers.py, served by several worker processes
the way users run it:

    uvicorn tests.adapters.workers_app:app --workers 2
    fastapi run --entrypoint tests.adapters.workers_app:app --workers 2
    gunicorn -k uvicorn_worker.UvicornWorker -w 2 tests.adapters.workers_app:app
    hypercorn tests.adapters.workers_app:app --workers 2

``/ws`` is a guarded WebSocket whose first message names the worker that serves it
(``{"type": "hello", "pid": ...}``); then each client message names what the server does:
``ping`` (a ``pong``), ``complete`` (the handler returns: 1000), ``cancel`` (1001),
``app_close`` (4004 "Job not found"); anything that is not a JSON object with a ``type`` is
the policy's (1002 for invalid JSON). ``/metrics`` is the Prometheus exposition: with
``PROMETHEUS_MULTIPROC_DIR`` set (prometheus_client's multiprocess mode), every worker's
figures merged, as prometheus_client documents; without it, this process's registry. The
drain window comes from ``WS_TEST_DRAIN_WINDOW`` (seconds, default 1.5); with
``WS_TEST_SHUTDOWN_DIR`` set, each worker whose lifespan shutdown ran (after its drain) leaves
a file named by its pid there.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response, WebSocket
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from ws_close_policy import Outcome, Policy
from ws_close_policy.adapters import Connections
from ws_close_policy.adapters.starlette import guard, lifespan
from ws_close_policy.metrics.prometheus import PrometheusMetrics

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
#: Whether a worker that starts removes the live gauges of workers that died without a word
#: (what gunicorn's ``child_exit`` hook does with ``mark_process_dead``; uvicorn has no hook).
FORGET_DEAD = os.environ.get("WS_TEST_FORGET_DEAD_WORKERS") == "1"
#: Where each worker leaves a file named by its pid when its lifespan's shutdown has run.
SHUTDOWN_DIR = os.environ.get("WS_TEST_SHUTDOWN_DIR")

policy = Policy()
connections = Connections(
    policy,
    drain_window=float(os.environ.get("WS_TEST_DRAIN_WINDOW", "1.5")),
    metrics=PrometheusMetrics(),  # prometheus_client's REGISTRY; files in multiprocess mode
)


def forget_dead_workers(directory: str) -> list[int]:
    """``mark_process_dead`` for every process whose live gauges are in ``directory`` but
    that no longer exists (a worker killed, or replaced); the pids it forgot."""
    forgotten = []
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
            forgotten.append(pid)
        except PermissionError:  # pragma: no cover - a process of another user's: alive
            pass
    return forgotten


@asynccontextmanager
async def worker_lifespan(application: Any) -> AsyncIterator[dict[str, Any]]:
    """The library's lifespan, entered by the app's own: what the app does at startup, and
    at shutdown after the drain (where a real app closes its database pool)."""
    if MULTIPROC_DIR is not None and FORGET_DEAD:
        forget_dead_workers(MULTIPROC_DIR)
    async with lifespan(connections)(application) as state:  # drains on SIGTERM / SIGINT
        yield state
    if SHUTDOWN_DIR is not None:  # for the tests: this worker's shutdown ran
        (Path(SHUTDOWN_DIR) / str(os.getpid())).write_text("shut down\n")


app = FastAPI(lifespan=worker_lifespan)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's hook (``-c python:tests.adapters.workers_app``): a worker exited, killed or
    not; drop its live gauges, as prometheus_client documents for gunicorn."""
    if MULTIPROC_DIR is not None:
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    async with guard(websocket, policy, connections=connections) as conn:
        await conn.send({"type": "hello", "pid": os.getpid()})
        async for message in conn:
            kind = message["type"]
            if kind == "ping":
                await conn.send({"type": "pong", "pid": os.getpid()})
            elif kind == "complete":
                await conn.send({"type": "job_complete"})
                return  # 1000
            elif kind == "cancel":
                await conn.close(Outcome.CANCELLED)  # 1001
            elif kind == "app_close":
                await conn.close(4004, "Job not found")


@app.get("/metrics")
def metrics() -> Response:
    """The exposition: in multiprocess mode a fresh registry per scrape, filled from every
    worker's files, as prometheus_client documents."""
    if MULTIPROC_DIR is None:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

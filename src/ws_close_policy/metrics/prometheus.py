"""Prometheus metrics through ``prometheus_client`` (the ``prometheus`` extra)::

    from ws_close_policy.adapters.starlette import Connections
    from ws_close_policy.metrics.prometheus import PrometheusMetrics

    connections = Connections(policy, metrics=PrometheusMetrics())

Every label takes a bounded set of values whatever peers send: ``label`` one of
:data:`~ws_close_policy.codes.LABELS`, ``code_class`` one of
:data:`~ws_close_policy.codes.CODE_CLASSES`, ``closed_by`` one of local, peer, server,
transport, ``violation`` a :class:`~ws_close_policy.Violation` value or ``none``. The
metric names and a query for each question an operator asks are in docs/metrics.md.
"""

from __future__ import annotations

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "ws_close_policy.metrics.prometheus needs prometheus_client: "
        "pip install 'ws-close-policy[prometheus]'"
    ) from exc

from .._arguments import instance, text
from ..session import CloseEvent
from . import close_labels

__all__ = ["DRAIN_BUCKETS", "PrometheusMetrics"]

#: Seconds: a drain takes about its window (5 s by default), plus the closing handshakes.
DRAIN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class PrometheusMetrics:
    """Closes, messages, bytes, open connections and drains, registered in ``registry``
    (default: ``prometheus_client.REGISTRY``) under ``namespace`` (default ``websocket``).

    One per registry: registering the same names twice is ``prometheus_client``'s
    ``ValueError``. Messages and bytes are counted when a connection ends.
    """

    def __init__(
        self, registry: CollectorRegistry = REGISTRY, *, namespace: str = "websocket"
    ) -> None:
        instance(registry, CollectorRegistry, "registry")
        ns = text(namespace, "namespace")
        self.closes = Counter(
            "closes",
            "WebSocket connections closed, by how they ended.",
            ["label", "code_class", "closed_by", "violation"],
            namespace=ns,
            registry=registry,
        )
        self.messages = Counter(
            "messages",
            "Messages received (in) and sent (out) on connections that have ended.",
            ["direction"],
            namespace=ns,
            registry=registry,
        )
        self.bytes = Counter(
            "message_bytes",
            "Bytes of messages received (in) and sent (out) on connections that have ended.",
            ["direction"],
            namespace=ns,
            registry=registry,
        )
        # Multiprocess mode (several workers): each gauge sums or maxes the live processes.
        self.open = Gauge(
            "open_connections",
            "WebSocket connections open now.",
            namespace=ns,
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.draining_now = Gauge(
            "draining",
            "1 while a drain runs (SIGTERM: connections are being closed with 1012), else 0.",
            namespace=ns,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.drains_started = Counter(
            "drains_started",
            "Drains started (each SIGTERM or drain() call).",
            namespace=ns,
            registry=registry,
        )
        self.drains = Histogram(
            "drain_duration_seconds",
            "How long each drain took, from its start to the last close.",
            namespace=ns,
            registry=registry,
            buckets=DRAIN_BUCKETS,
        )
        self.drained_connections = Counter(
            "drained_connections",
            "Connections closed by drains.",
            namespace=ns,
            registry=registry,
        )

    def opened(self) -> None:
        """As ``Metrics.opened``."""
        self.open.inc()

    def closed(self, event: CloseEvent) -> None:
        """As ``Metrics.closed``."""
        self.open.dec()
        self.closes.labels(**close_labels(event)).inc()
        self.messages.labels("in").inc(event.messages_in)
        self.messages.labels("out").inc(event.messages_out)
        self.bytes.labels("in").inc(event.bytes_in)
        self.bytes.labels("out").inc(event.bytes_out)

    def draining(self, connections: int) -> None:  # noqa: ARG002 - closes are counted
        """As ``Metrics.draining``."""
        self.drains_started.inc()
        self.draining_now.set(1)

    def drained(self, seconds: float, connections: int) -> None:
        """As ``Metrics.drained``."""
        self.drains.observe(seconds)
        self.drained_connections.inc(connections)
        self.draining_now.set(0)

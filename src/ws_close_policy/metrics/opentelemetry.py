"""OpenTelemetry metrics through the OpenTelemetry metrics API (the ``opentelemetry``
extra)::

    from ws_close_policy.adapters.starlette import Connections
    from ws_close_policy.metrics.opentelemetry import OpenTelemetryMetrics

    connections = Connections(policy, metrics=OpenTelemetryMetrics())

The same instruments as the Prometheus exporter, with the same bounded attributes; the
application's SDK (``MeterProvider``, readers, exporters) decides where they go. Without an
SDK configured the API's no-op provider records nothing. Names are in docs/metrics.md.
"""

from __future__ import annotations

try:
    from opentelemetry import metrics as otel
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "ws_close_policy.metrics.opentelemetry needs opentelemetry-api: "
        "pip install 'ws-close-policy[opentelemetry]'"
    ) from exc

from ..session import CloseEvent
from . import close_labels

__all__ = ["OpenTelemetryMetrics"]


class OpenTelemetryMetrics:
    """Closes, messages, bytes, open connections and drains, recorded with a meter from
    ``meter_provider`` (default: the global one, ``opentelemetry.metrics``). Messages and
    bytes are counted when a connection ends."""

    def __init__(self, meter_provider: otel.MeterProvider | None = None) -> None:
        meter = otel.get_meter("ws_close_policy", meter_provider=meter_provider)
        self.closes = meter.create_counter(
            "websocket.closes", "{connection}", "WebSocket connections closed, by how they ended."
        )
        self.messages = meter.create_counter(
            "websocket.messages",
            "{message}",
            "Messages received (in) and sent (out) on connections that have ended.",
        )
        self.bytes = meter.create_counter(
            "websocket.message.bytes",
            "By",
            "Bytes of messages received (in) and sent (out) on connections that have ended.",
        )
        self.open = meter.create_up_down_counter(
            "websocket.connections.open", "{connection}", "WebSocket connections open now."
        )
        self.drains = meter.create_histogram(
            "websocket.drain.duration", "s", "How long each drain took."
        )
        self.drained_connections = meter.create_counter(
            "websocket.drained.connections", "{connection}", "Connections closed by drains."
        )
        self.draining_now = meter.create_up_down_counter(
            "websocket.draining", "{drain}", "Drains running now (SIGTERM: closing with 1012)."
        )

    def opened(self) -> None:
        """As ``Metrics.opened``."""
        self.open.add(1)

    def closed(self, event: CloseEvent) -> None:
        """As ``Metrics.closed``."""
        self.open.add(-1)
        self.closes.add(1, close_labels(event))
        for direction, messages, size in (
            ("in", event.messages_in, event.bytes_in),
            ("out", event.messages_out, event.bytes_out),
        ):
            self.messages.add(messages, {"direction": direction})
            self.bytes.add(size, {"direction": direction})

    def draining(self, connections: int) -> None:  # noqa: ARG002 - closes are counted
        """As ``Metrics.draining``."""
        self.draining_now.add(1)

    def drained(self, seconds: float, connections: int) -> None:
        """As ``Metrics.drained``."""
        self.drains.record(seconds)
        self.drained_connections.add(connections)
        self.draining_now.add(-1)

"""Close metrics: closes counted by a bounded set of labels.

:class:`Metrics` is what ``Connections(metrics=...)`` reports to: every connection opened,
every :class:`~ws_close_policy.CloseEvent`, every drain. Two exporters implement it, as
optional extras: :mod:`ws_close_policy.metrics.prometheus` (``prometheus_client``) and
:mod:`ws_close_policy.metrics.opentelemetry` (the OpenTelemetry metrics API); see
docs/metrics.md.

``CloseCounter`` is a ``Session`` observer (or an adapter's) that counts in memory, with no
dependency. Labels come from :data:`~ws_close_policy.codes.LABELS` (one per registered code
plus ``registered``, ``private`` and ``invalid``), so the number of series stays bounded
whatever codes peers send::

    from ws_close_policy import Session
    from ws_close_policy.metrics import CloseCounter

    counter = CloseCounter()
    session = Session(policy, observer=counter)
    ...
    counter.counts["policy_violation"]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Protocol

from ..codes import LABELS, code_class
from ..session import ClosedBy, CloseEvent

__all__ = ["CloseCounter", "Metrics", "close_labels"]


def close_labels(event: CloseEvent) -> dict[str, str]:
    """The labels a close is counted by, each from a bounded set: ``label``
    (``codes.LABELS``), ``code_class`` (``codes.CODE_CLASSES``), ``closed_by`` and
    ``violation`` (a :class:`~ws_close_policy.Violation` value, or ``"none"``)."""
    return {
        "label": event.label,
        "code_class": code_class(event.code),
        "closed_by": event.closed_by,
        "violation": "none" if event.violation is None else str(event.violation),
    }


class Metrics(Protocol):
    """What ``Connections(metrics=...)`` reports to. An exception from any of these is
    logged and never reaches the connection."""

    def opened(self) -> None:
        """A guarded connection opened."""

    def closed(self, event: CloseEvent) -> None:
        """A guarded connection is over; ``event`` says how (once per connection)."""

    def draining(self, connections: int) -> None:
        """A drain started, with ``connections`` connections to close: a drain is seen by
        a scrape while it runs, not only in the moments between its end and the exit."""

    def drained(self, seconds: float, connections: int) -> None:
        """A drain closed ``connections`` connections in ``seconds``."""


class CloseCounter:
    """An observer counting closes by label, and by label and who closed first."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.by_closer: Counter[tuple[str, ClosedBy]] = Counter()

    def __call__(self, event: CloseEvent) -> None:
        self.counts[event.label] += 1
        self.by_closer[event.label, event.closed_by] += 1

    @property
    def total(self) -> int:
        """How many closes were counted."""
        return self.counts.total()

    def snapshot(self) -> Mapping[str, int]:
        """A copy of the counts, every label present (zero when never seen)."""
        return {label: self.counts.get(label, 0) for label in sorted(LABELS)}

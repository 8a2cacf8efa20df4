"""Close metrics: count closes by a bounded set of labels.

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

from ..codes import LABELS, close_label
from ..session import ClosedBy, CloseEvent

__all__ = ["LABELS", "CloseCounter", "close_label"]


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
        return self.counts.total()

    def snapshot(self) -> Mapping[str, int]:
        """A copy of the counts, every label present (zero when never seen)."""
        return {label: self.counts.get(label, 0) for label in sorted(LABELS)}

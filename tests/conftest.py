"""Shared test configuration.

Hypothesis profiles: ``default`` keeps the suite fast; set ``HYPOTHESIS_PROFILE=slow`` for a
long run (thousands of examples per property) before a release or after touching a decision.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,  # a 2-core CI machine under load must not turn slowness into failures
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("slow", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

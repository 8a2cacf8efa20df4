"""Shared benchmark helpers: interleaved A/B timing with medians and ratios."""

from __future__ import annotations

import platform
import sys
import timeit
from collections.abc import Callable
from importlib.metadata import version

Case = tuple[str, Callable[[], object], Callable[[], object]]  # (name, baseline, candidate)


def header(packages: tuple[str, ...] = ()) -> None:
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    print(f"# {platform.python_implementation()} {sys.version.split()[0]} on {platform.machine()}")
    print(f"# {platform.processor() or platform.platform()}; {versions}")


def _per_call(func: Callable[[], object], seconds: float) -> tuple[int, float]:
    number, elapsed = timeit.Timer(func).autorange()
    number = max(1, int(number * seconds / max(elapsed, 1e-9)))
    return number, timeit.Timer(func).timeit(number) / number


def compare(
    cases: list[Case], rounds: int = 7, seconds: float = 0.05
) -> list[tuple[str, float, float]]:
    """Time each case's baseline and candidate alternately (A B A B ...); return medians."""
    numbers = {name: _per_call(candidate, seconds)[0] for name, _, candidate in cases}
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, *_ in cases}
    for _ in range(rounds):
        for name, baseline, candidate in cases:
            n = numbers[name]
            samples[name][0].append(timeit.Timer(baseline).timeit(n) / n)
            samples[name][1].append(timeit.Timer(candidate).timeit(n) / n)
    return [(name, min(base), min(cand)) for name, (base, cand) in samples.items()]


def report(results: list[tuple[str, float, float]], targets: dict[str, float]) -> int:
    """Print a table; return the number of missed targets (ratio above its target)."""
    print(f"{'case':44} {'baseline':>12} {'candidate':>12} {'ratio':>7}  target")
    missed = 0
    for name, base, cand in results:
        ratio = cand / base
        target = targets.get(name)
        verdict = ""
        if target is not None:
            ok = ratio <= target
            missed += not ok
            verdict = f"<= {target:.2f} {'ok' if ok else 'MISSED'}"
        print(f"{name:44} {_fmt(base):>12} {_fmt(cand):>12} {ratio:7.3f}  {verdict}")
    return missed


def _fmt(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.2f} ms"

"""Shared benchmark helpers: paired A/B timing with medians and ratios; a server process's
instructions under callgrind."""

from __future__ import annotations

import platform
import re
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

Case = tuple[str, Callable[[], object], Callable[[], object]]  # (name, baseline, candidate)
Result = tuple[str, float, float, float]  # (name, baseline s, candidate s, paired ratio)


def header(packages: tuple[str, ...] = ()) -> None:
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    print(f"# {platform.python_implementation()} {sys.version.split()[0]} on {platform.machine()}")
    print(f"# {platform.processor() or platform.platform()}; {versions}")


def _calls_per_batch(func: Callable[[], object], seconds: float) -> int:
    number, elapsed = timeit.Timer(func).autorange()
    return max(1, int(number * seconds / max(elapsed, 1e-9)))


def compare(cases: list[Case], rounds: int = 101, seconds: float = 0.004) -> list[Result]:
    """Time each case's baseline and candidate in short paired batches; return medians.

    Each round times a batch of the baseline and a batch of the candidate back to back
    (A B, then B A in the next round) and keeps their ratio. Drift on a noisy machine moves
    both halves of a pair alike, so the median of these paired ratios is stable where the
    fastest or median times alone are not: timing a 200-byte ``orjson.dumps`` against
    itself, the paired median lands within 1% of 1.0, the fastest of 15 rounds anywhere
    from 0.88 to 1.13. Each result is (name, median baseline time, median candidate time,
    median paired ratio).
    """
    numbers = {name: _calls_per_batch(candidate, seconds) for name, _, candidate in cases}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in cases}
    for i in range(rounds):
        for name, baseline, candidate in cases:
            n = numbers[name]
            if i % 2:
                cand = timeit.Timer(candidate).timeit(n) / n
                base = timeit.Timer(baseline).timeit(n) / n
            else:
                base = timeit.Timer(baseline).timeit(n) / n
                cand = timeit.Timer(candidate).timeit(n) / n
            samples[name].append((base, cand))
    return [
        (
            name,
            statistics.median(b for b, _ in pairs),
            statistics.median(c for _, c in pairs),
            statistics.median(c / b for b, c in pairs),
        )
        for name, pairs in samples.items()
    ]


def self_check(label: str, baseline: Callable[[], object]) -> Case:
    """A baseline timed against itself: its ratio shows how far from 1.0 noise alone goes."""
    return (f"{label}: A/A (bare against itself)", baseline, baseline)


def report(results: list[Result], targets: dict[str, float]) -> int:
    """Print a table; return the number of missed targets (ratio above its target)."""
    print(f"{'case':44} {'baseline':>12} {'candidate':>12} {'ratio':>7}  target")
    missed = 0
    for name, base, cand, ratio in results:
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


def under_callgrind(command: list[str], out: Path) -> list[str]:
    """``command`` run under callgrind, each dump in ``out.1``, ``out.2`` ..."""
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no",
            *command]  # fmt: skip


def callgrind_zero(pid: int, timeout: float) -> None:
    """Count ``pid``'s instructions from now on."""
    subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True,
                   timeout=timeout)  # fmt: skip


def callgrind_count(pid: int, out: Path, dump: int, timeout: float) -> int:
    """``pid``'s instructions since ``callgrind_zero``, from its ``dump``-th dump."""
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True,
                   timeout=timeout)  # fmt: skip
    text = Path(f"{out}.{dump}").read_text()
    found = re.search(r"^summary: (\d+)", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no summary in callgrind dump {out}.{dump}")
    return int(found.group(1))

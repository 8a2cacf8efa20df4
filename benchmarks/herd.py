"""Reconnect herd simulation: 10,000 clients closed at t=0, how evenly do they come back?

(a) all closed with 1012 (service restart); (b) all closed with 1011, and closed again at
once on each of 6 attempts. Compared side by side: this library's policy (full jitter),
the same without jitter, and the `websockets` client's own schedule (a random first delay
of 0-5 s, then a fixed 3.1 s growing by 1.618x, whatever the close code).

Run: make herd (also writes docs/herd.png when matplotlib is installed: `make herd` does).
Targets (issue 5): after 1012 the busiest second holds at most 1.2x the mean rate over the
5-30 s window; in the 1011 chain no 100 ms bucket holds more than 3x the mean of its
attempt's window.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ws_close_policy import ReconnectPolicy, advise_reconnect

CLIENTS = 10_000
ATTEMPTS = 6
SEED = 20261126

Schedule = Callable[[int, random.Random], float]  # (attempt, rng) -> delay


def ours(code: int, policy: ReconnectPolicy) -> Schedule:
    def delay(attempt: int, rng: random.Random) -> float:
        return advise_reconnect(code, attempt, policy, random=rng.random).delay

    return delay


def websockets_client(attempt: int, rng: random.Random) -> float:
    # Their documented backoff: random 0-5 s first, then 3.1 s x 1.618 per attempt, cap 90.
    if attempt == 0:
        return rng.random() * 5.0
    return min(90.0, 3.1 * 1.618 ** (attempt - 1))


def simulate(schedule: Schedule, attempts: int) -> list[list[float]]:
    """Reconnect times per attempt for every client (closed again at once each time)."""
    rng = random.Random(SEED)
    times: list[list[float]] = [[] for _ in range(attempts)]
    for _ in range(CLIENTS):
        now = 0.0
        for attempt in range(attempts):
            now += schedule(attempt, rng)
            times[attempt].append(now)
    return times


def peak_ratio(times: list[float], bucket: float, window: tuple[float, float]) -> float:
    low, high = window
    buckets = max(1, round((high - low) / bucket))
    counts = Counter(min(buckets - 1, int((t - low) / bucket)) for t in times if low <= t <= high)
    mean = len(times) / buckets
    return max(counts.values()) / mean


def spread(times: list[float]) -> tuple[float, float]:
    return min(times), max(times)


def main() -> int:
    full = ReconnectPolicy()
    exact = ReconnectPolicy(jitter="none")
    schedules = {
        "ws-close-policy (full jitter)": (ours(1012, full), ours(1011, full)),
        "no jitter": (ours(1012, exact), ours(1011, exact)),
        "websockets client": (websockets_client, websockets_client),
    }
    missed = 0
    print(f"# {CLIENTS} clients, seed {SEED}")
    print("\n(a) closed with 1012: reconnects per second, busiest second / mean rate")
    print(f"{'schedule':32} {'window (s)':>14} {'busiest s':>10} {'ratio':>7}")
    restart: dict[str, list[float]] = {}
    for name, (after_restart, _) in schedules.items():
        times = simulate(after_restart, 1)[0]
        restart[name] = times
        window = (5.0, 30.0) if name.startswith("ws-close") else spread(times)
        width = max(window[1] - window[0], 1.0)
        ratio = peak_ratio(times, 1.0, (window[0], window[0] + width))
        busiest = ratio * CLIENTS / width
        print(f"{name:32} {window[0]:6.1f}-{window[1]:<7.1f} {busiest:10.0f} {ratio:7.2f}")
        if name.startswith("ws-close"):
            missed += ratio > 1.2
    print("\n(b) closed with 1011 on every attempt: busiest 100 ms / mean of the attempt's window")
    print(f"{'schedule':32} " + " ".join(f"{f'try {n + 1}':>9}" for n in range(ATTEMPTS)))
    chains: dict[str, list[list[float]]] = {}
    peaks: dict[str, list[int]] = {}
    for name, (_, after_error) in schedules.items():
        chain = simulate(after_error, ATTEMPTS)
        chains[name] = chain
        ratios = []
        peaks[name] = []
        for times in chain:
            low, high = spread(times)
            ratios.append(peak_ratio(times, 0.1, (low, max(high, low + 0.1))))
            peaks[name].append(max(Counter(int(t * 10) for t in times).values()))
        print(f"{name:32} " + " ".join(f"{r:9.2f}" for r in ratios))
        if name.startswith("ws-close"):
            missed += any(r > 3 for r in ratios)
    print("\n    the same, as the busiest 100 ms in clients (what the server sees)")
    for name, counts in peaks.items():
        print(f"{name:32} " + " ".join(f"{c:9d}" for c in counts))
    print(f"\ntargets missed: {missed}")
    if "--plot" in sys.argv:
        plot(restart, chains, Path(__file__).parent.parent / "docs" / "herd.png")
    return 0


def plot(restart: dict[str, list[float]], chains: dict[str, list[list[float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), constrained_layout=True)
    for name, times in restart.items():
        top.hist(times, bins=[x / 10 for x in range(320)], histtype="step", label=name)
    top.set_title("(a) 10,000 clients closed with 1012: reconnects per 100 ms")
    top.set_xlabel("seconds after the close")
    top.set_yscale("log")
    top.legend()
    for name, chain in chains.items():
        every = [t for times in chain for t in times]
        bottom.hist(every, bins=[x / 10 for x in range(700)], histtype="step", label=name)
    bottom.set_title("(b) closed with 1011 on each of 6 attempts: reconnects per 100 ms")
    bottom.set_xlabel("seconds after the first close")
    bottom.set_yscale("log")
    bottom.legend()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())

"""Run one coverage-guided fuzzer (atheris): python fuzz/run.py NAME SECONDS.

New inputs that find coverage are kept in fuzz/corpus/NAME/, which the normal test suite
replays (tests/test_fuzz_corpus.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports():
    import ws_close_policy  # noqa: F401
    from fuzz.harnesses import HARNESSES


def main() -> None:
    name, seconds = sys.argv[1], int(sys.argv[2])
    corpus = Path(__file__).parent / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    harness = HARNESSES[name]
    atheris.Setup(
        [
            sys.argv[0],
            str(corpus),
            f"-max_total_time={seconds}",
            "-max_len=4096",
            "-print_final_stats=1",
        ],
        harness,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main()

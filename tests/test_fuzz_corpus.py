"""Replay every input the fuzzers kept (fuzz/corpus/), plus a few seeds, in the normal run."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz.harnesses import HARNESSES

CORPUS = Path(__file__).parents[1] / "fuzz" / "corpus"
SEEDS = [
    b"",
    b"\x00",
    b'\x01{"type": "ping"}',
    b"\x02" + b"[" * 5000,
    b'\x03{"type":"x","n":1e400}',
    b"\x05\xff\xfe",
    b"\x03\xe8bye",
    b"\x0f\xa1" + "é".encode() * 70,
]


def _inputs() -> list[tuple[str, bytes]]:
    found = [
        (name, path.read_bytes())
        for name in HARNESSES
        for path in sorted((CORPUS / name).glob("*"))
        if path.is_file()
    ]
    return found + [(name, seed) for name in HARNESSES for seed in SEEDS]


@pytest.mark.parametrize(("name", "data"), _inputs())
def test_replay(name: str, data: bytes) -> None:
    HARNESSES[name](data)

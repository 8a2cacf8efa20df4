"""conformance/autobahn.py's verdict: an adapter may not score worse than its bare transport
in a case that is stable from run to run. The suite itself runs with `make autobahn`."""

from __future__ import annotations

from typing import Any

from conformance.autobahn import compare


def result(behavior: str, close: str = "OK") -> dict[str, Any]:
    return {"behavior": behavior, "behaviorClose": close}


def runs(bare: list[dict[str, Any]], adapter: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "s/bare": {"1.1.1": b, "7.1.5": result("OK")},
            "s/adapter": {"1.1.1": a, "7.1.5": result("OK")},
        }
        for b, a in zip(bare, adapter, strict=True)
    ]


def test_equal_verdicts_are_neither_worse_nor_better() -> None:
    summary = compare("s", runs([result("NON-STRICT")] * 2, [result("NON-STRICT")] * 2))
    assert summary["worse"] == summary["better"] == summary["unstable"] == []
    assert summary["adapter"] == {"NON-STRICT/OK": 1, "OK/OK": 1}


def test_a_stable_worse_behaviour_or_close_is_reported() -> None:
    worse = compare("s", runs([result("OK")] * 2, [result("FAILED")] * 2))["worse"]
    assert worse == ["1.1.1: bare OK/OK, adapter FAILED/OK"]
    unclean = compare("s", runs([result("OK")] * 2, [result("OK", "UNCLEAN")] * 2))["worse"]
    assert unclean == ["1.1.1: bare OK/OK, adapter OK/UNCLEAN"]


def test_better_is_listed_and_informational_is_not_graded() -> None:
    better = compare("s", runs([result("NON-STRICT")], [result("OK")]))
    assert better["better"] == ["1.1.1: bare NON-STRICT/OK, adapter OK/OK"]
    assert better["worse"] == []
    info = compare("s", runs([result("OK")], [result("INFORMATIONAL", "INFORMATIONAL")]))
    assert info["worse"] == info["better"] == []


def test_a_case_that_changes_between_runs_is_not_judged() -> None:
    summary = compare("s", runs([result("OK"), result("OK")], [result("FAILED"), result("OK")]))
    assert summary["worse"] == []
    assert summary["unstable"] == ["1.1.1: bare ['OK/OK'], adapter ['FAILED/OK', 'OK/OK']"]

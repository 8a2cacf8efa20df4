"""conformance/autobahn.py's verdict: an adapter may not fail a case its bare transport
passes, in a case that is stable from run to run. The suite itself runs with
`make autobahn`."""

from __future__ import annotations

from typing import Any

from conformance.autobahn import compare


def result(behavior: str, close: str = "OK") -> dict[str, Any]:
    return {"behavior": behavior, "behaviorClose": close}


def runs(bare: list[dict[str, Any]], adapter: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One index per pass: case 1.1.1 as given, 7.1.5 OK for both agents."""
    return [
        {
            "s/bare": {"1.1.1": b, "7.1.5": result("OK")},
            "s/adapter": {"1.1.1": a, "7.1.5": result("OK")},
        }
        for b, a in zip(bare, adapter, strict=True)
    ]


def listed(summary: dict[str, Any]) -> dict[str, list[str]]:
    keys = ("worse", "better", "stricter", "less strict", "unstable")
    return {key: summary[key] for key in keys if summary[key]}


def test_equal_verdicts_are_not_listed() -> None:
    summary = compare("s", runs([result("NON-STRICT")] * 2, [result("NON-STRICT")] * 2))
    assert listed(summary) == {}
    assert summary["adapter"] == {"NON-STRICT/OK": "1", "OK/OK": "1"}


def test_a_stable_failure_the_bare_transport_passes_is_worse() -> None:
    failed = compare("s", runs([result("OK")] * 2, [result("FAILED")] * 2))
    assert listed(failed) == {"worse": ["1.1.1: bare OK/OK, adapter FAILED/OK"]}
    unclean = compare("s", runs([result("OK")] * 2, [result("OK", "UNCLEAN")] * 2))
    assert listed(unclean) == {"worse": ["1.1.1: bare OK/OK, adapter OK/UNCLEAN"]}
    missing = compare("s", runs([result("NON-STRICT")], [result("UNIMPLEMENTED")]))
    assert listed(missing) == {"worse": ["1.1.1: bare NON-STRICT/OK, adapter UNIMPLEMENTED/OK"]}


def test_strictness_is_listed_not_judged() -> None:
    less = compare("s", runs([result("OK")] * 2, [result("NON-STRICT")] * 2))
    assert listed(less) == {"less strict": ["1.1.1: bare OK/OK, adapter NON-STRICT/OK"]}
    more = compare("s", runs([result("NON-STRICT")], [result("OK")]))
    assert listed(more) == {"stricter": ["1.1.1: bare NON-STRICT/OK, adapter OK/OK"]}


def test_better_is_listed_and_informational_is_not_graded() -> None:
    better = compare("s", runs([result("FAILED")], [result("OK")]))
    assert listed(better) == {"better": ["1.1.1: bare FAILED/OK, adapter OK/OK"]}
    info = compare("s", runs([result("OK")], [result("INFORMATIONAL", "INFORMATIONAL")]))
    assert listed(info) == {}


def test_a_case_that_changes_between_runs_is_not_judged() -> None:
    summary = compare("s", runs([result("OK"), result("OK")], [result("FAILED"), result("OK")]))
    assert listed(summary) == {
        "unstable": ["1.1.1: bare ['OK/OK'], adapter ['FAILED/OK', 'OK/OK']"]
    }
    assert summary["adapter"] == {"FAILED/OK": "0-1", "OK/OK": "1-2"}

"""One source of truth for the advice: the page's `advise` (demo.js), run in Chromium on the
table the server serves (`advice_table`), agrees with `advise_reconnect` for any policy, code
and attempt: the same action and the same jitter window."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.adapters.stacks import free_port, started
from ws_close_policy import ReconnectAction, ReconnectPolicy, advise_reconnect
from ws_close_policy.profile import PRESETS
from ws_close_policy.reconnect import PUSHER_BANDS, Band, advice_table

pytestmark = pytest.mark.browser

ADVISE = """async ([table, cases]) => {
  const { advise } = await import("/demo.js");
  return cases.map(([code, attempt]) => advise(table, code, attempt));
}"""


@pytest.fixture(scope="module")
def module_page(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The demo page, loaded once: the module under test comes from the real server."""
    port = free_port()
    argv = [sys.executable, "-m", "ws_close_policy", "serve-demo", "--port", str(port)]
    tmp: Path = tmp_path_factory.mktemp("advice")
    with started("serve-demo", argv, port, tmp):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("body[data-ready=true]")
        yield page
        context.close()


def _bands() -> st.SearchStrategy[tuple[Band, ...]]:
    own = st.builds(
        lambda first, width, action, immediate: Band(
            first, min(4999, first + width), action, immediate
        ),
        st.integers(3000, 4999),
        st.integers(0, 300),
        st.sampled_from(list(ReconnectAction)),
        st.booleans(),
    )
    return st.one_of(st.just(()), st.just(PUSHER_BANDS), st.lists(own, max_size=3).map(tuple))


windows = st.tuples(st.floats(0, 60), st.floats(0, 60)).map(lambda w: (min(w), max(w)))
policies = st.builds(
    ReconnectPolicy,
    base=st.floats(0.01, 100),
    factor=st.floats(1, 10),
    cap=st.floats(0.01, 1000),
    max_attempts=st.integers(1, 20),
    restart_delay=windows,
    jitter=st.sampled_from(["full", "none"]),
    profile=st.sampled_from(list(PRESETS.values())),
    private_bands=_bands(),
    private_default=st.sampled_from(list(ReconnectAction)),
)
codes = st.one_of(
    st.none(),
    st.sampled_from([*range(1000, 1016), 0, 999, 2999, 3000, 3999, 4000, 4099, 4100, 4999, 5000]),
    st.integers(-10, 70_000),
)
cases = st.lists(st.tuples(codes, st.integers(0, 25)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(policy=policies, batch=cases)
def test_the_page_advises_as_python_does(
    module_page: Any, policy: ReconnectPolicy, batch: list[tuple[int | None, int]]
) -> None:
    table = advice_table(policy)
    from_js = module_page.evaluate(ADVISE, [table, batch])
    for (code, attempt), js in zip(batch, from_js, strict=True):
        python = advise_reconnect(code, attempt, policy)
        case = (code, attempt, python, js)
        assert js["action"] == python.action.value, case
        low, high = js["window"]
        assert math.isclose(low, python.window[0], rel_tol=1e-12, abs_tol=1e-12), case
        assert math.isclose(high, python.window[1], rel_tol=1e-12, abs_tol=1e-12), case
        assert math.isclose(js["fixed"], python.delay, rel_tol=1e-12, abs_tol=1e-12), case

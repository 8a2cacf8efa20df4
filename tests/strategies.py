"""Hypothesis strategies shared by the decision tests."""

from __future__ import annotations

import json

from hypothesis import strategies as st

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
messages = st.builds(
    lambda kind, extra: {**extra, "type": kind},
    st.text(min_size=1, max_size=20),
    st.dictionaries(st.text(max_size=8), json_values, max_size=5),
)

fuzz_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=60),
    st.text(
        st.sampled_from(
            '{}[]",:0123456789.eE+-tfnulrasNIy\\ud8',
        ),
        max_size=60,
    ),
    st.builds(json.dumps, json_values),
    st.builds(lambda n, s: "[" * n + s + "]" * n, st.integers(0, 200), st.sampled_from(["", "1"])),
    st.builds(lambda d: '{"type":"x","n":' + "9" * d + "}", st.integers(15, 5000)),
    st.builds(lambda e: '{"type":"x","n":1e' + str(e) + "}", st.integers(250, 400)),
)

"""Builds the optional C accelerator; all other metadata is in pyproject.toml.

WS_CLOSE_POLICY_BUILD_EXTENSION chooses: "auto" (default) builds it when a C compiler
works and installs the pure-Python package otherwise; "yes" fails the install if it does
not build (the Makefile sets this); "no" never builds it.
"""

import os

from setuptools import Extension, setup

MODE = os.environ.get("WS_CLOSE_POLICY_BUILD_EXTENSION", "auto")
if MODE not in ("auto", "yes", "no"):
    raise SystemExit(f"WS_CLOSE_POLICY_BUILD_EXTENSION must be auto, yes or no, not {MODE!r}")

speedups = Extension(
    "ws_close_policy._speedups",
    sources=["src/ws_close_policy/_speedups.c"],
    optional=MODE == "auto",
)

setup(ext_modules=[] if MODE == "no" else [speedups])

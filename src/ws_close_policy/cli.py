"""The ``ws-close-policy`` command line (also ``python -m ws_close_policy``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .profile import PRESETS, profile_named
from .report import FORMATS, code_rows, render

__all__ = ["main"]


def _profile_arg(value: str) -> str:
    try:
        profile_named(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ws-close-policy",
        description="WebSocket close codes: what they mean and what to do about them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    codes = commands.add_parser("codes", help="print the close-code table for a profile")
    codes.add_argument(
        "--profile",
        type=_profile_arg,
        default="SEED",
        help=f"one of {', '.join(PRESETS)} (default: SEED)",
    )
    codes.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    return parser


def _codes(args: argparse.Namespace) -> int:
    profile = profile_named(args.profile)
    print(render(code_rows(profile), args.format, profile))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    args = _parser().parse_args(argv)
    commands = {"codes": _codes}
    return commands[args.command](args)

"""``python -m ws_close_policy``: the command-line interface."""

from .cli import main

raise SystemExit(main())

"""The demo's browser page: static files (``page/``), the advice as JSON, and a token.

``GET /`` is the page, ``/demo.js`` its one ES module, ``/advice.json`` the reconnect
advice of the server's profile (:func:`ws_close_policy.reconnect.advice_table`, plus the
page's ``stable_after``), ``/token`` the token a client gets when it refreshes its
credentials. Both adapters serve these with :func:`page_response`.
"""

from __future__ import annotations

import json
from importlib import resources
from urllib.parse import urlsplit

from ..reconnect import advice_table
from .jobs import DemoSettings

__all__ = ["PAGE_PATHS", "STABLE_AFTER", "page_response"]

#: Seconds a connection must stay up before the page resets its attempt counter.
STABLE_AFTER = 10.0

_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/demo.js": ("demo.js", "text/javascript; charset=utf-8"),
}
_JSON = "application/json"
#: Every path the page answers.
PAGE_PATHS = (*_FILES, "/advice.json", "/token")


def page_response(path: str, settings: DemoSettings) -> tuple[str, bytes] | None:
    """(content type, body) for a page path, or ``None`` for any other path."""
    route = urlsplit(path).path
    if route in _FILES:
        name, kind = _FILES[route]
        return kind, resources.files(__package__).joinpath("page", name).read_bytes()
    if route == "/advice.json":
        table = {**advice_table(settings.reconnect()), "stable_after": STABLE_AFTER}
        return _JSON, json.dumps(table).encode()
    if route == "/token":
        return _JSON, json.dumps({"token": settings.token}).encode()
    return None

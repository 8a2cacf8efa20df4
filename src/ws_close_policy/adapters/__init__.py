"""Adapters turning the core's actions into frames on real servers.

Import the one you need; each imports its framework only when imported itself:

* :mod:`ws_close_policy.adapters.websockets` for the ``websockets`` library;
* :mod:`ws_close_policy.adapters.starlette` for Starlette and FastAPI, on any ASGI server.
"""

"""The reference job-progress server, its scripted client, and the probe.

Built only on the public API; documented in ``docs/demo.md``. Not part of the sans-IO core:
this package does I/O.
"""

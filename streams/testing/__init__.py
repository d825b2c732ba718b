"""Helpers for code that drives a real worker: the integration tests and the fault scenarios import them.

Shipped in the package (like ``structlog.testing``), never under ``tests/``: ``faults/scenarios/common.py``
and ``tests/integration/`` both build on them, and ``bench``/``faults`` must not import ``tests``
(the import-linter contracts in ``pyproject.toml``). Importing this module starts nothing.
"""

from __future__ import annotations

from streams.testing.harness import WorkerProc, drain, produce

__all__ = ["WorkerProc", "drain", "produce"]

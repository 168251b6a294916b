"""The ``masquerade`` command line: one module per command, :mod:`.main` builds the parser and runs."""

from __future__ import annotations

from .main import entry, main

__all__ = ["entry", "main"]

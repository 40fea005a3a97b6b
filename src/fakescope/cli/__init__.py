"""Command line: ``fakescope scan`` and ``fakescope bench``. It only calls the library."""

from fakescope.cli._main import main

__all__ = ["main"]

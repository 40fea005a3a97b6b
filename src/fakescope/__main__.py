"""``python -m fakescope`` runs the command line."""

from fakescope.cli._main import _entry

_entry()

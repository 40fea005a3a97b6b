"""Optional installs ("extras"): what each needs, and the one-line message when one is missing.

``pip install fakescope`` scans; the rest comes in extras (see ``pyproject.toml``). A command
that needs one calls :func:`require` first, so a missing package gives
``fakescope serve needs the server extra (fastapi is not installed): pip install
'fakescope[server]'`` (exit status 2) rather than a traceback half-way through.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from fakescope.errors import FakescopeError

__all__ = ["EXTRAS", "MissingExtra", "missing_module", "require"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "server": ("fastapi", "uvicorn", "python_multipart"),
    "eval": ("sklearn", "scipy", "matplotlib"),
    "train": ("torch", "yaml", "onnx", "sklearn", "scipy"),
    "batch": ("pyarrow", "fsspec", "ray"),
    "provenance": ("c2pa",),
}
"""Import names of the packages each extra installs (those fakescope imports)."""


class MissingExtra(FakescopeError):
    """A command needs an extra that is not installed (reported on one line, exit status 2)."""

    def __init__(self, what: str, extra: str, module: str) -> None:
        self.what, self.extra, self.module = what, extra, module
        super().__init__(
            f"{what} needs the {extra} extra ({module} is not installed): "
            f"pip install 'fakescope[{extra}]'"
        )


def missing_module(modules: Sequence[str]) -> str | None:
    """The first of ``modules`` that cannot be imported (found without importing it)."""
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return name
    return None


def require(extra: str, what: str, modules: Sequence[str] | None = None) -> None:
    """Raise :class:`MissingExtra` unless every module of ``extra`` (or ``modules``, the part
    of it ``what`` uses) is installed. ``what`` names the command, e.g. ``"fakescope serve"``."""
    module = missing_module(EXTRAS[extra] if modules is None else modules)
    if module is not None:
        raise MissingExtra(what, extra, module)

"""The web service: ``fakescope serve`` runs a FastAPI app (page at ``/``, JSON API under
``/api``, OpenAPI docs at ``/docs``) whose uploads are scanned by worker processes from a
SQLite job queue in the data folder, so accepted jobs survive a server restart.

``run_server`` (uvicorn, with a deadline on request heads) is loaded on first use (PEP 562):
building the app does not import uvicorn.
"""

from __future__ import annotations

import importlib
import typing

from fakescope.server._app import create_app
from fakescope.server._files import PRIVATE_UMASK
from fakescope.server._jobs import DataDirBusy, DataDirLock, Job, JobStore
from fakescope.server._settings import ServerSettings
from fakescope.server._worker import JobRunner, WorkerPool

if typing.TYPE_CHECKING:
    from fakescope.server._http import run_server

__all__ = [
    "PRIVATE_UMASK",
    "DataDirBusy",
    "DataDirLock",
    "Job",
    "JobRunner",
    "JobStore",
    "ServerSettings",
    "WorkerPool",
    "create_app",
    "run_server",
]

_LAZY = {"run_server": "fakescope.server._http"}


if not typing.TYPE_CHECKING:  # hidden from mypy, which would take any name for Any

    def __getattr__(name: str) -> typing.Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})

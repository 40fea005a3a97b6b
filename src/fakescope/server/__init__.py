"""The web service: ``fakescope serve`` runs a FastAPI app (page at ``/``, JSON API under
``/api``, OpenAPI docs at ``/docs``) whose uploads are scanned by worker processes from a
SQLite job queue in the data folder, so accepted jobs survive a server restart.

``run_server`` (uvicorn, with a deadline on request heads) is loaded on first use (PEP 562):
building the app does not import uvicorn.
"""

from __future__ import annotations

import typing

from fakescope._lazy import lazy_attributes as _lazy_attributes
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
    __getattr__, __dir__ = _lazy_attributes(__name__, _LAZY)

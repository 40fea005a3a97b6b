"""The web service: ``fakescope serve`` runs a FastAPI app (page at ``/``, JSON API under
``/api``, OpenAPI docs at ``/docs``) whose uploads are scanned by worker processes from a
SQLite job queue in the data folder, so accepted jobs survive a server restart."""

from fakescope.server._app import create_app
from fakescope.server._jobs import DataDirBusy, DataDirLock, Job, JobStore
from fakescope.server._settings import ServerSettings
from fakescope.server._worker import JobRunner, WorkerPool

__all__ = [
    "DataDirBusy",
    "DataDirLock",
    "Job",
    "JobRunner",
    "JobStore",
    "ServerSettings",
    "WorkerPool",
    "create_app",
]

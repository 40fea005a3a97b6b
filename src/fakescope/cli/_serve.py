"""``fakescope serve``: the web app and HTTP API on uvicorn, scanning with worker processes.

Settings: defaults < environment (``FAKESCOPE_DATA_DIR``, ``FAKESCOPE_API_TOKEN``, ...; see
:mod:`fakescope.server._settings`) < these flags. The API token is read from the environment
only, never from the command line (where other users could see it in ``ps``).

This process is the server and nothing else, so it runs with a 077 umask: whatever it (or a
library) creates in the data folder is private to the user running it.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from fakescope.cli._common import positive_float, positive_int
from fakescope.config import ScanConfig

__all__ = ["add_serve_parser", "run_serve"]


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"must be in 1..65535, got {text}")
    return value


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="run the web app and HTTP API (docs at /docs)",
        description="Run the web page and the JSON API. Uploads are scanned by worker "
        "processes from a job queue kept in the data folder. Set FAKESCOPE_API_TOKEN to "
        "require 'Authorization: Bearer <token>' on the API.",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, help="port to listen on (default 8000)")
    p.add_argument(
        "--data-dir",
        dest="data_dir",
        type=Path,
        metavar="DIR",
        help="job queue, uploads and results (default $FAKESCOPE_DATA_DIR or ./fakescope-data)",
    )
    p.add_argument("--workers", type=positive_int, help="scan worker processes (default 1)")
    p.add_argument(
        "--retention-hours",
        dest="retention_hours",
        type=positive_float,
        help="delete scans older than this (default 24)",
    )
    p.add_argument(
        "--scan-timeout",
        dest="scan_timeout_s",
        type=positive_float,
        metavar="S",
        help="seconds one scan may take before its worker is killed and the scan fails "
        "(default $FAKESCOPE_SCAN_TIMEOUT_S or 600)",
    )
    p.add_argument(
        "--max-memory-mb",
        dest="max_memory_mb",
        type=positive_float,
        metavar="M",
        help="resident memory a worker may use while scanning (models included); beyond it "
        "the worker is killed and the scan fails (default $FAKESCOPE_MAX_MEMORY_MB or no cap)",
    )
    return p


def run_serve(args: argparse.Namespace, config: ScanConfig) -> int:
    from fakescope._extras import require

    require("server", "fakescope serve")
    from fakescope.server import (
        PRIVATE_UMASK,
        DataDirBusy,
        DataDirLock,
        ServerSettings,
        create_app,
        run_server,
    )

    flags = ("host", "port", "data_dir", "workers", "retention_hours", "scan_timeout_s")
    given = {name: getattr(args, name) for name in (*flags, "max_memory_mb")}
    settings = ServerSettings.from_env(scan=config, **given)  # None: not given
    os.umask(PRIVATE_UMASK)  # this process serves only: uploads and results stay private
    probe = DataDirLock(settings.lock_path)
    try:  # the app's lifespan takes the lock for real; this only gives a clear message early
        probe.acquire()
    except DataDirBusy as exc:
        from fakescope.cli._common import UsageError

        raise UsageError(str(exc)) from None
    probe.release()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("fakescope.server").info(
        "data folder %s, %d worker(s), detector %s, synthesis detector %s, API token %s",
        settings.data_dir.resolve(),
        settings.workers,
        config.detector,
        config.synthesis_detector or "off",
        "required" if settings.api_token else "not set (open API)",
    )
    run_server(create_app(settings), settings)  # with slow-loris deadlines: see _http
    return 0

"""The web service's settings: defaults < environment variables < explicit values (CLI flags)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakescope.config import ScanConfig
from fakescope.errors import ConfigError

__all__ = ["ENV_VARS", "ServerSettings"]

_MB = 1024 * 1024

ENV_VARS = {
    "FAKESCOPE_DATA_DIR": "data_dir",
    "FAKESCOPE_API_TOKEN": "api_token",
    "FAKESCOPE_WORKERS": "workers",
    "FAKESCOPE_RETENTION_HOURS": "retention_hours",
    "FAKESCOPE_MAX_VIDEO_MB": "max_video_bytes",
    "FAKESCOPE_MAX_IMAGE_MB": "max_image_bytes",
    "FAKESCOPE_RATE_LIMIT_PER_MINUTE": "rate_limit_per_minute",
    "FAKESCOPE_MAX_UPLOADS_PER_CLIENT": "max_uploads_per_client",
    "FAKESCOPE_HEADER_TIMEOUT_S": "header_timeout_s",
    "FAKESCOPE_BODY_TIMEOUT_S": "body_timeout_s",
    "FAKESCOPE_BODY_IDLE_TIMEOUT_S": "body_idle_timeout_s",
    "FAKESCOPE_SCAN_TIMEOUT_S": "scan_timeout_s",
    "FAKESCOPE_MAX_MEMORY_MB": "max_memory_mb",
}
"""Environment variable -> setting. Sizes are given in megabytes (MiB) in the environment,
durations in seconds; ``FAKESCOPE_MAX_MEMORY_MB=0`` means no memory cap."""


@dataclass(frozen=True)
class ServerSettings:
    """Everything ``fakescope serve`` can be told.

    Files live under ``data_dir``: ``fakescope.db`` (the job queue, SQLite), ``uploads/``
    (``<id>.<ext>``), ``jobs/<id>/`` (heatmaps, thumbnails) and ``server.lock``.
    ``api_token=None`` leaves the API open; ``rate_limit_per_minute=0`` turns the upload rate
    limit off, ``max_uploads_per_client=0`` the cap on uploads in progress.
    """

    data_dir: Path = Path("fakescope-data")
    host: str = "127.0.0.1"
    port: int = 8000
    max_video_bytes: int = 250 * _MB
    max_image_bytes: int = 10 * _MB
    retention_hours: float = 24.0
    workers: int = 1
    api_token: str | None = None
    rate_limit_per_minute: int = 60
    max_uploads_per_client: int = 4
    """Uploads one client address may have in progress at once (more get a 429)."""
    header_timeout_s: float = 10.0
    """A request's line and headers must have arrived this long after its first byte (or
    after the connection opened), else the connection is closed: slow-loris protection."""
    body_timeout_s: float = 900.0
    """An upload's whole body must have arrived this long after its headers (else 408)."""
    body_idle_timeout_s: float = 60.0
    """An upload whose body stalls this long is refused (408)."""
    scan: ScanConfig = field(default_factory=ScanConfig)
    max_attempts: int = 3
    """A job whose worker died this many times while scanning it is marked failed."""
    poll_interval_s: float = 0.25
    """How often an idle worker looks for a queued job."""
    supervise_interval_s: float = 1.0
    """How often the server checks that its workers are alive."""
    cleanup_interval_s: float = 600.0
    """How often expired jobs are deleted."""
    shutdown_grace_s: float = 10.0
    """How long a worker may take to finish its current scan when the server stops."""
    scan_timeout_s: float = 600.0
    """A scan still running this long after its worker took it is stopped: the worker is
    killed (and replaced) and the job fails with a plain-words reason, like ``fakescope batch
    --timeout``. It is not tried again (it would most likely overrun again)."""
    max_memory_mb: float | None = None
    """Resident memory (MiB) a worker may use while it scans, models included; beyond it the
    worker is killed (and replaced) and the job fails, like ``fakescope batch
    --max-memory-mb``. None (or 0) means no cap. Checked every ``supervise_interval_s``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.api_token == "":
            object.__setattr__(self, "api_token", None)
        if self.max_memory_mb is not None and self.max_memory_mb == 0:
            object.__setattr__(self, "max_memory_mb", None)
        if self.max_memory_mb is not None and not self.max_memory_mb > 0:
            raise ConfigError("max_memory_mb must be > 0 (0 or None = no cap)")
        if self.max_video_bytes < 1 or self.max_image_bytes < 1:
            raise ConfigError("upload size limits must be positive")
        if not self.retention_hours > 0:
            raise ConfigError("retention_hours must be > 0")
        if self.workers < 0:
            raise ConfigError("workers must be >= 0")
        if self.rate_limit_per_minute < 0:
            raise ConfigError("rate_limit_per_minute must be >= 0 (0 = no limit)")
        if self.max_uploads_per_client < 0:
            raise ConfigError("max_uploads_per_client must be >= 0 (0 = no limit)")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be >= 1")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")
        for name in (
            "poll_interval_s",
            "supervise_interval_s",
            "cleanup_interval_s",
            "header_timeout_s",
            "body_timeout_s",
            "body_idle_timeout_s",
            "scan_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0")

    # -- where things live ---------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.data_dir / "fakescope.db"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "server.lock"

    @property
    def max_memory_bytes(self) -> int | None:
        """:attr:`max_memory_mb` in bytes (None: no cap)."""
        return None if self.max_memory_mb is None else int(self.max_memory_mb * _MB)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from ``env`` (default ``os.environ``) overridden by ``overrides`` whose
        value is not None. Bad environment values raise :class:`ConfigError`."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for var, name in ENV_VARS.items():
            text = env.get(var, "").strip()
            if not text:
                continue
            try:
                if name in ("data_dir", "api_token"):
                    values[name] = Path(text) if name == "data_dir" else text
                elif name in ("max_video_bytes", "max_image_bytes"):
                    values[name] = round(float(text) * _MB)
                elif name in ("retention_hours", "max_memory_mb") or name.endswith("_s"):
                    values[name] = float(text)
                else:
                    values[name] = int(text)
            except ValueError:
                raise ConfigError(f"{var}={text!r} is not a valid value") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

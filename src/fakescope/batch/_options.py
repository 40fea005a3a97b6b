"""How a batch runs (:class:`BatchOptions`): read by the runner and by the Ray pool, so it sits
below both."""

from __future__ import annotations

from dataclasses import dataclass

from fakescope.batch._worker import ScannerFactory
from fakescope.errors import ConfigError

__all__ = ["BatchOptions"]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs (none of these change a verdict, so none is part of an item key).

    ``timeout_s`` is the most one attempt may take (the worker is then killed and replaced);
    ``max_memory_mb`` the most resident memory a worker may use while scanning (None: no
    limit); ``retries`` how many more attempts a failed item gets, counted across runs;
    ``shard_size`` how many items each Parquet shard holds; ``ray`` a Ray address (``"auto"``,
    ``"local"`` or ``"ray://host:10001"``) to run on Ray actors instead of local processes;
    ``scanner_factory`` builds each worker's scanner (tests; picklable).
    """

    workers: int = 1
    retries: int = 1
    timeout_s: float = 600.0
    max_memory_mb: float | None = None
    shard_size: int = 100
    ray: str | None = None
    scanner_factory: ScannerFactory | None = None
    poll_s: float = 0.2

    def __post_init__(self) -> None:
        if self.workers < 1 or self.retries < 0 or self.shard_size < 1:
            raise ConfigError("workers and shard_size must be >= 1, retries >= 0")
        if not self.timeout_s > 0:
            raise ConfigError("timeout_s must be > 0")

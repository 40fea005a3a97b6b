"""The Ray backend of a batch (``--ray auto|local|ADDRESS``): the same job on Ray actors.

Each actor holds one scanner (built once, like a local worker) and reserves its share of the
cluster's CPUs, which is also its onnxruntime thread count. The driver (the ``fakescope
batch`` process) keeps the schedule, the deadlines and the only writer of the results folder,
so the output, the resume keys and the retry rules are exactly those of the local runner. The
actors are a :class:`~fakescope._supervisor.Supervisor`'s workers (:class:`RayBackend`), like
the local processes: an actor that dies (its node lost, its process killed, Ray's memory
monitor) is replaced and its item recorded ``crash`` (``memory`` when Ray reports an
out-of-memory kill); one that overruns ``--timeout`` is killed and replaced, its item recorded
``timeout``. The actors read inputs from paths their node can see (the same paths as the
driver: a shared or network file system). ``ray`` is imported only here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fakescope._supervisor import Policy, Supervisor, limit_threads
from fakescope.batch._inputs import BatchItem
from fakescope.batch._options import BatchOptions
from fakescope.batch._worker import (
    Event,
    Job,
    ScannerFactory,
    lost_events,
    scan_payload,
    scanner_identity,
)
from fakescope.config import ScanConfig
from fakescope.errors import ConfigError

__all__ = ["RayBackend", "RayPool", "RayWorker", "ScanActor", "import_ray"]


def import_ray() -> Any:
    """The ``ray`` module, or a one-line :class:`ConfigError` naming the extra."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ConfigError(
            "--ray needs Ray: python3 -m pip install 'fakescope[batch]' (or pip install ray)"
        ) from None


class ScanActor:
    """One scanner in a Ray actor process (Ray wraps this class with ``ray.remote``)."""

    def __init__(self, config: ScanConfig, factory: ScannerFactory | None) -> None:
        limit_threads(config.threads)
        if factory is None:
            from fakescope.inference import Scanner

            self.scanner: Any = Scanner(config)
        else:
            self.scanner = factory(config)

    def identity(self) -> dict[str, Any]:
        """The models behind this actor's verdicts, and its process id."""
        return {**scanner_identity(self.scanner), "pid": os.getpid()}

    def scan(self, item: BatchItem) -> dict[str, Any]:
        return scan_payload(self.scanner, item)


@dataclass
class RayWorker:
    """An actor and its task in flight: ``identity()`` until it is ready, then ``scan()``."""

    actor: Any
    ref: Any
    """The task in flight (None once its result was read)."""
    pid: int | None = None


class RayBackend:
    """Supervisor backend: :class:`ScanActor` actors of ``actor_class``. Ray tells of a dead
    actor only through its task's error, which :meth:`RayPool.poll` reports itself."""

    def __init__(self, ray: Any, actor_class: Any, config: ScanConfig, options: BatchOptions):
        self.ray = ray
        self.actor_class = actor_class
        self.config = config
        self.options = options

    def start(self, name: str) -> RayWorker:
        actor = self.actor_class.remote(self.config, self.options.scanner_factory)
        return RayWorker(actor, actor.identity.remote())

    def pid(self, worker: RayWorker) -> int | None:
        return worker.pid

    def exit_reason(self, worker: RayWorker) -> str | None:
        return None

    def kill(self, worker: RayWorker) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.ray.kill(worker.actor, no_restart=True)

    def stop(self, workers: Sequence[RayWorker], grace_s: float) -> None:
        for worker in workers:
            self.kill(worker)


class RayPool:
    """``options.workers`` :class:`ScanActor` actors on the Ray cluster at ``options.ray``."""

    def __init__(self, config: ScanConfig, options: BatchOptions) -> None:
        if options.max_memory_mb:
            raise ConfigError(
                "--max-memory-mb applies to local workers; on Ray, Ray's own memory monitor "
                "guards the actors (their items are then recorded 'memory' or 'crash')"
            )
        self.ray = import_ray()
        self.address = options.ray
        self.config = config
        self.options = options
        self._owns_ray = False
        self.workers: Supervisor[RayWorker, Job] | None = None

    def start(self) -> None:
        """Connect to (or start) Ray, then start the actors; :meth:`poll` reports ``ready``."""
        ray = self.ray
        if not ray.is_initialized():
            address = None if self.address == "local" else self.address
            ray.init(address=address, log_to_driver=False, configure_logging=False)
            self._owns_ray = True
        cpus = self.config.threads
        if cpus <= 0:  # "all cores": the cluster's CPUs shared between the actors
            total = int(ray.cluster_resources().get("CPU", 1))
            cpus = max(1, total // self.options.workers)
        self.config = dataclasses.replace(self.config, threads=cpus)
        actor_class = ray.remote(num_cpus=cpus, max_restarts=0, max_task_retries=0)(ScanActor)
        self.workers = Supervisor(
            RayBackend(ray, actor_class, self.config, self.options),
            self.options.workers,
            Policy(
                timeout_s=self.options.timeout_s,
                timeout_reason="no result within {limit:g} s (--timeout): actor killed",
            ),
            what="Ray actors",
            names=lambda index, serial: f"ray{index}.{serial}",
        )
        self.workers.start()

    def _supervisor(self) -> Supervisor[RayWorker, Job]:
        assert self.workers is not None, "start() first"
        return self.workers

    def idle(self) -> list[int]:
        return [] if self.workers is None else self.workers.idle()

    def submit(self, index: int, job: Job) -> None:
        workers = self._supervisor()
        workers.hand(index, job)
        worker = workers.slots[index].worker
        assert worker is not None
        worker.ref = worker.actor.scan.remote(job.item)

    def actor_pids(self, busy_only: bool = False) -> list[int]:
        """Process ids of the ready actors (for tests: this machine's Ray only)."""
        return [] if self.workers is None else self.workers.pids(busy_only)

    def poll(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for an actor; report ready actors, finished scans,
        lost actors (replaced) and overdue scans (actor killed and replaced)."""
        ray, workers = self.ray, self._supervisor()
        refs = {
            s.worker.ref: i
            for i, s in enumerate(workers.slots)
            if s.worker is not None and s.worker.ref is not None
        }
        pending = list(refs)
        events: list[Event] = []
        if not pending:
            time.sleep(timeout)
        elif ray.wait(pending, num_returns=1, timeout=timeout)[0]:
            done, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
            for ref in done:
                index = refs[ref]
                worker = workers.slots[index].worker
                assert worker is not None
                worker.ref = None
                try:
                    value = ray.get(ref)
                except Exception as exc:  # the actor died (or its task was killed)
                    events += lost_events([workers.lose(index, *_loss(exc))])
                    continue
                slot = workers.slots[index]
                if slot.task is None:
                    worker.pid = value.get("pid")
                    workers.mark_ready(index)
                    events.append(Event("ready", slot.name, identity=_model_identity(value)))
                else:
                    events.append(Event("done", slot.name, job=slot.task, payload=value))
                    workers.release(index)
        return events + lost_events(workers.check())

    def stop(self) -> None:
        """Kill the actors (and shut Ray down when this pool started it)."""
        if self.workers is not None:
            self.workers.stop(grace_s=0.0)
        if self._owns_ray:
            self.ray.shutdown()


def _loss(exc: BaseException) -> tuple[str, str]:
    """``(status, reason)`` of an actor lost with ``exc``."""
    name = type(exc).__name__
    status = "memory" if "OutOfMemory" in name else "crash"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return status, f"Ray actor lost ({name}{': ' + first[:300] if first else ''})"


def _model_identity(value: dict[str, Any]) -> dict[str, Any]:
    """The identity without the actor's pid (which is no part of an item key)."""
    return {k: v for k, v in value.items() if k != "pid"}

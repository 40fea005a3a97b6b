"""The Ray backend of a batch (``--ray auto|local|ADDRESS``): the same job on Ray actors.

Each actor holds one scanner (built once, like a local worker) and reserves its share of the
cluster's CPUs, which is also its onnxruntime thread count. The driver (the ``fakescope
batch`` process) keeps the schedule, the deadlines and the only writer of the results folder,
so the output, the resume keys and the retry rules are exactly those of the local runner. An
actor that dies (its node lost, its process killed, Ray's memory monitor) is replaced and its
item recorded ``crash`` (``memory`` when Ray reports an out-of-memory kill); one that overruns
``--timeout`` is killed and replaced, its item recorded ``timeout``. The actors read inputs
from paths their node can see (the same paths as the driver: a shared or network file
system). ``ray`` is imported only here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import time
from dataclasses import dataclass
from typing import Any

from fakescope.batch._inputs import BatchItem
from fakescope.batch._options import BatchOptions
from fakescope.batch._worker import Event, Job, ScannerFactory, scan_payload, scanner_identity
from fakescope.config import ScanConfig
from fakescope.errors import ConfigError, ModelError

__all__ = ["RayPool", "ScanActor", "import_ray"]


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
        if config.threads > 0:
            try:
                import cv2

                cv2.setNumThreads(config.threads)
            except Exception:  # no OpenCV thread control: nothing to limit
                pass
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
class _Slot:
    name: str = ""
    actor: Any = None
    ready_ref: Any = None
    ready: bool = False
    job: Job | None = None
    ref: Any = None
    since: float = 0.0
    pid: int | None = None
    quick_deaths: int = 0


class RayPool:
    """``options.workers`` :class:`ScanActor` actors on the Ray cluster at ``options.ray``."""

    max_quick_deaths = 3

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
        self.slots = [_Slot() for _ in range(options.workers)]
        self._spawned = 0
        self._owns_ray = False
        self._actor_class: Any = None

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
            cpus = max(1, total // len(self.slots))
        self.config = dataclasses.replace(self.config, threads=cpus)
        self._actor_class = ray.remote(num_cpus=cpus, max_restarts=0, max_task_retries=0)(ScanActor)
        for index in range(len(self.slots)):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        slot = self.slots[index]
        self._spawned += 1
        slot.name = f"ray{index}.{self._spawned}"
        slot.actor = self._actor_class.remote(self.config, self.options.scanner_factory)
        slot.ready_ref = slot.actor.identity.remote()
        slot.ready, slot.job, slot.ref, slot.since = False, None, None, time.monotonic()

    def idle(self) -> list[int]:
        return [i for i, s in enumerate(self.slots) if s.ready and s.job is None]

    def busy(self) -> int:
        return sum(1 for s in self.slots if s.job is not None)

    def submit(self, index: int, job: Job) -> None:
        slot = self.slots[index]
        slot.job, slot.since = job, time.monotonic()
        slot.ref = slot.actor.scan.remote(job.item)

    def actor_pids(self) -> list[int]:
        """Process ids of the ready actors (for tests: this machine's Ray only)."""
        return [s.pid for s in self.slots if s.ready and s.pid is not None]

    def _replace(self, index: int, status: str, reason: str, events: list[Event]) -> None:
        slot = self.slots[index]
        if slot.job is not None:
            events.append(Event("lost", slot.name, job=slot.job, status=status, reason=reason))
        slot.quick_deaths = 0 if slot.ready else slot.quick_deaths + 1
        if slot.quick_deaths >= self.max_quick_deaths:
            raise ModelError(f"Ray actors cannot start: actor {slot.name}: {reason}")
        self.ray.kill(slot.actor, no_restart=True)
        self._spawn(index)

    def _lost(self, exc: BaseException) -> tuple[str, str]:
        name = type(exc).__name__
        status = "memory" if "OutOfMemory" in name else "crash"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return status, f"Ray actor lost ({name}{': ' + first[:300] if first else ''})"

    def poll(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for an actor; report ready actors, finished scans,
        lost actors (replaced) and overdue scans (actor killed and replaced)."""
        ray = self.ray
        refs = [s.ref if s.job is not None else s.ready_ref for s in self.slots]
        pending = [r for r in refs if r is not None]
        events: list[Event] = []
        if pending:
            done, _ = ray.wait(pending, num_returns=1, timeout=timeout)
            if done:
                done, _ = ray.wait(pending, num_returns=len(pending), timeout=0)
            finished = set(done)
            for index, slot in enumerate(self.slots):
                ref = slot.ref if slot.job is not None else slot.ready_ref
                if ref is None or ref not in finished:
                    continue
                try:
                    value = ray.get(ref)
                except Exception as exc:  # the actor died (or its task was killed)
                    status, reason = self._lost(exc)
                    self._replace(index, status, reason, events)
                    continue
                if slot.job is None:
                    slot.ready, slot.ready_ref, slot.pid = True, None, value.get("pid")
                    slot.quick_deaths = 0
                    events.append(Event("ready", slot.name, identity=_model_identity(value)))
                else:
                    events.append(Event("done", slot.name, job=slot.job, payload=value))
                    slot.job, slot.ref = None, None
        else:
            time.sleep(timeout)
        now = time.monotonic()
        for index, slot in enumerate(self.slots):
            if slot.job is not None and now - slot.since > self.options.timeout_s:
                reason = f"no result within {self.options.timeout_s:g} s (--timeout): actor killed"
                self._replace(index, "timeout", reason, events)
        return events

    def stop(self) -> None:
        """Kill the actors (and shut Ray down when this pool started it)."""
        for slot in self.slots:
            if slot.actor is not None:
                with contextlib.suppress(Exception):  # already gone
                    self.ray.kill(slot.actor, no_restart=True)
                slot.actor = None
        if self._owns_ray:
            self.ray.shutdown()


def _model_identity(value: dict[str, Any]) -> dict[str, Any]:
    """The identity without the actor's pid (which is no part of an item key)."""
    return {k: v for k, v in value.items() if k != "pid"}

"""The training engine's stages and its run record, ``result.json`` in a run folder.

Stage order: ``fit`` -> ``quantize`` -> ``calibrate`` -> ``ship``
(:func:`fakescope.training.engine.train` runs fit and then each enabled later stage but ship;
:func:`fakescope.training.engine.run_stage` runs one stage on a finished run). The record::

    {"recipe": "sbi", "run_dir": ..., "outputs": {...}, "metrics": {...},     # fit's, as before
     "stages": [{"stage": "fit", "outputs": {...}, "metrics": {...}, "seconds": 1612.4},
                {"stage": "quantize", "outputs": {"model_int8": ...}, "metrics": {...},
                 "seconds": 41.0, "overrides": []}, ...]}

``stages`` lists every stage that ran, in stage order, with what it wrote and its key figures.
A stage run again replaces its entry and drops the entries of the stages after it (they used
what it made before: re-quantizing makes the calibration stale); a new fit starts a new record.
A run folder is finished (a later stage may run on it) once ``result.json`` exists: fit writes
it last.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakescope.errors import ConfigError

__all__ = [
    "LATER_STAGES",
    "RESULT",
    "STAGES",
    "RunResult",
    "finished_config",
    "has_stage",
    "read_record",
    "record_stage",
    "start_record",
]

STAGES = ("fit", "quantize", "calibrate", "ship")
"""The engine's stages, in the order they run."""
LATER_STAGES = STAGES[1:]
"""The stages that run on a finished run folder (``fakescope train --stage STAGE RUN``)."""
RESULT = "result.json"


@dataclass
class RunResult:
    """What a stage made: its files (name -> path) and its figures."""

    run_dir: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "metrics": self.metrics,
        }


def _entry(
    stage: str, result: RunResult, seconds: float, overrides: Sequence[str] | Mapping[str, Any]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"stage": stage, **result.to_json(), "seconds": round(seconds, 1)}
    del entry["run_dir"]
    if overrides:
        entry["overrides"] = (
            [f"{k}={v}" for k, v in overrides.items()]
            if isinstance(overrides, Mapping)
            else list(overrides)
        )
    return entry


def read_record(run_dir: Path) -> dict[str, Any]:
    """The run's ``result.json`` ({} when it is not there)."""
    path = run_dir / RESULT
    if not path.is_file():
        return {}
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the run record: {exc}") from exc
    return record


def _write(run_dir: Path, record: dict[str, Any]) -> None:
    path = run_dir / RESULT
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def start_record(recipe: str, result: RunResult, seconds: float) -> None:
    """A new record after fit: the fit's outputs and figures (also at the top, as records had
    them before stages), and ``stages`` with the fit alone."""
    entry = _entry("fit", result, seconds, ())
    _write(result.run_dir, {"recipe": recipe, **result.to_json(), "stages": [entry]})


def record_stage(
    stage: str,
    result: RunResult,
    seconds: float,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> dict[str, Any]:
    """Add ``stage``'s entry to the record of ``result.run_dir`` (replacing an earlier one and
    dropping the entries of later stages); returns the record."""
    if stage not in LATER_STAGES:
        raise ValueError(f"not a later stage: {stage!r}")
    record = read_record(result.run_dir)
    rank = STAGES.index(stage)
    kept = [e for e in record.get("stages", []) if STAGES.index(e["stage"]) < rank]
    record["stages"] = [*kept, _entry(stage, result, seconds, overrides)]
    _write(result.run_dir, record)
    return record


def has_stage(run_dir: Path, stage: str) -> bool:
    """Whether the run's record lists ``stage`` (it ran, and nothing before it ran again)."""
    return any(e.get("stage") == stage for e in read_record(run_dir).get("stages", []))


def finished_config(run_dir: Path, stage: str) -> Path:
    """The saved ``config.yaml`` of a finished run folder, or a :class:`ConfigError` saying
    why ``stage`` cannot run on ``run_dir``."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        older = (
            " (a face network of an older run ships with python3 -m fakescope.training.ship)"
            if stage == "ship"
            else ""
        )
        raise ConfigError(f"{run_dir}: no config.yaml, not a run folder of fakescope train{older}")
    if not (run_dir / RESULT).is_file():
        raise ConfigError(
            f"{run_dir}: the run has not finished (no {RESULT}): train first "
            f"(fakescope train {config}), then fakescope train --stage {stage} {run_dir}"
        )
    return config

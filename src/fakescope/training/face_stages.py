"""The ``sbi`` recipe's later stages on a face store run (``data.store``): quantize,
calibrate and ship (:mod:`fakescope.training.engine`).

    fakescope train configs/sbi_v4_lite0.yaml --set quantize.enabled=true calibrate.enabled=true
    fakescope train --stage quantize runs/sbi_v4      # or on a finished run, one at a time
    fakescope train --stage calibrate runs/sbi_v4
    fakescope train --stage ship runs/sbi_v4          # ship.file, ship.int8_file

**quantize** (:class:`~fakescope.training.config.QuantizeSection`): ``model_int8.onnx``, the
run's ``model.onnx`` through :func:`fakescope.training.quantize.quantize`, calibrated on
``quantize.calib_count`` aligned crops of the run's *train* split (``splits.json``) drawn by
:func:`~fakescope.training.quantize_data.calibration_indices`, the same crops as ``python3 -m
fakescope.training.quantize --store STORE --splits RUN/splits.json`` draws; and
``weights_int8.json`` beside it (uncalibrated). ``quantize.measure`` adds the float-vs-int8
comparison on the val split (:func:`~fakescope.training.quantize_report.compare`).

**calibrate** (:class:`~fakescope.training.config.FaceCalibrateSection`): fits the **crop
level** only, for ``model.onnx`` and, when the run was quantized, ``model_int8.onnx``. The
data: every crop of the store's *calib* identity groups (never trained on, never chose an
epoch), aligned as the scan aligns a face (:func:`~fakescope.training.crops.aligned_crops`:
the same 5-point similarity warp and margin) and scored by
:class:`fakescope.models.OnnxDetector` (the scan's own preprocessing); the map is fitted as
``fakescope calibrate --level crop`` fits it (:func:`fakescope.evaluation.fit_level`: the
kinds, cross-validation folds grouped by identity group or item, bootstrap), with
``fitted_on``. The calibrator goes into the run's ``weights.json`` / ``weights_int8.json``
(other levels kept) and, with its report, into ``calibration.json`` / ``calibration_int8.json``.

These crops are the store's (each a frame's largest face, up to 32 frames a video), not what
``fakescope eval RUN/calib.tsv`` finds in the same media (the scan's own face search and
frame choice), from which the shipped crop levels were fitted: expect close, not equal,
parameters.

**Not fitted here: the video level.** A video's probability maps its face track's mean raw
crop score through the ``video`` calibrator, which is chosen on never-trained c23 clips scored
by the whole scan (MODEL_CARD "Calibration levels": ``fakescope eval`` on the c23 clips of the
val and calib identity groups, then ``fakescope calibrate --level video --kind logit --kind
temperature --kind identity --folds 4 --identity-groups ... --weights
RUN/weights_int8.json``). Until then the weight config has no video level and tracks fall
back to the crop level. Levels that ``fakescope calibrate --weights`` writes into the run's
weight configs stay there when this stage runs again, and ship with them.

**ship**: ``model.onnx`` (``ship.file``) and, with ``ship.int8_file``, ``model_int8.onnx``,
each with its weight config; once the calibrate stage has run, each carries the calibration
of the run's ``weights.json`` / ``weights_int8.json`` (``ship.calibration``, a ``fakescope
calibrate`` JSON, still wins for the float network).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fakescope.errors import ConfigError
from fakescope.training.config import TrainConfig
from fakescope.training.ship import beside_json, face_weight_config, write_face_weights
from fakescope.training.stages import RunResult, has_stage

if TYPE_CHECKING:
    from fakescope.models import WeightConfig
    from fakescope.training.quantize_data import StoreSplits

__all__ = ["MODEL", "MODEL_INT8", "calibrate", "quantize", "ship"]

MODEL = "model.onnx"
MODEL_INT8 = "model_int8.onnx"
_CHUNK = 256  # crops aligned and scored at a time


def _store_splits(cfg: TrainConfig, run_dir: Path, stage: str) -> StoreSplits:
    from fakescope.training.quantize_data import load_splits

    if not cfg.data.store:
        raise ConfigError(
            f"{stage}: needs a face store run (data.store); {run_dir} trained on a face cache "
            "(quantize its network with python3 -m fakescope.training.quantize --store ...)"
        )
    splits = run_dir / "splits.json"
    if not splits.is_file():
        raise ConfigError(f"{stage}: {splits} is missing (the fit of a store run writes it)")
    return load_splits(Path(cfg.data.store), splits)


def _network(run_dir: Path, file: str) -> Path:
    path = run_dir / file
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: train first")
    return path


def _run_weight_data(cfg: TrainConfig, network: Path, int8: bool) -> dict[str, Any]:
    """The weight config of one of the run's networks, named by ``ship.name`` or the run
    folder."""
    name = cfg.ship.name or network.parent.name
    return face_weight_config(network, cfg.ship, cfg.data.input_size, cfg.data.margin, int8, name)


def _weights(cfg: TrainConfig, network: Path, int8: bool) -> WeightConfig:
    """The in-memory weight config of one of the run's networks (its path absolute)."""
    from fakescope.models import WeightConfig

    data = _run_weight_data(cfg, network, int8)
    data.update(file=str(network.resolve()), mean=tuple(data["mean"]), std=tuple(data["std"]))
    return WeightConfig(**data)


def _write_run_weights(
    cfg: TrainConfig, network: Path, int8: bool, calibration: dict[str, Any] | None
) -> Path:
    """The run's weight config of ``network`` (``weights.json`` / ``weights_int8.json``);
    ``calibration`` None keeps none."""
    data = _run_weight_data(cfg, network, int8)
    if calibration:
        data["calibration"] = calibration
    path = beside_json(network)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def quantize(cfg: TrainConfig, run_dir: Path) -> RunResult:
    """The quantize stage (module docstring)."""
    from fakescope.models import sha256_file
    from fakescope.training.crops import aligned_crops
    from fakescope.training.quantize import crop_counts
    from fakescope.training.quantize import quantize as quantize_network
    from fakescope.training.quantize_data import Normaliser, calibration_indices, val_indices
    from fakescope.training.quantize_report import compare

    section, size, margin = cfg.quantize, cfg.data.input_size, cfg.data.margin
    data = _store_splits(cfg, run_dir, "quantize")
    src, dst = _network(run_dir, MODEL), run_dir / MODEL_INT8
    normalise = Normaliser(_weights(cfg, src, int8=False))
    cidx = calibration_indices(data, section.calib_count, section.seed)
    if len(cidx) == 0:
        raise ConfigError(f"quantize: the train split of {run_dir / 'splits.json'} is empty")
    calib_inputs = normalise(aligned_crops(data.store, cidx, size, margin))
    quantize_network(src, dst, calib_inputs, section.settings())
    weights = _write_run_weights(cfg, dst, int8=True, calibration=None)
    metrics: dict[str, Any] = {
        "settings": section.settings().describe(),
        "calibration_crops": len(cidx),
        "calibration_sets": crop_counts(data, cidx),
        "bytes": {"fp32": src.stat().st_size, "int8": dst.stat().st_size},
        "sha256": sha256_file(dst),
    }
    vidx = val_indices(data, section.val_per_set)
    if section.measure and len(vidx):
        inputs = normalise(aligned_crops(data.store, vidx, size, margin))
        metrics["val"] = compare(src, dst, inputs, data.labels[vidx], data.datasets[vidx])
    return RunResult(run_dir, {"model_int8": dst, "weights_int8": weights}, metrics)


def _raw_scores(
    cfg: TrainConfig, network: Path, data: StoreSplits, idx: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """The network's raw fake probability of the store crops ``idx``, as a scan scores a
    face: the aligned crop through :class:`fakescope.models.OnnxDetector`."""
    from fakescope.models import OnnxDetector
    from fakescope.training.crops import aligned_crops

    detector = OnnxDetector(_weights(cfg, network, network.name == MODEL_INT8), cfg.run.threads)
    size, margin = cfg.data.input_size, cfg.data.margin
    parts = [
        detector.predict(aligned_crops(data.store, idx[k : k + _CHUNK], size, margin))
        for k in range(0, len(idx), _CHUNK)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, np.float64)


def calibrate(cfg: TrainConfig, run_dir: Path) -> RunResult:
    """The calibrate stage (module docstring): the crop level of the run's networks."""
    from fakescope.calibration import FITTED_ON
    from fakescope.evaluation import fit_level, fitted_on_record

    section = cfg.calibrate
    data = _store_splits(cfg, run_dir, "calibrate")
    idx = np.nonzero(data.splits == "calib")[0]
    y = data.labels[idx]
    items = [str(m) for m in data.media[idx]]
    by_identity = section.group_by == "identity"
    groups = [str(g) for g in data.store.column("group")[idx]] if by_identity else items
    counts = np.bincount(y, minlength=2)
    if min(counts) < section.folds or len(set(groups)) < section.folds:
        raise ConfigError(
            f"calibrate: the calib split needs {section.folds} crops of each class and "
            f"{section.folds} {section.group_by} groups (calibrate.folds), got "
            f"{counts.tolist()} and {len(set(groups))}"
        )
    sets = ", ".join(
        f"{name} {int((data.datasets[idx] == name).sum())}"
        for name in sorted(set(data.datasets[idx].tolist()))
    )
    networks = [_network(run_dir, MODEL)]
    if has_stage(run_dir, "quantize"):
        networks.append(_network(run_dir, MODEL_INT8))
    outputs: dict[str, Path] = {}
    metrics: dict[str, Any] = {}
    for network in networks:
        int8 = network.name == MODEL_INT8
        scores = _raw_scores(cfg, network, data, idx)
        try:
            fitted, report = fit_level(
                y, scores, groups, list(section.kinds), section.folds, items, section.bootstrap
            )
        except ValueError as exc:
            raise ConfigError(f"calibrate: {network.name}: {exc}") from None
        report["cv_grouped_by"] = "identity group" if by_identity else "item"
        text = section.fitted_on or (
            f"aligned face crops of the calib identity groups of {run_dir / 'splits.json'} "
            f"in the face store {cfg.data.store} ({sets}; never trained on), scored by "
            f"{network.name} through the scan's alignment and preprocessing"
        )
        command = f"fakescope train --stage calibrate {run_dir}"
        crop = {**fitted, FITTED_ON: fitted_on_record(report, text, section.folds, command)}
        kept = _run_calibration(network) or {}  # levels fakescope calibrate --weights added
        if "kind" in kept:  # the 0.1 layout: one calibrator, the crop level (replaced)
            kept = {}
        weights = _write_run_weights(cfg, network, int8, {**kept, "crop": crop})
        suffix = "_int8" if int8 else ""
        report_path = run_dir / f"calibration{suffix}.json"
        payload = {
            "calibration": {"crop": crop},
            "detector": str(weights),
            "report": {"crop": report},
        }
        report_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        outputs[f"weights{suffix}"] = weights
        outputs[f"calibration{suffix}"] = report_path
        cv = f"ece_{section.folds}fold_cv"
        metrics[network.name] = {
            k: report[k]
            for k in ("kind", "a", "b", "p", "samples", "items", "real", "fake", "ece_raw", cv)
            if k in report
        }
    return RunResult(run_dir, outputs, metrics)


def _run_calibration(network: Path) -> dict[str, Any] | None:
    """The calibration in the run's weight config of ``network`` (None if it describes
    another network or has none)."""
    from fakescope.models import sha256_file

    path = beside_json(network)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("sha256") != sha256_file(network):
        return None
    calibration: dict[str, Any] | None = data.get("calibration")
    return calibration


def ship(cfg: TrainConfig, run_dir: Path) -> dict[str, Path]:
    """The ship stage: ``model.onnx`` as ``cfg.ship`` says (input size and margin:
    ``data.input_size``, ``data.margin``) and, with ``ship.int8_file`` (or ``ship.beside`` on
    a quantized run), ``model_int8.onnx``; returns the weight JSON(s) written."""
    section, size, margin = cfg.ship, cfg.data.input_size, cfg.data.margin
    calibrated = has_stage(run_dir, "calibrate")
    quantized = has_stage(run_dir, "quantize")
    float_net, int8_net = run_dir / MODEL, run_dir / MODEL_INT8
    with_int8 = bool(section.int8_file) or (section.beside and quantized)
    if with_int8 and (not quantized or not int8_net.is_file()):  # before anything is written
        raise ConfigError(
            f"ship.int8_file: {run_dir} has no quantize stage: run fakescope train "
            f"--stage quantize {run_dir} first"
        )
    float_cal = _run_calibration(float_net) if calibrated and float_net.is_file() else None
    out = {"weights": write_face_weights(float_net, section, size, margin, calibration=float_cal)}
    if with_int8:
        int8_cal = _run_calibration(int8_net) if calibrated else None
        out["weights_int8"] = write_face_weights(
            int8_net, section, size, margin, int8=True, calibration=int8_cal
        )
    return out

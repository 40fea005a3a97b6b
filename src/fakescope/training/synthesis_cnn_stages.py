"""The ``synthesis-cnn`` recipe's later stages (:mod:`fakescope.training.engine`): quantize,
calibrate and ship a run folder of :mod:`fakescope.training.synthesis_cnn`.

    fakescope train configs/synth_cnn_v3.yaml      # fit, quantize, calibrate (enabled there)
    fakescope train --stage quantize runs/synth_cnn_v3      # or one at a time, on a finished run
    fakescope train --stage calibrate runs/synth_cnn_v3
    fakescope train --stage ship runs/synth_cnn_v3          # ship.stem, ship.int8_stem

**quantize**: ``model_int8.onnx`` and ``weights_int8.json`` (the run's ``weights.json``
pointing at it) by :func:`fakescope.training.quantize.quantize_synth`, calibrated on
``quantize.calib_count`` patches of the *train* split of every set of the run (each set's
``sets/<set>/splits.tsv``, the sets in config order: what ``python3 -m
fakescope.training.quantize --models ... --synth-data ... --synth-splits ...`` reads);
``quantize.measure`` compares both detectors on the run's ``test.tsv``
(:func:`~fakescope.training.quantize_report.synth_compare`).

**calibrate**: :func:`recalibrate` (Platt, class-balanced) of the run's last network, the int8
one once quantized (its raw scores moved), else the float one (fit calibrated it the same way,
on the calib images of the trained families), on the *calib* split of every set of the run:
the same fit as ``python3 -m fakescope.training.synthesis_cnn recalibrate WEIGHTS ROOT
SET=FAMILY ...``. The calibrator gets ``fitted_on``; the report goes to ``calibration.json``
(``calibration_int8.json``).

**ship**: the float network as ``ship.stem`` (or ``ship.beside``), and with ``ship.int8_stem``
the int8 one, each with its weight config.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.errors import ConfigError
from fakescope.evaluation import CALIBRATION_MAPS, roc_auc
from fakescope.synthesis import CnnSynthesisDetector, CnnSynthesisWeights
from fakescope.training.config import CalibrateSection, QuantizeSection
from fakescope.training.ship import asset_target, copy_asset
from fakescope.training.stages import RunResult, has_stage
from fakescope.training.synthesis_cnn_data import load_gen_set, read_image

__all__ = ["calibrate_run", "quantize_run", "recalibrate", "ship_run"]

WEIGHTS, WEIGHTS_INT8 = "weights.json", "weights_int8.json"


def recalibrate(
    weights_path: Path,
    data: Path,
    seed: int = 0,
    gen: Sequence[tuple[Path, str]] = (),
    fitted_on: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Refit the Platt calibrator of a shipped weight file (in place) on the calib split of
    ``data`` (``split_by_image`` with ``seed``, as every run splits it) and of each ``gen``
    set (``(folder, family)``, split by prompt group: give the sets the run trained on), e.g.
    after its network was quantized: the raw scores moved, so the old calibrator no longer
    holds. ``fitted_on`` (given) is stored with the calibrator, with the item counts added."""
    from fakescope.calibration import FITTED_ON, LogitCalibrator

    sets = [load_gen_set(data, "gan", "image", seed)]
    sets += [load_gen_set(root, family, "prompt", seed) for root, family in gen]
    calib = [i for g in sets for i in g.of("calib")]
    detector = CnnSynthesisDetector.from_json(weights_path)
    raw = np.asarray(detector.score([read_image(i.path) for i in calib]), dtype=np.float64)
    labels = np.asarray([i.label for i in calib])
    fitted = LogitCalibrator().fit(1 / (1 + np.exp(-raw)), labels).to_dict()
    if fitted_on is not None:
        counts = {"items": len(calib), "real": int((labels == 0).sum())}
        fitted[FITTED_ON] = {**fitted_on, **counts, "fake": int((labels == 1).sum())}
    data_ = json.loads(weights_path.read_text())
    CnnSynthesisWeights.from_dict({**data_, "calibration": fitted}).save(weights_path)
    return {"calib_items": len(calib), "calib_auc": roc_auc(labels, raw), "calibration": fitted}


def _file(run_dir: Path, name: str, stage: str) -> Path:
    path = run_dir / name
    if not path.is_file():
        raise ConfigError(f"{stage}: {path} does not exist: train first")
    return path


def quantize_run(run_dir: Path, section: QuantizeSection, roots: Sequence[Path]) -> RunResult:
    """The quantize stage (module docstring) of the run in ``run_dir`` whose generated-image
    sets are ``roots`` (``data.root`` first)."""
    from fakescope.models import sha256_file
    from fakescope.training.quantize import quantize_synth
    from fakescope.training.quantize_data import synth_split, synth_test_items
    from fakescope.training.quantize_report import synth_compare

    src_json = _file(run_dir, WEIGHTS, "quantize")
    splits = [_file(run_dir, f"sets/{root.name}/splits.tsv", "quantize") for root in roots]
    train = [
        x for root, s in zip(roots, splits, strict=True) for x in synth_split(root, s, "train")
    ]
    dst, dst_json = run_dir / "model_int8.onnx", run_dir / WEIGHTS_INT8
    summary = quantize_synth(
        src_json, dst, dst_json, train, section.calib_count, section.seed, section.settings()
    )
    fp32 = run_dir / json.loads(src_json.read_text())["file"]
    metrics: dict[str, Any] = {
        "settings": section.settings().describe(),
        "calibration_patches": summary,
        "train_images": len(train),
        "bytes": {"fp32": fp32.stat().st_size, "int8": dst.stat().st_size},
        "sha256": sha256_file(dst),
    }
    if section.measure:
        items = synth_test_items(_file(run_dir, "test.tsv", "quantize"), roots[0])
        metrics["test"] = synth_compare(src_json, dst_json, items)
    return RunResult(run_dir, {"model_int8": dst, "weights_int8": dst_json}, metrics)


def calibrate_run(
    run_dir: Path,
    section: CalibrateSection,
    root: Path,
    gen: Sequence[tuple[Path, str]],
    seed: int,
) -> RunResult:
    """The calibrate stage (module docstring): ``root`` is ``data.root`` (split by image with
    ``seed``), ``gen`` the other sets (folder, family)."""
    int8 = has_stage(run_dir, "quantize")
    weights = _file(run_dir, WEIGHTS_INT8 if int8 else WEIGHTS, "calibrate")
    names = ", ".join(p.name for p in (root, *(g for g, _ in gen)))
    text = section.fitted_on or (
        f"the calib split of {names} (the run's split, seed {seed}; never trained on), scored "
        f"by {json.loads(weights.read_text())['file']}"
    )
    seen = {
        "data": text,
        "map": f"{CALIBRATION_MAPS['logit']} over sigmoid(raw), classes weighted equally",
        "command": f"fakescope train --stage calibrate {run_dir}",
    }
    result = recalibrate(weights, root, seed, gen, fitted_on=seen)
    data = json.loads(weights.read_text())
    report = run_dir / ("calibration_int8.json" if int8 else "calibration.json")
    payload = {"calibration": data["calibration"], "detector": str(weights), "report": result}
    report.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    metrics = {
        "network": data["file"],
        "calib_items": result["calib_items"],
        "calib_auc": result["calib_auc"],
        "a": data["calibration"]["a"],
        "b": data["calibration"]["b"],
    }
    suffix = "_int8" if int8 else ""
    return RunResult(
        run_dir, {f"weights{suffix}": weights, f"calibration{suffix}": report}, metrics
    )


def _ship_one(run_dir: Path, name: str, stem: str, beside: bool, dest: str | None) -> Path:
    """One of the run's weight configs (``name``) and its network: checked in place
    (``beside``), or copied into ``dest`` as ``<stem>.onnx`` / ``<stem>.json``."""
    from fakescope.models import sha256_file

    try:
        data = json.loads((run_dir / name).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{run_dir}: no readable {name} ({exc}): train first") from None
    weights = CnnSynthesisWeights.from_dict(data)
    if beside:
        if sha256_file(run_dir / weights.file) != weights.sha256:
            raise ConfigError(f"{run_dir}: {name} does not describe {weights.file}")
        return run_dir / name
    target = copy_asset(run_dir / weights.file, f"{stem}.onnx", dest)
    if sha256_file(target) != weights.sha256:
        raise ConfigError(f"{run_dir}: {name} does not describe {weights.file}")
    shipped = CnnSynthesisWeights.from_dict({**data, "file": target.name})
    return shipped.save(asset_target(f"{stem}.json", dest))


def ship_run(
    run_dir: Path, stem: str, int8_stem: str, beside: bool, dest: str | None
) -> dict[str, Path]:
    """The ship stage: ``weights.json``'s network as ``stem`` (or checked ``beside``) and,
    with ``int8_stem`` (or ``beside`` on a quantized run), ``weights_int8.json``'s; returns
    the weight configs."""
    if not stem and not beside:
        raise ConfigError("ship: nothing to ship; give ship.stem (or ship.beside=true)")
    quantized = has_stage(run_dir, "quantize")
    if int8_stem and not quantized:  # before anything is written
        raise ConfigError(
            f"ship.int8_stem: {run_dir} has no quantize stage: run fakescope train --stage "
            f"quantize {run_dir} first"
        )
    out = {"weights": _ship_one(run_dir, WEIGHTS, stem, beside, dest)}
    if int8_stem or (beside and quantized):
        out["weights_int8"] = _ship_one(run_dir, WEIGHTS_INT8, int8_stem, beside, dest)
    return out

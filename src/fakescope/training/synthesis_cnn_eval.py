"""Calibration and measurement of a synthesis CNN run (:mod:`fakescope.training.synthesis_cnn`):
the Platt calibrator fitted on the calib split, then ``report.json``'s figures on the test split
(AUC with bootstrap intervals, after JPEG-50 and a 75 % down-scale, the family named) and the
false alarms on real sets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.errors import ConfigError
from fakescope.evaluation import bootstrap_ci, expected_calibration_error, roc_auc
from fakescope.synthesis import CnnSynthesisDetector, CnnSynthesisWeights
from fakescope.training.config import RunConfig
from fakescope.training.degrade import jpeg_roundtrip
from fakescope.training.engine import log
from fakescope.training.synthesis_cnn_data import (
    GenSet,
    Item,
    read_image,
    read_video_frames,
    real_videos,
)

__all__ = ["EvalSection", "Scores", "evaluate", "head_items"]

_U8 = npt.NDArray[np.uint8]
_F64 = npt.NDArray[np.float64]


@dataclass
class EvalSection:
    """Reals measured for false alarms only (the ``eval`` section of the recipe's config)."""

    fp_count: int = 200  # held-out reals of each data.reals set
    fp_videos: tuple[str, ...] = ()  # video sets whose real clips are measured
    fp_frames: int = 4  # frames of each fp_videos clip

    def validate(self) -> None:
        if self.fp_count < 0 or self.fp_frames < 1:
            raise ConfigError("eval: fp_count must be >= 0, fp_frames >= 1")


def head_items(items: list[Item], limit: int | None) -> list[Item]:
    """The first ``limit`` items of each label (all with None)."""
    if limit is None:
        return items
    return [i for i in items if i.label == 0][:limit] + [i for i in items if i.label == 1][:limit]


class Scores:
    """Raw and family scores of images under an evaluation op (``clean``, ``jpeg50`` or
    ``resize75``, applied to both classes alike), each image scored once per op."""

    def __init__(self, detector: CnnSynthesisDetector) -> None:
        self.detector = detector
        self._cache: dict[tuple[str, str], tuple[float, float | None]] = {}

    def __call__(self, items: Sequence[Item], op: str = "clean") -> tuple[_F64, _F64 | None]:
        todo = [i for i in items if (i.path, op) not in self._cache]
        if todo:
            raw, fam = self.detector.score_with_family(
                self._transform([read_image(i.path) for i in todo], op)
            )
            for k, item in enumerate(todo):
                self._cache[(item.path, op)] = (
                    float(raw[k]),
                    None if fam is None else float(fam[k]),
                )
        got = [self._cache[(i.path, op)] for i in items]
        raws = np.asarray([r for r, _ in got], dtype=np.float64)
        fams = [f for _, f in got]
        if not got or any(f is None for f in fams):
            return raws, None
        return raws, np.asarray(fams, dtype=np.float64)

    def images(self, imgs: list[_U8], op: str = "clean") -> tuple[_F64, _F64 | None]:
        """Scores of decoded images (not cached); those below the detector's ``min_side``
        after ``op`` are left out."""
        kept = [im for im in self._transform(imgs, op) if min(im.shape[:2]) >= self.min_side]
        return self.detector.score_with_family(kept)

    @property
    def min_side(self) -> int:
        return int(self.detector.min_side)

    @staticmethod
    def _transform(imgs: list[_U8], op: str) -> list[_U8]:
        if op == "jpeg50":
            imgs = [jpeg_roundtrip(im, 50) for im in imgs]
        elif op == "resize75":
            imgs = [
                np.asarray(cv2.resize(im, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA))
                for im in imgs
            ]
        elif op != "clean":
            raise ValueError(f"unknown op {op!r}")
        return imgs


def _false_alarms(
    detector: CnnSynthesisDetector, raw: _F64, threshold: float, band: float
) -> dict[str, Any]:
    p = detector.probability(raw) if raw.size else np.zeros(0)
    return {
        "images": int(raw.size),
        "mean_probability": round(float(p.mean()), 4) if raw.size else None,
        "max_probability": round(float(p.max()), 4) if raw.size else None,
        "called_generated": round(float(np.mean(p >= threshold)), 4) if raw.size else None,
        "labelled_generated": round(float(np.mean(p >= threshold + band)), 4) if raw.size else None,
    }


def _family_figures(fam: _F64 | None, family: str) -> dict[str, Any]:
    """How well the family output names ``family`` on one set's generated test images."""
    if fam is None or fam.size == 0:
        return {"family_accuracy": None}
    from fakescope.types import FAMILY_BAND

    p = CnnSynthesisDetector.family_probability(fam)
    target = family == "diffusion"
    named = (p <= FAMILY_BAND[0]) | (p >= FAMILY_BAND[1])
    right = (p >= 0.5) == target
    return {
        "family_accuracy": round(float(np.mean(right)), 4),
        "family_unknown_share": round(float(np.mean(~named)), 4),
        "family_named_accuracy": round(float(np.mean(right[named])), 4) if named.any() else None,
        "mean_p_diffusion": round(float(p.mean()), 4),
    }


def evaluate(
    sets: list[GenSet],
    trained: list[GenSet],
    weights: CnnSynthesisWeights,
    onnx_path: Path,
    held_out_reals: dict[str, list[str]],
    cfg: EvalSection,
    out: Path,
    limit: int,
    run: RunConfig,
) -> tuple[CnnSynthesisWeights, dict[str, Any]]:
    """Calibrate on the calib split (``out/weights.json``), then measure the test split, the
    held-out reals and the real frames of ``cfg.fp_videos``; at most ``limit`` items (0: all)
    of each label per split and set; ``run``'s seed (bootstrap) and threads."""
    from fakescope.calibration import LogitCalibrator
    from fakescope.config import ScanConfig
    from fakescope.decision import bayes_threshold

    lim, seed, threads = limit or None, run.seed, run.threads
    trained_names = {g.name for g in trained}
    detector = CnnSynthesisDetector(weights, onnx_path, threads=threads)
    scores = Scores(detector)
    calib = [i for g in sets for i in head_items(g.of("calib", 0), lim)]
    calib += [i for g in trained for i in head_items(g.of("calib", 1), lim)]
    yc = [i.label for i in calib]
    sc, _ = scores(calib)
    calibration_note = "Platt (class-balanced) on the calib split"
    try:
        fitted = LogitCalibrator().fit(1 / (1 + np.exp(-sc)), np.asarray(yc))
        weights = CnnSynthesisWeights(**{**weights.__dict__, "calibration": fitted.to_dict()})
    except ValueError as exc:  # e.g. an untrained network ranks the calib split backwards
        calibration_note = f"none: {exc}"
        log(f"not calibrated: {exc}")
    weights.save(out / "weights.json")
    detector = CnnSynthesisDetector(weights, onnx_path, threads=threads)
    scores.detector = detector  # same network: the cached raw scores stay valid
    scan = ScanConfig()
    calibrated = weights.calibration is not None
    thr = (
        bayes_threshold(scan.cost_miss, scan.cost_false_alarm, scan.prior_fake)
        if calibrated
        else weights.threshold
    )
    band = scan.uncertain_band
    pc = detector.probability(sc)

    reals = [i for g in sets for i in head_items(g.of("test", 0), lim)]
    fakes = {g.name: head_items(g.of("test", 1), lim) for g in sets}
    pooled = reals + [i for g in sets for i in fakes[g.name]]
    yt = [i.label for i in pooled]
    st, _ = scores(pooled)
    pt = detector.probability(st)
    # AUCs with 95 % percentile bootstrap intervals (resampling images, or whole groups below)
    test_ci = bootstrap_ci(roc_auc, yt, st, n_boot=2000, seed=seed)
    report: dict[str, Any] = {
        "train_families": sorted({g.family for g in trained}),
        "family_output": detector.has_family,
        "sets": {
            g.name: {
                "family": g.family,
                "split": g.rule,
                "trained_on": g.name in trained_names,
                "splits": g.counts(),
            }
            for g in sets
        },
        "threshold": {
            "probability": round(thr, 4),
            "uncertain_band": band,
            "rule": "cost rule of the default ScanConfig"
            if calibrated
            else "the weight's own threshold (uncalibrated)",
        },
        "calib_n": {"generated": int(sum(yc)), "real": len(yc) - int(sum(yc))},
        "calib_auc": round(roc_auc(yc, sc), 4),
        "calibration": calibration_note,
        "calib_ece": round(expected_calibration_error(yc, pc, n_bins=10), 4),
        # the calibrator is fitted class-balanced: its probabilities hold under equal priors
        "calib_ece_balanced": round(expected_calibration_error(yc, pc, 10, balanced=True), 4),
        # every set's generated test images against the real test photos, pooled
        "test_n": {"generated": int(sum(yt)), "real": len(yt) - int(sum(yt))},
        "test_auc": round(test_ci[0], 4),
        "test_auc_ci95": [round(v, 4) for v in test_ci[1:]],
        "test_auc_jpeg50": round(roc_auc(yt, scores(pooled, "jpeg50")[0]), 4),
        "test_auc_resize75": round(roc_auc(yt, scores(pooled, "resize75")[0]), 4),
        "test_ece": round(expected_calibration_error(yt, pt, n_bins=10), 4),
        "test_accuracy": round(float(np.mean((pt >= thr) == np.asarray(yt))), 4),
    }
    per_set: dict[str, Any] = {}
    right, total = 0.0, 0
    for g in sets:
        own = fakes[g.name]
        if not own or not reals:
            per_set[g.name] = {"skipped": "no generated or no real test images"}
            continue
        items = reals + own
        y = [i.label for i in items]
        groups = [i.path for i in reals] + [g.group(i) for i in own]
        raw, _ = scores(items)
        raw_j, _ = scores(items, "jpeg50")
        _, fam = scores(own)
        p_own = detector.probability(scores(own)[0])
        ci = bootstrap_ci(roc_auc, y, raw, n_boot=2000, seed=seed, groups=groups)
        ci_j = bootstrap_ci(roc_auc, y, raw_j, n_boot=2000, seed=seed, groups=groups)
        block = {
            "family": g.family,
            "trained_on": g.name in trained_names,
            "n_generated": len(own),
            "n_real": len(reals),
            "auc": round(ci[0], 4),
            "auc_ci95": [round(v, 4) for v in ci[1:]],
            "auc_jpeg50": round(ci_j[0], 4),
            "auc_jpeg50_ci95": [round(v, 4) for v in ci_j[1:]],
            "auc_resize75": round(roc_auc(y, scores(items, "resize75")[0]), 4),
            "called_generated": round(float(np.mean(p_own >= thr)), 4),
            **_family_figures(fam, g.family),
        }
        if block["family_accuracy"] is not None:
            right += block["family_accuracy"] * len(own)
            total += len(own)
        per_set[g.name] = block
    report["test_sets"] = per_set
    report["family_accuracy"] = round(right / total, 4) if total else None

    real_sets: dict[str, Any] = {}
    real_sets[f"{sets[0].name} test reals"] = _false_alarms(detector, scores(reals)[0], thr, band)
    for name, paths in held_out_reals.items():
        raw_h = scores.images([read_image(p) for p in paths])[0]
        real_sets[f"{name} held-out reals"] = _false_alarms(detector, raw_h, thr, band)
    for root in map(Path, cfg.fp_videos):
        frames = [f for v in real_videos(root)[:lim] for f in read_video_frames(v, cfg.fp_frames)]
        real_sets[f"{root.name} real frames"] = _false_alarms(
            detector, scores.images(frames)[0], thr, band
        )
    report["real_sets"] = real_sets
    return weights, report

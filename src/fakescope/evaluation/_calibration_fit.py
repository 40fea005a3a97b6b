"""Fitting one calibration level with out-of-fold figures: what ``fakescope calibrate`` and
a training run's calibrate stage (:mod:`fakescope.training.face_stages`) both do.

:func:`fit_level` fits a calibrator (:mod:`fakescope.calibration`) on raw scores, reports its
expected calibration error and log loss before and after in k-fold cross-validation grouped by
item or identity group (several kinds: the lowest class-balanced cross-validated log loss
wins), with optional bootstrap intervals; :func:`fitted_on_record` is the ``fitted_on`` object
stored with the calibrator (what data, how many items of each class, the map, the command).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.calibration import make_calibrator
from fakescope.evaluation._metrics import expected_calibration_error, log_loss

__all__ = ["CALIBRATION_MAPS", "fit_level", "fitted_on_record"]

CALIBRATION_MAPS = {
    "logit": "logit (Platt): p = sigmoid(a logit(raw) + b)",
    "temperature": "temperature: p = sigmoid(a logit(raw)), a = 1/T, b = 0",
    "identity": "identity: p = raw (a = 1, b = 0; no fitted map beat it out of fold)",
    "isotonic": "isotonic",
    "constant": "constant: p = the same probability for every score (no fitted map beat it)",
}
"""Each kind's map in words (a calibrator's ``fitted_on.map``)."""


def _balanced_log_loss(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
    """The mean of the two classes' mean log losses (equal class priors)."""
    return float(np.mean([log_loss(y[y == c], p[y == c]) for c in (0, 1)]))


_FREE = {"logit": ("a", "b"), "temperature": ("a",)}
"""The fitted parameters of each kind that has any (identity fixes a = 1, b = 0)."""


def _params(fitted: dict[str, Any]) -> dict[str, float]:
    return {k: float(fitted[k]) for k in ("a", "b", "p") if k in fitted}


def _interval(values: list[float]) -> list[float]:
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def _bootstrap(
    y: npt.NDArray[np.int64],
    s: npt.NDArray[np.float64],
    cv: npt.NDArray[np.float64],
    items: list[str],
    kinds: list[str],
    n: int,
) -> dict[str, Any]:
    """95% percentile intervals over ``n`` resamples of the items (with replacement, within
    each class; an item keeps all its rows): the parameters of each kind's map refitted on
    each resample, the ECE of the raw and of the cross-validated probabilities ``cv``, and
    ``ece_if_calibrated``: the ECE that ``cv`` would show on a sample this size if it were
    exactly calibrated (labels drawn from it), i.e. the sampling noise of the ECE itself."""
    rng = np.random.default_rng(0)
    rows_of: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        rows_of.setdefault(item, []).append(i)
    by_class = [[m for m, r in rows_of.items() if y[r[0]] == c] for c in (0, 1)]
    params: dict[str, dict[str, list[float]]] = {k: {} for k in kinds if k in _FREE}
    ece: dict[str, list[float]] = {"ece_raw": [], "ece_cv": [], "ece_if_calibrated": []}
    for _ in range(n):
        picked = [m for group in by_class for m in rng.choice(group, size=len(group))]
        idx = np.array([r for m in picked for r in rows_of[m]], dtype=np.int64)
        ece["ece_raw"].append(expected_calibration_error(y[idx], s[idx]))
        ece["ece_cv"].append(expected_calibration_error(y[idx], cv[idx]))
        drawn = (rng.random(len(idx)) < cv[idx]).astype(np.int64)
        ece["ece_if_calibrated"].append(expected_calibration_error(drawn, cv[idx]))
        for kind, found in params.items():
            try:
                fitted = make_calibrator(kind).fit(s[idx], y[idx]).to_dict()
            except ValueError:  # a resample where the scores do not rise: no parameters
                continue
            for key in _FREE[kind]:
                found.setdefault(key, []).append(float(fitted[key]))
    out: dict[str, Any] = {"resamples": n}
    out.update({key: _interval(values) for key, values in ece.items()})
    out["parameters"] = {
        kind: {key: _interval(values) for key, values in found.items()}
        for kind, found in params.items()
    }
    return out


def fit_level(
    y: npt.NDArray[np.int64],
    s: npt.NDArray[np.float64],
    groups: list[str],
    kind: str | list[str],
    folds: int,
    items: list[str] | None = None,
    bootstrap: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit one calibrator on raw scores ``s`` with labels ``y``; returns its ``to_dict`` and a
    report (items, ECE and log loss raw and ``folds``-fold cross-validated, grouped by
    ``groups``). With several kinds, the one with the lowest class-balanced cross-validated
    log loss is fitted (each candidate's parameters and figures are in the report).
    ``items`` (default ``groups``) names each row's item, for the counts and the
    ``bootstrap`` (see :func:`_bootstrap`)."""
    from sklearn.model_selection import StratifiedGroupKFold

    kinds = [kind] if isinstance(kind, str) else list(dict.fromkeys(kind))
    items = groups if items is None else items
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=0)
    splits = list(splitter.split(s, y, groups))
    cv_of: dict[str, npt.NDArray[np.float64]] = {}
    candidates: dict[str, dict[str, float]] = {}
    refused: dict[str, str] = {}
    for k in kinds:
        cv = np.zeros_like(s)
        try:
            full = make_calibrator(k).fit(s, y).to_dict()
            for train, test in splits:
                cv[test] = make_calibrator(k).fit(s[train], y[train]).predict_proba(s[test])[:, 1]
        except ValueError as exc:  # e.g. a fitted slope <= 0: this map would invert the detector
            if len(kinds) == 1:
                raise
            refused[k] = str(exc)
            continue
        cv_of[k] = cv
        candidates[k] = {
            **_params(full),
            f"ece_{folds}fold_cv": expected_calibration_error(y, cv),
            f"log_loss_{folds}fold_cv": log_loss(y, cv),
            f"balanced_log_loss_{folds}fold_cv": _balanced_log_loss(y, cv),
        }
    if not candidates:
        raise ValueError("; ".join(f"{k}: {why}" for k, why in refused.items()))
    kinds = list(candidates)
    best = min(kinds, key=lambda k: candidates[k][f"balanced_log_loss_{folds}fold_cv"])
    cv = cv_of[best]
    fitted = make_calibrator(best).fit(s, y)
    report: dict[str, Any] = {
        "samples": len(y),
        "items": len(set(items)),
        "real": len({m for m, label in zip(items, y, strict=True) if label == 0}),
        "fake": len({m for m, label in zip(items, y, strict=True) if label == 1}),
        "cv_groups": len(set(groups)),
        "kind": best,
        **_params(fitted.to_dict()),
        "ece_raw": expected_calibration_error(y, s),
        f"ece_{folds}fold_cv": candidates[best][f"ece_{folds}fold_cv"],
        "log_loss_raw": log_loss(y, s),
        f"log_loss_{folds}fold_cv": candidates[best][f"log_loss_{folds}fold_cv"],
        "balanced_log_loss_raw": _balanced_log_loss(y, s),
        f"balanced_log_loss_{folds}fold_cv": candidates[best][f"balanced_log_loss_{folds}fold_cv"],
    }
    if len(candidates) + len(refused) > 1:
        report["candidates"] = candidates
    if refused:
        report["refused"] = refused
    if bootstrap > 0:
        report["bootstrap"] = _bootstrap(y, s, cv, items, kinds, bootstrap)
    return fitted.to_dict(), report


def fitted_on_record(
    report: dict[str, Any],
    data: str,
    folds: int,
    command: str,
    videos: int | None = None,
) -> dict[str, Any]:
    """The ``fitted_on`` object of a calibrator :func:`fit_level` fitted (``report`` its
    report, with ``cv_grouped_by``): ``data`` (what the scores are), ``videos`` (video level),
    item and sample counts per class, the map, how it was chosen among several kinds, and the
    ``command`` that reproduces the fit."""
    seen: dict[str, Any] = {"data": data}
    if videos is not None:
        seen["videos"] = videos
    seen.update(
        items=report["items"],
        real=report["real"],
        fake=report["fake"],
        samples=report["samples"],
        map=CALIBRATION_MAPS[report["kind"]],
    )
    if "candidates" in report:
        seen["chosen_by"] = (
            f"lowest class-balanced {folds}-fold cross-validated log loss (folds "
            f"grouped by {report['cv_grouped_by']}) among {', '.join(report['candidates'])}"
        )
        if "refused" in report:
            seen["chosen_by"] += (
                f"; refused: {', '.join(report['refused'])} (fitted slope <= 0: the map "
                "would invert the detector)"
            )
    seen["command"] = command
    return seen

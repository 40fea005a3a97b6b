"""Train the hand-crafted cue SVM (:mod:`fakescope.cues`) on the video tracks of a face store.
The ``cues`` recipe of the training engine (:mod:`fakescope.training.engine`):

    fakescope train configs/cues_v1.yaml [--set data.datasets=[ffpp_c23_videos] svm.folds=5]
    fakescope train --ship runs/cues_v1b    # ship.file: cues_svm_v1.json (the config's)

Tracks: the store's rows of the given datasets grouped by ``media_id`` in frame order (one
track per video; tracks under ``data.min_frames`` crops are dropped and counted). Frame times
are ``frame / fps`` with the fps read from the media file (``<data.data_root>/<dataset>``
through :func:`fakescope.data.load_dataset` and :func:`fakescope.io.open_media`), else
``data.fps``.
:func:`fakescope.cues.track_cues` gives each track's cues; the table is cached as
``<run.out>/features_<key>.npz`` (``allow_pickle=False``), keyed by the store's ``index.json``,
the datasets, the cue version and the fps settings.

Evaluation is identity-held-out: :class:`~sklearn.model_selection.StratifiedGroupKFold` over
the store's ``group`` column (a fake shares the group of every source identity it uses, so no
identity is on both sides). Inside each outer training fold a grid over ``C`` and ``gamma``
(standardised features, RBF SVM, balanced class weights) is searched with an inner grouped CV
by ROC AUC; the outer fold's held-out tracks are scored once. Reported: per-fold AUCs and the
pooled out-of-fold video AUC with an identity-group bootstrap interval, per-method AUCs, and
the ECE of cross-fitted Platt probabilities (each fold calibrated on the other folds' scores).

The final model: the same grid search on all tracks picks ``C``/``gamma``; the out-of-fold
decision values of that setting (same outer folds) fit Platt's sigmoid; the SVM is refitted
on all tracks and written as ``cues_svm.json`` (:class:`fakescope.cues.CueModel`, plain JSON)
with the real-class 10th/50th/90th percentiles of every cue. Also ``report.json`` (all of the
above, single-feature AUCs) and ``features.csv`` (one row per track with its out-of-fold
score). scikit-learn is imported here only; the scan applies the JSON with numpy.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.cues import (
    CUES_VERSION,
    FEATURES,
    SHIPPED_ASSET,
    CueModel,
    FeatureReference,
)
from fakescope.errors import ConfigError
from fakescope.evaluation import MetricSummary, bootstrap_ci, roc_auc, roc_auc_or_none
from fakescope.training.config import RunConfig
from fakescope.training.cue_tracks import Tracks, load_tracks
from fakescope.training.engine import RunResult, log
from fakescope.training.ship import check_asset_name, copy_asset
from fakescope.training.store import FaceStore

__all__ = [
    "CONFIG",
    "C_GRID",
    "GAMMA_GRID",
    "CuesConfig",
    "CuesShip",
    "fit",
    "fit_platt",
    "model_from_sklearn",
    "real_reference",
    "ship",
]

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
GAMMA_GRID = (0.003, 0.01, 0.03, 0.1, 0.3)
"""RBF widths on standardised features (sklearn's ``gamma='scale'`` is 1/13 ~ 0.077 here)."""

_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]


@dataclass
class CuesData:
    """The face store's video tracks and their frame times."""

    store: str = "cache/faces_v2"  # face store folder
    datasets: tuple[str, ...] = ("ffpp_c23_videos",)
    data_root: str = "../shared/data"  # folder holding <dataset>/ to read each video's fps from
    fps: float = 25.0  # fps when the media is absent
    min_frames: int = 8  # shorter tracks are dropped

    def validate(self) -> None:
        if not self.datasets or self.fps <= 0 or self.min_frames < 1:
            raise ConfigError("data: datasets must name a set, fps be > 0, min_frames >= 1")


@dataclass
class CuesSVM:
    """The nested identity-held-out CV, the grid and the model's name."""

    folds: int = 5  # outer identity-held-out folds
    inner_folds: int = 3  # grid-search folds
    c_grid: tuple[float, ...] = C_GRID
    gamma_grid: tuple[float, ...] = GAMMA_GRID
    n_boot: int = 1000  # bootstrap resamples
    name: str = "cues-svm-v1"  # model name in the JSON

    def validate(self) -> None:
        if self.folds < 2 or self.inner_folds < 2 or self.n_boot < 1:
            raise ConfigError("svm: folds and inner_folds must be >= 2, n_boot >= 1")
        if not self.c_grid or not self.gamma_grid:
            raise ConfigError("svm: c_grid and gamma_grid must not be empty")


@dataclass
class CuesRun(RunConfig):
    out: str = "runs/cues_v1"
    threads: int = 1  # OpenCV threads while the cues are measured


@dataclass
class CuesShip:
    """``fakescope train --ship RUN``: the run's ``cues_svm.json`` into the package as ``file``
    (the shipped one is ``cues_svm_v1.json``; its sha256 then goes into ``ASSET_SHA256``).
    Nothing ships unless asked."""

    file: str = ""  # asset file name, e.g. cues_svm_v1.json
    dest: str | None = None  # folder shipped into; null: the package's models/assets

    def validate(self) -> None:
        check_asset_name(self.file, "ship.file", ".json")


@dataclass
class CuesConfig:
    data: CuesData = field(default_factory=CuesData)
    svm: CuesSVM = field(default_factory=CuesSVM)
    run: CuesRun = field(default_factory=CuesRun)
    ship: CuesShip = field(default_factory=CuesShip)


CONFIG = CuesConfig
_OUTPUTS = (("cues_svm", "json"), ("report", "json"), ("features", "csv"))


# --------------------------------------------------------------------------------------------
# fitting


def _neutral(x: _F64, missing: npt.NDArray[np.bool_], y: _I64) -> _F64:
    """Per cue, the median of the measured real tracks (all tracks, then the spec, if none)."""
    out = np.empty(x.shape[1])
    for j, spec in enumerate(FEATURES[: x.shape[1]]):
        for rows in ((y == 0) & ~missing[:, j], ~missing[:, j]):
            if rows.any():
                out[j] = float(np.median(x[rows, j]))
                break
        else:
            out[j] = spec.neutral
    return out


def _impute(x: _F64, missing: npt.NDArray[np.bool_], neutral: _F64) -> _F64:
    return np.where(missing, neutral[None, :], x)


def _splitter(folds: int, groups: npt.NDArray[Any], seed: int) -> Any:
    from sklearn.model_selection import StratifiedGroupKFold

    n = min(folds, len(set(groups.tolist())))
    if n < 2:
        raise ConfigError("identity-held-out evaluation needs at least 2 identity groups")
    return StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)


def _search(
    x: _F64,
    y: _I64,
    groups: npt.NDArray[Any],
    inner: int,
    seed: int,
    grid: tuple[Sequence[float], Sequence[float]] = (C_GRID, GAMMA_GRID),
) -> Any:
    """Grid search over ``C`` x ``gamma`` (``grid``) with a grouped inner CV (ROC AUC)."""
    from sklearn.model_selection import GridSearchCV

    params = {"svm__C": list(grid[0]), "svm__gamma": list(grid[1])}
    search = GridSearchCV(
        _pipeline(), params, scoring="roc_auc", cv=_splitter(inner, groups, seed + 1), n_jobs=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a one-class inner fold scores NaN for that setting
        search.fit(x, y, groups=groups)
    return search


def _pipeline(**svm: float) -> Any:
    """Standardised features, then a class-balanced RBF SVM (``svm``: its ``C``/``gamma``)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    model = SVC(kernel="rbf", class_weight="balanced", **svm)
    return Pipeline([("scale", StandardScaler()), ("svm", model)])


def fit_platt(d: npt.ArrayLike, y: npt.ArrayLike, iterations: int = 100) -> tuple[float, float]:
    """Platt's sigmoid ``p = 1 / (1 + exp(a d + b))`` fitted to decision values ``d`` and
    0/1 labels ``y`` (Newton's method on Platt's smoothed targets) -> ``(a, b)``."""
    dv = np.asarray(d, np.float64)
    yv = np.asarray(y, np.int64)
    n1 = float(yv.sum())
    n0 = float(len(yv) - n1)
    target = np.where(yv == 1, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))
    params = np.array([0.0, math.log((n0 + 1.0) / (n1 + 1.0))])

    def loss(p: _F64) -> float:
        f = p[0] * dv + p[1]
        # -[t log s(-f) + (1-t) log s(f)] = t*softplus(f) + (1-t)*softplus(-f)
        return float(np.sum(target * np.logaddexp(0, f) + (1 - target) * np.logaddexp(0, -f)))

    current = loss(params)
    for _ in range(iterations):
        f = params[0] * dv + params[1]
        prob = 0.5 * (1.0 + np.tanh(-0.5 * f))
        g = target - prob
        w = prob * (1.0 - prob)
        grad = np.array([np.sum(g * dv), np.sum(g)])
        hess = np.array([[np.sum(w * dv * dv), np.sum(w * dv)], [np.sum(w * dv), np.sum(w)]])
        step = np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        scale = 1.0
        while scale > 1e-10:
            trial = params - scale * step
            value = loss(trial)
            if value <= current + 1e-12:
                break
            scale /= 2.0
        else:
            break
        done = abs(current - value) < 1e-10 * max(1.0, abs(current))
        params, current = trial, value
        if done:
            break
    return float(params[0]), float(params[1])


def real_reference(
    x: _F64, missing: npt.NDArray[np.bool_], y: _I64, names: Sequence[str]
) -> dict[str, FeatureReference]:
    """Per cue, the 10th/50th/90th percentiles over the measured real tracks."""
    out = {}
    for j, name in enumerate(names):
        rows = (y == 0) & ~missing[:, j]
        values = x[rows, j] if rows.any() else x[:, j]
        lo, mid, hi = np.percentile(values, [10, 50, 90])
        out[name] = FeatureReference(float(lo), float(mid), float(hi))
    return out


def model_from_sklearn(
    pipeline: Any,
    names: Sequence[str],
    platt: tuple[float, float],
    reference: dict[str, FeatureReference],
    neutral: dict[str, float],
    *,
    name: str = "cues-svm-v1",
    meta: dict[str, Any] | None = None,
) -> CueModel:
    """A :class:`CueModel` from a fitted ``Pipeline([StandardScaler, SVC(kernel='rbf')])``."""
    scaler = pipeline.named_steps["scale"]
    svm = pipeline.named_steps["svm"]
    if svm.kernel != "rbf" or len(svm.classes_) != 2:
        raise ConfigError("only a binary RBF SVC can be exported")
    spec = {s.name: s for s in FEATURES}
    templates = {
        n: {"high": spec[n].high, "low": spec[n].low, "scale": spec[n].scale}
        for n in names
        if n in spec
    }
    return CueModel(
        names=tuple(names),
        mean=np.asarray(scaler.mean_, np.float64),
        scale=np.asarray(scaler.scale_, np.float64),
        support_vectors=np.asarray(svm.support_vectors_, np.float64),
        dual_coef=np.asarray(svm.dual_coef_, np.float64).reshape(-1),
        intercept=float(np.asarray(svm.intercept_).reshape(-1)[0]),
        gamma=float(svm._gamma),
        C=float(svm.C),
        platt_a=platt[0],
        platt_b=platt[1],
        reference=dict(reference),
        templates=templates,
        neutral=dict(neutral),
        name=name,
        cues_version=CUES_VERSION,
        meta=dict(meta or {}),
    )


# --------------------------------------------------------------------------------------------
# evaluation


def _nested_cv(
    tracks: Tracks,
    folds: int,
    inner: int,
    seed: int,
    grid: tuple[Sequence[float], Sequence[float]] = (C_GRID, GAMMA_GRID),
) -> tuple[_F64, list[dict[str, Any]], list[tuple[_I64, _I64]]]:
    """Out-of-fold decision values of the nested (grid inside each training fold) CV."""
    y, groups = tracks.label, tracks.group
    oof = np.zeros(len(tracks))
    per_fold: list[dict[str, Any]] = []
    splits = [
        (np.asarray(tr, np.int64), np.asarray(te, np.int64))
        for tr, te in _splitter(folds, groups, seed).split(tracks.x, y, groups)
    ]
    for k, (train, test) in enumerate(splits):
        neutral = _neutral(tracks.x[train], tracks.missing[train], y[train])
        x_train = _impute(tracks.x[train], tracks.missing[train], neutral)
        x_test = _impute(tracks.x[test], tracks.missing[test], neutral)
        search = _search(x_train, y[train], groups[train], inner, seed, grid)
        oof[test] = search.best_estimator_.decision_function(x_test)
        params = search.best_params_
        per_fold.append(
            {
                "fold": k,
                "groups": sorted(set(groups[test].tolist())),
                "real": int((y[test] == 0).sum()),
                "fake": int((y[test] == 1).sum()),
                "auc": roc_auc_or_none(y[test], oof[test]),
                "C": float(params["svm__C"]),
                "gamma": float(params["svm__gamma"]),
                "inner_auc": float(search.best_score_),
            }
        )
        log(f"fold {k}: {per_fold[-1]}")
    return oof, per_fold, splits


def _fixed_oof(tracks: Tracks, splits: list[tuple[_I64, _I64]], c: float, gamma: float) -> _F64:
    """Out-of-fold decision values of one fixed ``C``/``gamma`` over ``splits``."""
    y = tracks.label
    oof = np.zeros(len(tracks))
    for train, test in splits:
        neutral = _neutral(tracks.x[train], tracks.missing[train], y[train])
        model = _pipeline(C=c, gamma=gamma).fit(
            _impute(tracks.x[train], tracks.missing[train], neutral), y[train]
        )
        oof[test] = model.decision_function(_impute(tracks.x[test], tracks.missing[test], neutral))
    return oof


def _crossfit_platt(oof: _F64, y: _I64, splits: list[tuple[_I64, _I64]]) -> _F64:
    """Each fold's scores calibrated by Platt fitted on the other folds' scores."""
    prob = np.zeros(len(oof))
    for _, test in splits:
        rest = np.setdiff1d(np.arange(len(oof)), test)
        a, b = fit_platt(oof[rest], y[rest])
        prob[test] = 1.0 / (1.0 + np.exp(a * oof[test] + b))
    return prob


def _single_feature_aucs(tracks: Tracks, n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    out = {}
    for j, name in enumerate(tracks.names):
        auc, low, high = bootstrap_ci(
            roc_auc, tracks.label, tracks.x[:, j], n_boot=n_boot, seed=seed, groups=tracks.group
        )
        higher = auc >= 0.5
        out[name] = {
            "auc": auc,
            "auc_low": low,
            "auc_high": high,
            "direction": "higher in fakes" if higher else "lower in fakes",
            "oriented_auc": auc if higher else 1.0 - auc,
            "oriented_low": low if higher else 1.0 - high,
            "oriented_high": high if higher else 1.0 - low,
            "missing_tracks": int(tracks.missing[:, j].sum()),
        }
    return dict(sorted(out.items(), key=lambda kv: -float(kv[1]["oriented_auc"])))


def _write_csv(path: Path, tracks: Tracks, oof: _F64, prob: _F64) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        head = ["media_id", "dataset", "label", "method", "group", "frames", "fps", "fps_known"]
        writer.writerow([*head, *tracks.names, "missing", "oof_decision", "oof_probability"])
        for i in range(len(tracks)):
            missing = ";".join(n for n, m in zip(tracks.names, tracks.missing[i], strict=True) if m)
            writer.writerow(
                [
                    tracks.media_id[i],
                    tracks.dataset[i],
                    "fake" if tracks.label[i] else "real",
                    tracks.method[i],
                    tracks.group[i],
                    int(tracks.frames[i]),
                    f"{tracks.fps[i]:.4g}",
                    int(tracks.fps_known[i]),
                    *(f"{v:.6g}" for v in tracks.x[i]),
                    missing,
                    f"{oof[i]:.6g}",
                    f"{prob[i]:.6g}",
                ]
            )


def fit(cfg: CuesConfig, run_dir: Path) -> RunResult:
    """The engine's entry point: train, evaluate and write the run folder (see the module
    docstring); the report is the run's metrics."""
    from fakescope.evaluation import expected_calibration_error

    started = time.perf_counter()
    data, svm, seed = cfg.data, cfg.svm, cfg.run.seed
    store = FaceStore.open(Path(data.store))
    tracks = load_tracks(
        store,
        data.datasets,
        cache_dir=run_dir,
        data_root=Path(data.data_root),
        default_fps=data.fps,
        min_frames=data.min_frames,
    )
    y, groups = tracks.label, tracks.group
    if len(set(y.tolist())) < 2:
        raise ConfigError("training needs both real and fake tracks")
    log(f"{len(tracks)} tracks, {len(set(groups.tolist()))} identity groups")

    grid = (svm.c_grid, svm.gamma_grid)
    oof, per_fold, splits = _nested_cv(tracks, svm.folds, svm.inner_folds, seed, grid)
    prob_cv = _crossfit_platt(oof, y, splits)
    pooled = MetricSummary(
        *bootstrap_ci(roc_auc, y, oof, n_boot=svm.n_boot, seed=seed, groups=groups)
    ).to_dict()
    by_method: dict[str, float | None] = {}
    for method in sorted(set(tracks.method[y == 1].tolist())):
        rows = (y == 0) | (tracks.method == method)
        by_method[method] = roc_auc_or_none(y[rows], oof[rows])

    # the final model: grid on all tracks, Platt on that setting's out-of-fold scores
    neutral = _neutral(tracks.x, tracks.missing, y)
    x_all = _impute(tracks.x, tracks.missing, neutral)
    search = _search(x_all, y, groups, svm.inner_folds, seed, grid)
    c, gamma = float(search.best_params_["svm__C"]), float(search.best_params_["svm__gamma"])
    oof_final = _fixed_oof(tracks, splits, c, gamma)
    platt = fit_platt(oof_final, y)
    final = _pipeline(C=c, gamma=gamma).fit(x_all, y)
    reference = real_reference(tracks.x, tracks.missing, y, tracks.names)
    single = _single_feature_aucs(tracks, svm.n_boot, seed)
    summary = {
        "oof_auc": pooled,
        "C": c,
        "gamma": gamma,
        "tracks": len(tracks),
        "datasets": list(data.datasets),
        "store": data.store,
    }
    model = model_from_sklearn(
        final,
        tracks.names,
        platt,
        reference,
        {n: float(v) for n, v in zip(tracks.names, neutral, strict=True)},
        name=svm.name,
        meta=summary,
    )
    model.save(run_dir / "cues_svm.json")
    check = float(np.max(np.abs(model.decision_values(x_all) - final.decision_function(x_all))))

    counts = Counter(tracks.method.tolist())
    report: dict[str, Any] = {
        "store": data.store,
        "store_index_sha256": hashlib.sha256((store.root / "index.json").read_bytes()).hexdigest(),
        "datasets": list(data.datasets),
        "cues_version": CUES_VERSION,
        "features": {s.name: s.description for s in FEATURES},
        "tracks": {
            "total": len(tracks),
            "real": int((y == 0).sum()),
            "fake": int((y == 1).sum()),
            "by_method": dict(sorted(counts.items())),
            "identity_groups": len(set(groups.tolist())),
            "frames_median": float(np.median(tracks.frames)),
            "fps_from_media": int(tracks.fps_known.sum()),
            "fps_default": int((~tracks.fps_known).sum()),
            "tracks_with_missing_cues": int(tracks.missing.any(axis=1).sum()),
        },
        "cv": {
            "splitter": "StratifiedGroupKFold over the store's identity group",
            "folds": len(splits),
            "inner_folds": svm.inner_folds,
            "grid": {"C": list(grid[0]), "gamma": list(grid[1])},
            "per_fold": per_fold,
            "oof_auc": pooled,
            "per_fold_auc_mean": float(
                np.mean([f["auc"] for f in per_fold if f["auc"] is not None])
            ),
            "oof_auc_by_method": by_method,
            "ece_crossfit_platt": float(expected_calibration_error(y, prob_cv, n_bins=10)),
            "seed": seed,
            "n_boot": svm.n_boot,
        },
        "final": {
            "C": c,
            "gamma": gamma,
            "inner_cv_auc": float(search.best_score_),
            "oof_auc_at_final_params": float(roc_auc_or_none(y, oof_final) or float("nan")),
            "support_vectors": len(model.dual_coef),
            "platt": {"a": platt[0], "b": platt[1]},
            "max_numpy_vs_sklearn_decision_error": check,
        },
        "reference_real": {
            n: {"lo": r.lo, "median": r.median, "hi": r.hi} for n, r in reference.items()
        },
        "single_feature_auc": single,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    _write_csv(run_dir / "features.csv", tracks, oof, prob_cv)
    log(
        f"out-of-fold video AUC {pooled['value']:.3f} [{pooled['low']:.3f}, {pooled['high']:.3f}]"
        f"; final C={c:g} gamma={gamma:g}; wrote {run_dir}/cues_svm.json, report.json, features.csv"
    )
    outputs = {name: run_dir / f"{name}.{ext}" for name, ext in _OUTPUTS}
    return RunResult(run_dir, outputs, report)


# --------------------------------------------------------------------------------------------
# shipping


def ship(cfg: CuesConfig, run_dir: Path) -> Path:
    """The engine's ship stage: ``<run_dir>/cues_svm.json`` (checked by loading it) into the
    package's assets as ``ship.file``; returns the copy."""
    if not cfg.ship.file:
        raise ConfigError(f"ship: nothing to ship; give ship.file (e.g. {SHIPPED_ASSET})")
    source = Path(run_dir) / "cues_svm.json"
    if source.is_file():
        CueModel.load(source)
    return copy_asset(source, cfg.ship.file, cfg.ship.dest)

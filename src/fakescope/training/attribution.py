"""Train the method-attribution head: which family of manipulation a fake face resembles.

    fakescope train configs/attrib_v1.yaml
    fakescope train --ship runs/attrib_v1     # ship.stem: attrib_v1 (the config's)

The ``attribution`` recipe of the training engine (:mod:`fakescope.training.engine`).

A multinomial logistic regression over the pooled 1280-d embedding of a shipped detector
(``head.embedder``, default ``effnet-lite0-v3``: its ONNX has an ``embedding`` output), fitted on
the **fake** crops of the face store (:mod:`fakescope.training.store`) whose method is one of
:data:`METHODS` (FF++ Deepfakes, FaceSwap, Face2Face, NeuralTextures; DFDC face swaps).

Splits are a detector run's identity splits (``data.splits``: the run folder's ``splits.json``
or such a file itself, else
:func:`~fakescope.training.store.split_groups`): the regularisation ``C`` is chosen on ``val``
with models fitted on ``train``; the shipped head is refitted on ``train`` + ``val``; its
softmax temperature is fitted on ``calib``; the figures are on ``test`` (the FF++ crops'
own held-out ``test_`` files: 4 methods, identities never seen) and on ``calib`` before the
temperature is fitted there. ffpp_c40_videos is never used (the store refuses it); measure it
through the scan with ``fakescope eval ../shared/data/ffpp_c40_videos --attribution attrib-v1``.

Written to ``run.out``: ``features_<key>.npz`` (cached embeddings), ``attribution.json`` (the
head, loadable by :class:`fakescope.models.Attributor`), ``report.json`` (accuracy and
confusion matrices per split, method and family).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fakescope import __version__
from fakescope.errors import ConfigError
from fakescope.evaluation import FFPP_METHODS
from fakescope.training.config import RunConfig
from fakescope.training.engine import RunResult, log
from fakescope.training.ship import check_asset_name, copy_asset

if TYPE_CHECKING:
    from fakescope.models import OnnxDetector
    from fakescope.training.store import FaceStore

__all__ = [
    "CONFIG",
    "METHODS",
    "AttributionConfig",
    "AttributionShip",
    "confusion",
    "fit",
    "fit_head",
    "ship",
]

METHODS: dict[str, str] = {
    "Deepfakes": "face swap",
    "FaceSwap": "face swap",
    "Face2Face": "reenactment",
    "NeuralTextures": "reenactment",
    "DFDC face swap": "DFDC-style swap",
}
"""The methods the head tells apart, each with its family."""


_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]


@dataclass
class AttributionData:
    """The face store, its identity split and the methods told apart."""

    store: str = "cache/faces_v2"  # face store folder (training.store)
    splits: str | None = None  # a detector run folder (its splits.json) or a splits.json
    methods: tuple[str, ...] = tuple(METHODS)

    def validate(self) -> None:
        unknown = sorted(set(self.methods) - set(METHODS))
        if not self.methods or unknown:
            raise ConfigError(f"data.methods: choose among {list(METHODS)} (got {unknown})")


@dataclass
class AttributionHead:
    """The embedder, the regularisation grid and the head's name in its JSON."""

    # registered detector or weight-config .json whose ONNX has an embedding output
    embedder: str = "effnet-lite0-v3"
    c_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    name: str = "attrib-v1"
    version: str = __version__

    def validate(self) -> None:
        if not self.c_grid or min(self.c_grid) <= 0:
            raise ConfigError("head.c_grid: must be positive values")


@dataclass
class AttributionRun(RunConfig):
    out: str = "runs/attrib_v1"


@dataclass
class AttributionShip:
    """``fakescope train --ship RUN``: the run's ``attribution.json`` into the package as
    ``<stem>.json`` (its sha256 then goes into ``ASSET_SHA256``). Nothing ships unless asked."""

    stem: str = ""  # asset file stem, e.g. attrib_v1
    dest: str | None = None  # folder shipped into; null: the package's models/assets

    def validate(self) -> None:
        check_asset_name(self.stem, "ship.stem")


@dataclass
class AttributionConfig:
    data: AttributionData = field(default_factory=AttributionData)
    head: AttributionHead = field(default_factory=AttributionHead)
    run: AttributionRun = field(default_factory=AttributionRun)
    ship: AttributionShip = field(default_factory=AttributionShip)


CONFIG = AttributionConfig


def fit_head(
    x: _F32, y: _I64, c: float, n_classes: int, seed: int = 0
) -> tuple[_F64, _F64, _F64, _F64]:
    """Standardise ``x`` and fit a class-balanced multinomial logistic regression:
    ``(mean, scale, coef (K, D), intercept (K,))`` with classes ``0..n_classes-1`` (a class
    absent from ``y`` gets a zero row and a very low intercept)."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0).astype(np.float64)
    scale = x.std(axis=0).astype(np.float64)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    model.fit(z, y)
    rows = [int(k) for k in model.classes_]
    if len(rows) == 2:  # sklearn keeps one row (for the second class) when there are two
        rows = rows[1:]
    coef = np.zeros((n_classes, x.shape[1]))
    intercept = np.full(n_classes, -30.0)  # absent classes: never predicted
    intercept[[int(k) for k in model.classes_]] = 0.0
    coef[rows], intercept[rows] = model.coef_, model.intercept_
    return mean, scale, coef, intercept


def _logits(x: _F32, head: tuple[_F64, _F64, _F64, _F64]) -> _F64:
    mean, scale, coef, intercept = head
    out: _F64 = ((x - mean) / scale) @ coef.T + intercept
    return out


def _softmax(logits: _F64, temperature: float = 1.0) -> _F64:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: _F64 = e / e.sum(axis=1, keepdims=True)
    return out


def _fit_temperature(logits: _F64, y: _I64) -> float:
    """The softmax temperature minimising the log loss of ``logits`` for labels ``y``."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 200))
    losses = [
        -np.mean(np.log(np.clip(_softmax(logits, t)[np.arange(len(y)), y], 1e-12, None)))
        for t in grid
    ]
    return float(grid[int(np.argmin(losses))])


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> list[list[int]]:
    """``n_classes`` x ``n_classes`` counts: row = true class, column = predicted."""
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        out[int(t), int(p)] += 1
    return [[int(v) for v in row] for row in out]


def _summary(probs: _F64, y: _I64, classes: Sequence[str], media: Sequence[str]) -> dict[str, Any]:
    """Crop- and media-level accuracy (method and family) with confusion matrices; the
    FF++-only 4-method accuracy is what issue 12 aims at (>= 0.70)."""
    families = sorted(set(METHODS[c] for c in classes))
    fam_of = np.array([families.index(METHODS[c]) for c in classes])
    out: dict[str, Any] = {"n_crops": len(y)}

    def block(p: _F64, yy: _I64) -> dict[str, Any]:
        pred = p.argmax(axis=1)
        ff_idx = [classes.index(m) for m in FFPP_METHODS if m in classes]
        ff = np.isin(yy, ff_idx)
        ff_pred = np.asarray(ff_idx)[p[:, ff_idx].argmax(axis=1)] if ff_idx else pred
        return {
            "n": len(yy),
            "method_accuracy": float(np.mean(pred == yy)) if len(yy) else None,
            "family_accuracy": float(np.mean(fam_of[pred] == fam_of[yy])) if len(yy) else None,
            "ffpp_4method_accuracy": float(np.mean(ff_pred[ff] == yy[ff])) if ff.any() else None,
            "ffpp_n": int(ff.sum()),
            "confusion_methods": confusion(yy.tolist(), pred.tolist(), len(classes)),
            "confusion_families": confusion(
                fam_of[yy].tolist(), fam_of[pred].tolist(), len(families)
            ),
        }

    out["crop"] = block(probs, y)
    # media level: mean log-probability over a media's crops (as the scan pools a track)
    ids = sorted(set(media))
    index = {m: i for i, m in enumerate(ids)}
    mi = np.array([index[m] for m in media])
    pooled = np.zeros((len(ids), probs.shape[1]))
    np.add.at(pooled, mi, np.log(np.clip(probs, 1e-12, None)))
    counts = np.bincount(mi, minlength=len(ids))[:, None]
    media_y = np.zeros(len(ids), dtype=np.int64)
    media_y[mi] = y
    out["media"] = block(_softmax(pooled / counts), media_y)
    out["families"] = families
    return out


def _features(store: FaceStore, indices: _I64, embedder: OnnxDetector, out: Path) -> _F32:
    """Embeddings of the store crops at ``indices`` (aligned as the scan aligns them, through
    the detector's own :meth:`~fakescope.models.OnnxDetector.embed`; cached in ``out``)."""
    from fakescope.training.cache import content_key, load_cache, save_cache, store_key
    from fakescope.training.crops import aligned_crops

    cfg = embedder.config
    meta = {
        "store": store_key(store),
        "embedder_sha256": cfg.sha256,
        "size": cfg.input_size,
        "margin": cfg.margin,
        "indices": content_key(indices.tolist()),
    }
    path = out / f"features_{content_key(meta)}.npz"
    cached = load_cache(path, meta)
    if cached is not None:
        log(f"{path.name}: cached embeddings")
        return np.asarray(cached["embedding"], np.float32)
    log(f"embedding {len(indices)} crops with {cfg.name} ...")
    chunks = [
        embedder.embed(aligned_crops(store, indices[i : i + 64], cfg.input_size, cfg.margin))
        for i in range(0, len(indices), 64)
    ]
    emb = np.concatenate(chunks).astype(np.float32)
    save_cache(path, meta, {"embedding": emb})
    return emb


def _embedder(name: str) -> OnnxDetector:
    """A detector network with an ``embedding`` output: a registered name, or a weight-config
    ``.json`` (its ``file`` relative to that JSON)."""
    from fakescope.models import OnnxDetector, create_detector

    detector = create_detector(name, threads=1)
    if not isinstance(detector, OnnxDetector) or not detector.has_embedding:
        raise ConfigError(f"{name} is not a detector network with an 'embedding' output")
    return detector


def fit(cfg: AttributionConfig, run_dir: Path) -> RunResult:
    """The engine's entry point (the recipe of the module docstring); the report is the run's
    metrics."""
    from fakescope.training.cache import split_assignment
    from fakescope.training.store import FaceStore

    t_start = time.time()
    data, c_grid = cfg.data, cfg.head.c_grid
    store = FaceStore.open(Path(data.store))
    assignment, split_source = split_assignment(store, Path(data.splits) if data.splits else None)
    classes = [m for m in METHODS if m in set(data.methods)]
    rows = [
        (i, r)
        for i, r in enumerate(store.rows)
        if r["label"] == "fake" and r["method"] in classes and r["group"] in assignment
    ]
    if not rows:
        raise ConfigError(f"{data.store} has no fake crops of {', '.join(classes)}")
    indices = np.asarray([i for i, _ in rows], np.int64)
    y = np.asarray([classes.index(r["method"]) for _, r in rows], np.int64)
    split = np.asarray([assignment[r["group"]] for _, r in rows])
    media = [str(r["media_id"]) for _, r in rows]
    embedder = _embedder(cfg.head.embedder)
    x = _features(store, indices, embedder, run_dir)

    def part(name: str | tuple[str, ...]) -> npt.NDArray[np.bool_]:
        return np.isin(split, [name] if isinstance(name, str) else list(name))

    tr, va, ca, te = part("train"), part("val"), part("calib"), part("test")
    log(f"crops: train {tr.sum()}, val {va.sum()}, calib {ca.sum()}, test {te.sum()}")
    grid: dict[str, float] = {}
    for c in c_grid:
        head = fit_head(x[tr], y[tr], c, len(classes))
        grid[str(c)] = _summary(
            _softmax(_logits(x[va], head)), y[va], classes, [media[i] for i in np.flatnonzero(va)]
        )["crop"]["method_accuracy"]
        log(f"C={c}: val method accuracy {grid[str(c)]:.3f}")
    best_c = float(max(c_grid, key=lambda c: (grid[str(c)], -c)))
    head = fit_head(x[tr | va], y[tr | va], best_c, len(classes))
    calib_logits = _logits(x[ca], head)
    temperature = _fit_temperature(calib_logits, y[ca]) if ca.any() else 1.0
    report: dict[str, Any] = {
        "classes": classes,
        "families": {c: METHODS[c] for c in classes},
        "embedder": embedder.config.name,
        "splits": split_source,
        "c_grid_val_accuracy": grid,
        "C": best_c,
        "temperature": temperature,
        "calib_before_temperature": _summary(
            _softmax(calib_logits), y[ca], classes, [media[i] for i in np.flatnonzero(ca)]
        ),
        "test": _summary(
            _softmax(_logits(x[te], head), temperature),
            y[te],
            classes,
            [media[i] for i in np.flatnonzero(te)],
        ),
    }
    mean, scale, coef, intercept = head
    model = {
        "name": cfg.head.name,
        "version": cfg.head.version,
        "embedder": embedder.config.name,
        "classes": classes,
        "families": {c: METHODS[c] for c in classes},
        "mean": mean.round(7).tolist(),
        "scale": scale.round(7).tolist(),
        "coef": coef.round(7).tolist(),
        "intercept": intercept.round(7).tolist(),
        "temperature": temperature,
        "max_crops": 8,
        "trained_on": (
            f"fake crops of {', '.join(classes)} in the face store's train and val identity "
            f"splits ({split_source}); temperature fitted on its calib split; never on "
            "ffpp_c40_videos"
        ),
    }
    (run_dir / "attribution.json").write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    report["seconds"] = round(time.time() - t_start, 1)
    (run_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    t = report["test"]
    log(
        f"test: FF++ 4-method accuracy crop {t['crop']['ffpp_4method_accuracy']}, "
        f"family {t['crop']['family_accuracy']}; {run_dir / 'report.json'}"
    )
    outputs = {"head": run_dir / "attribution.json", "report": run_dir / "report.json"}
    return RunResult(run_dir, outputs, report)


def ship(cfg: AttributionConfig, run_dir: Path) -> Path:
    """The engine's ship stage: ``<run_dir>/attribution.json`` into the package's assets as
    ``<ship.stem>.json``; returns the copy."""
    if not cfg.ship.stem:
        raise ConfigError("ship: nothing to ship; give ship.stem (e.g. attrib_v1)")
    return copy_asset(run_dir / "attribution.json", f"{cfg.ship.stem}.json", cfg.ship.dest)

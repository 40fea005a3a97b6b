"""Few-shot transfer of a CNN synthesis detector to a new generator (``fakescope finetune``).

    fakescope finetune cnn-v3 --fakes NEW_FAKES/ --reals REALS/ --shots 50 --out cnn-v3-new.json

The backbone stays frozen (so what the base learnt is kept): the network's pooled
``embedding`` of each image (the mean over its patches, as the base's patch logits are
averaged) feeds a new linear head, fitted with L2-SP (Li et al. 2018; T-GD's transfer
regulariser): class-balanced logistic loss on the N + N shots plus ``l2sp / 2 * ||w - w0||^2``
towards the base head ``w0``, so with few shots the head moves only as far as the new
generator asks. The default strength, :data:`DEFAULT_L2SP` (1.0, the strongest pull of
:data:`L2SP_GRID`), keeps the generators the base knew: on the measured transfers it cost the
old generator at most 0.018 AUC, where the strength that ranks the shots best cost up to 0.24
(MODEL_CARD "Few-shot transfer"); ``l2sp=None`` (``--l2sp auto``) picks that strength
instead. The head is calibrated (Platt) on out-of-fold scores of the shots. The result
is a synthesis weight config (the base's network copied beside it, the head in ``head``), used
like any other: ``--synthesis-detector cnn-v3-new.json``.

No torch: numpy, SciPy's L-BFGS and onnxruntime; reading the base head needs the ``onnx``
package (the ``train`` extra).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.errors import ConfigError, ModelError
from fakescope.evaluation import roc_auc
from fakescope.synthesis import (
    CnnSynthesisDetector,
    SynthesisDetector,
    create_synthesis_detector,
)
from fakescope.training.images import read_rgb

__all__ = [
    "DEFAULT_L2SP",
    "IMAGE_SUFFIXES",
    "base_head",
    "finetune",
    "fit_head",
    "image_embeddings",
    "list_images",
    "read_rgb",
]

_F64 = npt.NDArray[np.float64]
_U8 = npt.NDArray[np.uint8]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def list_images(source: Path) -> list[Path]:
    """Image files under a folder (recursive, sorted), or the one file given."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise ConfigError(f"{source} is neither an image nor a folder")
    return sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def base_head(onnx_path: Path) -> tuple[_F64, float]:
    """The weights and bias that map the network's ``embedding`` output to its ``logit``,
    read from the ONNX graph: a one-output ``Gemm`` on the embedding (``cnn-v1``), or the row
    of a wider one that a ``Gather`` (axis 1) picks as ``logit`` (``cnn-v3``, whose other row
    is the family logit)."""
    try:
        import onnx
        from onnx import numpy_helper

        from fakescope.training.half_weights import load_float
    except ImportError:
        raise ConfigError("finetune needs the onnx package: pip install -e '.[train]'") from None
    graph = load_float(onnx_path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # constants exported as nodes
        if node.op_type == "Constant" and node.attribute:
            inits[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for node in graph.node:
        if node.op_type != "Gemm" or node.input[0] != "embedding" or len(node.input) != 3:
            continue
        w, b = inits.get(node.input[1]), inits.get(node.input[2])
        if w is None or b is None or w.shape[0] != b.size:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if (attrs.get("transB", 0), attrs.get("alpha", 1.0), attrs.get("beta", 1.0)) != (1, 1, 1):
            continue  # not y = embedding @ w.T + b
        row = 0 if w.shape[0] == 1 else _logit_row(graph, node.output[0], inits)
        if row is not None:
            return np.asarray(w[row], dtype=np.float64), float(b.reshape(-1)[row])
    raise ModelError(f"{onnx_path.name}: no linear layer from 'embedding' to the logit")


def _logit_row(graph: Any, gemm_output: str, consts: dict[str, Any]) -> int | None:
    """The column of ``gemm_output`` that a ``Gather`` on axis 1 outputs as ``logit``."""
    for node in graph.node:
        if node.op_type != "Gather" or list(node.input[:1]) != [gemm_output]:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        index = consts.get(node.input[1])
        if node.output[0] == "logit" and axis == 1 and index is not None and index.size == 1:
            return int(index.reshape(-1)[0])
    return None


def image_embeddings(detector: CnnSynthesisDetector, images: Sequence[_U8]) -> _F64:
    """(N, D): each image's embedding averaged over its patches."""
    rows = [detector.embeddings(detector.patches(img)).mean(axis=0) for img in images]
    if not rows:
        raise ConfigError("no images to embed")
    return np.stack(rows)


def fit_head(
    x: _F64, y: npt.NDArray[np.int64], w0: _F64, b0: float, l2sp: float
) -> tuple[_F64, float]:
    """Class-balanced logistic regression on ``x`` whose weights are pulled towards ``w0``
    (strength ``l2sp``; the bias is free), started at the base head."""
    from scipy.optimize import minimize

    yy = np.asarray(y, dtype=np.float64)
    pos, neg = max(yy.sum(), 1.0), max((1 - yy).sum(), 1.0)
    weight = np.where(yy == 1, 0.5 / pos, 0.5 / neg)

    def loss(theta: _F64) -> tuple[float, _F64]:
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        # log(1 + exp(-z)) for fakes, log(1 + exp(z)) for reals, computed stably
        margin = np.where(yy == 1, z, -z)
        nll = np.logaddexp(0.0, -margin)
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        g = weight * (p - yy)
        diff = w - w0
        value = float(weight @ nll + 0.5 * l2sp * diff @ diff)
        grad = np.concatenate([x.T @ g + l2sp * diff, [g.sum()]])
        return value, grad

    start = np.concatenate([w0, [b0]])
    result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return np.asarray(result.x[:-1], dtype=np.float64), float(result.x[-1])


def _oof_scores(
    x: _F64, y: npt.NDArray[np.int64], w0: _F64, b0: float, l2sp: float, seed: int
) -> _F64:
    """Out-of-fold head scores of the shots (stratified folds, at most 5)."""
    from sklearn.model_selection import StratifiedKFold

    folds = int(min(5, np.bincount(y, minlength=2).min()))
    out = np.zeros(len(y), dtype=np.float64)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        w, b = fit_head(x[train], y[train], w0, b0, l2sp)
        out[test] = x[test] @ w + b
    return out


L2SP_GRID = (1.0, 0.1, 0.01, 0.001)
"""``l2sp=None`` picks the strength from these by the shots' out-of-fold AUC (ties: the
larger, which forgets less)."""

DEFAULT_L2SP = 1.0
"""The strength used unless one is given: the grid's strongest pull, which forgets least (the
shots alone cannot tell how much a weaker pull costs the generators the base knew)."""


def choose_l2sp(
    x: _F64, y: npt.NDArray[np.int64], w0: _F64, b0: float, seed: int
) -> tuple[float, dict[str, float]]:
    """The :data:`L2SP_GRID` value whose head ranks the shots best out of fold, and the
    out-of-fold AUC of each (only the shots are used: nothing held out is looked at)."""
    aucs = {str(lam): roc_auc(y, _oof_scores(x, y, w0, b0, lam, seed)) for lam in L2SP_GRID}
    best = max(L2SP_GRID, key=lambda lam: (round(aucs[str(lam)], 3), lam))
    return best, aucs


def finetune(
    base: str,
    fakes: Sequence[Path],
    reals: Sequence[Path],
    out: Path,
    *,
    shots: int = 50,
    l2sp: float | None = DEFAULT_L2SP,
    seed: int = 0,
    name: str = "",
) -> tuple[Path, dict[str, Any]]:
    """Adapt synthesis detector ``base`` (a registered name or weight JSON of a CNN) with
    ``shots`` generated and ``shots`` real images drawn (seeded) from ``fakes`` / ``reals``;
    writes the weight config ``out`` and the network beside it. Returns ``out`` and a summary.
    ``l2sp``: the pull towards the base head; None chooses it on the shots (:func:`choose_l2sp`)."""
    from fakescope.calibration import LogitCalibrator

    detector = create_synthesis_detector(base)
    if not isinstance(detector, CnnSynthesisDetector) or not detector.has_embedding:
        raise ConfigError(f"{base} is not a CNN synthesis detector with an embedding output")
    if shots < 2:
        raise ConfigError("finetune needs at least 2 shots of each class")
    if len(fakes) < shots or len(reals) < shots:
        raise ConfigError(
            f"asked for {shots} shots per class, found {len(fakes)} generated and "
            f"{len(reals)} real images"
        )
    rng = np.random.default_rng(seed)
    pick_f = [fakes[i] for i in sorted(rng.choice(len(fakes), shots, replace=False))]
    pick_r = [reals[i] for i in sorted(rng.choice(len(reals), shots, replace=False))]
    x = image_embeddings(detector, [read_rgb(p) for p in [*pick_f, *pick_r]])
    y = np.asarray([1] * shots + [0] * shots, dtype=np.int64)
    source = detector.network_path
    w0, b0 = base_head(source)
    oof_aucs: dict[str, float] = {}
    if l2sp is None:
        l2sp, oof_aucs = choose_l2sp(x, y, w0, b0, seed)
    w, b = fit_head(x, y, w0, b0, l2sp)
    oof = _oof_scores(x, y, w0, b0, l2sp, seed)
    calibration = None
    try:
        p = 0.5 * (1.0 + np.tanh(0.5 * oof))
        calibration = LogitCalibrator().fit(p, y).to_dict()
    except ValueError:  # the shots cannot be ranked out of fold: keep the sigmoid
        calibration = None
    out.parent.mkdir(parents=True, exist_ok=True)
    network = out.with_suffix(".onnx")
    shutil.copyfile(source, network)
    weights = dataclasses.replace(
        detector.weights,
        name=name or f"{detector.weights.name}-ft{shots}",
        file=network.name,
        calibration=calibration,
        head={
            "coef": [float(v) for v in w],
            "intercept": b,
            "base": detector.weights.name,
            "shots": shots,
            "l2sp": l2sp,
            "seed": seed,
        },
        trained_on=f"{detector.weights.trained_on}; head refitted (L2-SP) on {shots} + {shots} "
        "shots of a new generator",
    )
    weights.save(out)
    summary = {
        "base": detector.weights.name,
        "shots": shots,
        "l2sp": l2sp,
        "l2sp_oof_auc": oof_aucs,
        "head_shift": float(np.linalg.norm(w - w0)) / max(float(np.linalg.norm(w0)), 1e-12),
        "calibrated": calibration is not None,
        "fakes": [str(p) for p in pick_f],
        "reals": [str(p) for p in pick_r],
    }
    return out, summary


def _groups(root: Path) -> tuple[list[Path], list[Path], list[str], list[str]]:
    """Generated and real images of a set with a MANIFEST.tsv (read by
    :func:`fakescope.data.load_dataset`), each with its source group: a fake's first identity
    (DFDC's ``original=NAME`` in ``generator_method``, else its file stem) cut to its prompt
    group (SDFD's ``anB-107`` of ``anB-107,3.jpg``; a name without a comma: itself); a real's
    file stem."""
    from fakescope.data import load_dataset
    from fakescope.training.synthesis_cnn_data import prompt_group

    fakes: list[Path] = []
    reals: list[Path] = []
    gf: list[str] = []
    gr: list[str] = []
    for item in load_dataset("manifest", root):
        if item.label == "fake":
            fakes.append(item.path)
            gf.append(prompt_group(item.identities[0]))
        else:
            reals.append(item.path)
            gr.append(item.path.stem)
    return fakes, reals, gf, gr


def transfer_report(
    base: str,
    new: Path,
    old: Path,
    shots: Sequence[int],
    out: Path,
    *,
    l2sp: float | None = DEFAULT_L2SP,
    eval_per_class: int = 300,
    seed: int = 0,
    new_reals: Path | None = None,
) -> dict[str, Any]:
    """Issue 11's transfer figures: for each N in ``shots``, AUC on the new set's held-out
    images and on the old set's test split, before and after :func:`finetune`. The new set is
    split by source group (half the groups give shots, the other half is evaluated); the old
    set's test split is the one the base was measured on (``split_by_image``, seed 0).
    ``new_reals``: a set whose real images stand in for the new set's when it has none (e.g.
    a diffusion set of portraits only, paired with FFHQ photos); images of the old set's test
    split are never used as shots or as new-set evaluation images."""
    import json

    from fakescope.training.synthesis_cnn_data import load_manifest, split_by_image

    items = load_manifest(old, "gen")
    split = split_by_image([i.path for i in items], [i.label for i in items], seed=0)
    test = [i for i, s in zip(items, split, strict=True) if s == "test"]
    fakes, reals, gf, gr = _groups(new)
    if new_reals is not None:
        old_test = {Path(i.path).resolve() for i in test}
        _, other, _, other_groups = _groups(new_reals)
        kept = [(p, g) for p, g in zip(other, other_groups, strict=True)]
        reals = [p for p, _ in kept if p.resolve() not in old_test]
        gr = [g for p, g in kept if p.resolve() not in old_test]
    groups = sorted(set(gf) | set(gr))
    held = set(np.random.default_rng([seed, 5]).permutation(groups)[: len(groups) // 2])
    pool_f = [p for p, g in zip(fakes, gf, strict=True) if g not in held]
    pool_r = [p for p, g in zip(reals, gr, strict=True) if g not in held]
    rng = np.random.default_rng([seed, 6])
    ev_f = [p for p, g in zip(fakes, gf, strict=True) if g in held]
    ev_r = [p for p, g in zip(reals, gr, strict=True) if g in held]
    ev_f = [ev_f[i] for i in sorted(rng.permutation(len(ev_f))[:eval_per_class])]
    ev_r = [ev_r[i] for i in sorted(rng.permutation(len(ev_r))[:eval_per_class])]
    new_eval = [read_rgb(p) for p in [*ev_f, *ev_r]]
    new_y = [1] * len(ev_f) + [0] * len(ev_r)
    old_eval = [read_rgb(Path(i.path)) for i in test]
    old_y = [i.label for i in test]

    def aucs(detector: SynthesisDetector) -> dict[str, float]:
        return {
            "new": round(roc_auc(new_y, detector.score(new_eval)), 4),
            "old": round(roc_auc(old_y, detector.score(old_eval)), 4),
        }

    report: dict[str, Any] = {
        "base": base,
        "new_set": new.name,
        "new_reals": None if new_reals is None else f"{new_reals.name} (old test split left out)",
        "old_set": f"{old.name} test split",
        "new_eval": {"generated": len(ev_f), "real": len(ev_r), "pool_generated": len(pool_f)},
        "l2sp": l2sp,
        "before": aucs(create_synthesis_detector(base)),
        "after": {},
    }
    for n in shots:
        path, summary = finetune(
            base, pool_f, pool_r, out.parent / f"ft{n}.json", shots=n, l2sp=l2sp, seed=seed
        )
        report["after"][str(n)] = {
            **aucs(create_synthesis_detector(str(path))),
            "l2sp": summary["l2sp"],
            "l2sp_oof_auc": summary["l2sp_oof_auc"],
        }
        print(json.dumps({"shots": n, **report["after"][str(n)]}), flush=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report

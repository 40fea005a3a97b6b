"""fp32 vs int8 measurements of the quantizer (:mod:`fakescope.training.quantize`): CPU sessions
as fakescope builds them, AUC / logit correlation / probability deltas per source set for a
face network, the same per image for a synthesis detector, speed, and the printed tables."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fakescope.training.images import read_rgb
from fakescope.training.quantize_graph import interface, with_logit

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

    from fakescope.synthesis import CnnSynthesisDetector

__all__ = [
    "BATCH",
    "THREADS",
    "compare",
    "ms_per_crop",
    "print_synth_table",
    "print_table",
    "run_all",
    "session",
    "synth_compare",
]

THREADS = 2
"""Intra-op threads of every measuring session (as the brief's 2-core machine)."""
BATCH = 16
"""Crops per ``run`` call when measuring (and at most per calibration batch)."""

_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]
_U8 = npt.NDArray[np.uint8]


def session(model: Path | bytes) -> InferenceSession:
    """A CPU session as fakescope's runtime builds it (:func:`fakescope._runtime.build_session`)
    with :data:`THREADS` intra-op threads. ``model`` is a path or serialised bytes."""
    from fakescope._runtime import build_session

    session: InferenceSession = build_session(model, THREADS)
    return session


def run_all(sess: InferenceSession, inputs: _F32, names: list[str]) -> list[_F64]:
    """The outputs ``names`` of ``sess`` on ``inputs`` (fed as ``input``, :data:`BATCH` at a
    time), each concatenated over the batches as float64."""
    parts: list[list[_F64]] = [[] for _ in names]
    for start in range(0, len(inputs), BATCH):
        res = sess.run(names, {"input": inputs[start : start + BATCH]})
        for p, r in zip(parts, res, strict=True):
            p.append(np.asarray(r, np.float64))
    return [np.concatenate(p) for p in parts]


def ms_per_crop(paths: Sequence[Path], inputs: _F32, rounds: int = 30) -> list[float]:
    """Median ms per crop at batch 16 of each model, rounds interleaved (a shared machine's
    load then hits all models alike)."""
    sessions = [session(p) for p in paths]
    batch = {"input": inputs[:BATCH]}
    for s in sessions:
        for _ in range(3):
            s.run(None, batch)
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(rounds):
        for s, t in zip(sessions, times, strict=True):
            start = time.perf_counter()
            s.run(None, batch)
            t.append((time.perf_counter() - start) * 1000 / BATCH)
    return [float(np.median(t)) for t in times]


def compare(
    fp32: Path,
    int8: Path,
    inputs: _F32,
    labels: npt.NDArray[np.int64],
    datasets: npt.NDArray[np.str_],
) -> dict[str, Any]:
    """Per source set and overall: AUC fp32/int8, Pearson r of logits, |delta p|; and mask /
    embedding deltas."""
    from fakescope.evaluation import roc_auc_or_none

    outs = [o for o, _ in interface(fp32)[1:]]
    res = []
    for path in (fp32, int8):
        blob, logit = with_logit(path)
        names = outs + ([logit] if logit else [])
        got = dict(zip(names, run_all(session(blob), inputs, names), strict=True))
        if logit:
            got["_logit"] = got[logit].reshape(-1)
        else:  # the score output is itself a logit
            got["_logit"] = got[outs[0]].reshape(-1)
            got[outs[0]] = 1 / (1 + np.exp(-got["_logit"]))
        res.append(got)
    a, b = res
    p32, p8 = a[outs[0]].reshape(-1), b[outs[0]].reshape(-1)
    rows = {}
    for name in [*sorted(set(datasets.tolist())), "all"]:
        keep = np.ones(len(labels), bool) if name == "all" else datasets == name
        auc32 = roc_auc_or_none(labels[keep], p32[keep])
        auc8 = roc_auc_or_none(labels[keep], p8[keep])
        d = np.abs(p32[keep] - p8[keep])
        rows[name] = {
            "n": int(keep.sum()),
            "fake": int(labels[keep].sum()),
            "auc_fp32": auc32,
            "auc_int8": auc8,
            "r_logit": float(np.corrcoef(a["_logit"][keep], b["_logit"][keep])[0, 1]),
            "dp_mean": float(d.mean()),
            "dp_max": float(d.max()),
        }
    extra = {}
    if "mask" in a:
        extra["mask_dmean"] = float(np.abs(a["mask"] - b["mask"]).mean())
        extra["mask_dmax"] = float(np.abs(a["mask"] - b["mask"]).max())
    if "embedding" in a:
        ea, eb = a["embedding"], b["embedding"]
        cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
        extra["emb_cos_min"] = float(cos.min())
        extra["emb_cos_mean"] = float(cos.mean())
    return {"sets": rows, **extra}


def _f(x: float | None, fmt: str = ".4f") -> str:
    return "n/a" if x is None else format(x, fmt)


def print_table(name: str, result: dict[str, Any], speed: tuple[float, float]) -> None:
    print(
        f"\n{name}: fp32 {speed[0]:.2f} ms/crop, int8 {speed[1]:.2f} ms/crop "
        f"(x{speed[0] / speed[1]:.2f}) at batch {BATCH}, {THREADS} threads"
    )
    head = (
        f"{'set':<17}{'n':>5}{'fake':>5}{'AUC fp32':>10}{'AUC int8':>10}{'dAUC':>9}"
        f"{'r logit':>9}{'mean|dp|':>10}{'max|dp|':>9}"
    )
    print(head)
    print("-" * len(head))
    for set_name, r in result["sets"].items():
        d = None if r["auc_fp32"] is None else r["auc_int8"] - r["auc_fp32"]
        print(
            f"{set_name:<17}{r['n']:>5}{r['fake']:>5}{_f(r['auc_fp32']):>10}"
            f"{_f(r['auc_int8']):>10}{_f(d, '+.4f'):>9}{r['r_logit']:>9.4f}"
            f"{r['dp_mean']:>10.4f}{r['dp_max']:>9.4f}"
        )
    if "mask_dmean" in result:
        print(f"mask: mean |d| {result['mask_dmean']:.4f}, max |d| {result['mask_dmax']:.4f}")
    if "emb_cos_mean" in result:
        print(
            f"embedding cosine fp32 vs int8: mean {result['emb_cos_mean']:.4f}, "
            f"min {result['emb_cos_min']:.4f}"
        )


def _ms_per_image(
    detectors: Sequence[CnnSynthesisDetector], images: Sequence[_U8], rounds: int = 3
) -> list[float]:
    """Median ms of ``detector.score([image])`` per detector, interleaved."""
    for d in detectors:
        d.score(images[:2])
    times: list[list[float]] = [[] for _ in detectors]
    for _ in range(rounds):
        for image in images:
            for d, t in zip(detectors, times, strict=True):
                start = time.perf_counter()
                d.score([image])
                t.append((time.perf_counter() - start) * 1000)
    return [float(np.median(t)) for t in times]


def synth_compare(
    fp32_json: Path, int8_json: Path, items: list[tuple[Path, int]], timing_images: int = 24
) -> dict[str, Any]:
    """fp32 vs int8 detectors (each built by ``create_synthesis_detector`` from its weight
    JSON) on ``items``: image AUC of the raw score, Pearson r of the raw scores, |delta
    calibrated probability|, patch embedding cosine; ms per image on ``THREADS`` threads."""
    from fakescope.errors import ModelError
    from fakescope.evaluation import roc_auc_or_none
    from fakescope.synthesis import CnnSynthesisDetector, create_synthesis_detector

    images = [read_rgb(p) for p, _ in items]
    labels = np.array([label for _, label in items], np.int64)
    raw, prob, emb = [], [], []
    for path in (fp32_json, int8_json):
        det = create_synthesis_detector(str(path))
        if not isinstance(det, CnnSynthesisDetector):
            raise ModelError(f"{path} is not a CNN synthesis detector")
        r = det.score(images)
        raw.append(r)
        prob.append(det.probability(r))
        emb.append(np.concatenate([det.embeddings(det.patches(im)) for im in images]))
    d = np.abs(prob[0] - prob[1])
    ea, eb = emb
    cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
    threshold = json.loads(fp32_json.read_text(encoding="utf-8"))["threshold"]
    flips = int(((prob[0] >= threshold) != (prob[1] >= threshold)).sum())
    # timing with exactly THREADS intra-op threads (create_synthesis_detector lets
    # onnxruntime pick), on the first `timing_images` images
    timed = [CnnSynthesisDetector.from_json(p, THREADS) for p in (fp32_json, int8_json)]
    sizes = sorted({im.shape[:2] for im in images[:timing_images]})
    speed = _ms_per_image(timed, images[:timing_images])
    return {
        "n": len(items),
        "fake": int(labels.sum()),
        "auc_fp32": roc_auc_or_none(labels, raw[0]),
        "auc_int8": roc_auc_or_none(labels, raw[1]),
        "r_raw": float(np.corrcoef(raw[0], raw[1])[0, 1]),
        "raw_dmean": float(np.abs(raw[0] - raw[1]).mean()),
        "raw_dmax": float(np.abs(raw[0] - raw[1]).max()),
        "dp_mean": float(d.mean()),
        "dp_max": float(d.max()),
        "decision_flips": flips,
        "emb_cos_mean": float(cos.mean()),
        "emb_cos_min": float(cos.min()),
        "ms_per_image": {"fp32": speed[0], "int8": speed[1]},
        "timing_sizes": [f"{w}x{h}" for h, w in sizes],
    }


def print_synth_table(name: str, r: dict[str, Any]) -> None:
    f32, i8 = r["ms_per_image"]["fp32"], r["ms_per_image"]["int8"]
    sizes = ", ".join(r["timing_sizes"])
    print(
        f"\n{name}: fp32 {f32:.1f} ms/image, int8 {i8:.1f} ms/image (x{f32 / i8:.2f}), "
        f"{sizes} images, one a call, {THREADS} threads"
    )
    head = (
        f"{'split':<8}{'n':>4}{'fake':>5}{'AUC fp32':>10}{'AUC int8':>10}{'dAUC':>9}"
        f"{'r raw':>8}{'mean|dp|':>10}{'max|dp|':>9}{'flips':>7}"
    )
    print(head)
    print("-" * len(head))
    print(
        f"{'test':<8}{r['n']:>4}{r['fake']:>5}{_f(r['auc_fp32']):>10}{_f(r['auc_int8']):>10}"
        f"{_f(r['auc_int8'] - r['auc_fp32'], '+.4f'):>9}{r['r_raw']:>8.4f}"
        f"{r['dp_mean']:>10.4f}{r['dp_max']:>9.4f}{r['decision_flips']:>7}"
    )
    print(
        f"raw score (mean patch logit): mean |d| {r['raw_dmean']:.4f}, max |d| {r['raw_dmax']:.4f};"
        f" patch embedding cosine: mean {r['emb_cos_mean']:.4f}, min {r['emb_cos_min']:.4f}"
    )

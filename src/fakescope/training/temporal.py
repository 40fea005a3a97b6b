"""Temporal video head: one fake probability per face track from the detector's per-frame
embeddings and scores, in place of the mean of the frame probabilities.

    python -m fakescope.training.temporal --store cache/faces_v2 --run runs/sbi_v2 \\
        --detector-onnx runs/sbi_v2/model.onnx --size 192 --margin 0.125 --out runs/temporal_v2

Data: the video sets of a face store (default ``ffpp_c23_videos``, 32 crops per video), one
track per video in frame order, split by identity group as the detector's run split them
(``<run>/splits.json``; without one, :func:`~fakescope.training.store.split_groups` with
ratios 0.7/0.15/0.15 and seed 0). Every crop is aligned as the scan aligns it
(:func:`~fakescope.training.train_sbi.align`) and run through the detector's ONNX (outputs
``fake_probability`` and ``embedding``): :func:`track_features`.

Video pseudo-fakes (label 1): every real video of the train split is self-blended frame by
frame (:func:`pseudo_fake_video`): each frame's :func:`~fakescope.training.sbi.sbi_pair`
starts from the same per-video seed, so the blend shape, blurs, colour/frequency transform
and source misalignment are shared by the whole video, while the landmarks (hence the mask
outline), the blend ratio and the elastic field jitter a little from frame to frame. The
transforms are kept on the source side (``p_source_side=1``): the real videos are trained on
untouched, so a global colour change of the whole frame must not mark a fake.

Per frame a head sees ``[embedding (E), logit(fake_probability)]`` (D = E + 1,
:func:`frame_features`), standardised with the training frames' statistics (kept in the
head). :class:`AttentionPool`: ``a = softmax_t(w^T tanh(W z_t))``, logit =
``v^T sum_t a_t z_t + alpha * mean_t(frame logit) + b`` (it starts as the mean of the frame
logits); :class:`GRUHead`: a 1-layer GRU (hidden 64), last state -> logit. ``z_t`` is the
embedding reduced to 64 dims by a linear layer, with the standardised frame logit. Training:
BCE, AdamW, class-balanced batches of random temporal crops of 8-32 frames, early stopping on
the validation video AUC.

The current rule (mean frame probability) and both heads are scored by video AUC on the val
and calib splits. The better head replaces the mean only when its validation AUC is higher;
``report.json``'s ``note`` says which, and ``head.json``'s ``replaces_mean`` carries it.

Out folder: ``features_<key>.npz`` and ``pseudo_<key>.npz`` (detector outputs, keyed by the
store, the detector's sha256, size, margin and the pseudo-fake recipe: a re-run skips the
embedding), ``report.json``, ``head.onnx`` (input ``frames`` (1, T, D) with T dynamic, output
``fake_probability`` (1,)) and ``head.json`` (dims, features, sha256s).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from fakescope.errors import ConfigError, InputError
from fakescope.evaluation import roc_auc_or_none
from fakescope.training.cache import (
    content_key,
    load_cache,
    save_cache,
    split_assignment,
    store_key,
)
from fakescope.training.sbi import SBIConfig, sbi_pair
from fakescope.training.store import FaceStore
from fakescope.training.train_baseline import MEAN, STD
from fakescope.training.train_sbi import align

__all__ = [
    "HEADS",
    "AttentionPool",
    "FitConfig",
    "GRUHead",
    "PseudoFakeVideo",
    "TemporalHead",
    "Track",
    "VideoSet",
    "check_export",
    "detector_session",
    "embed_crops",
    "evaluate",
    "export_head",
    "fit_head",
    "frame_features",
    "main",
    "make_head",
    "predict_videos",
    "pseudo_fake_video",
    "track_features",
    "video_sbi_config",
    "video_tracks",
]

CACHE_VERSION = 1
"""Bump when the cached features' meaning changes (alignment, feature recipe)."""

_EPS = 1e-6
"""Frame probabilities are clipped to [eps, 1 - eps] before the logit."""

_U8 = npt.NDArray[np.uint8]
_F32 = npt.NDArray[np.float32]
_I64 = npt.NDArray[np.int64]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# detector features


def frame_features(embeddings: _F32, probs: _F32) -> _F32:
    """A head's per-frame input: ``[embedding, logit(clip(p, eps, 1 - eps))]`` -> (T, E + 1)."""
    p = np.clip(np.asarray(probs, np.float64), _EPS, 1.0 - _EPS)
    logit = np.log(p) - np.log1p(-p)
    return np.concatenate([np.asarray(embeddings, np.float32), logit[:, None]], axis=1).astype(
        np.float32
    )


def detector_session(onnx_path: str | Path) -> Any:
    """A 1-thread onnxruntime session of a detector with ``fake_probability`` and
    ``embedding`` outputs."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    from fakescope._runtime import onnx_session

    session = onnx_session(Path(onnx_path), threads=1)
    names = {o.name for o in session.get_outputs()}
    if not {"fake_probability", "embedding"} <= names:
        raise InputError(
            f"{onnx_path} has outputs {sorted(names)}: a temporal head needs "
            "'fake_probability' and 'embedding'"
        )
    return session


def embed_crops(session: Any, crops: _U8, batch: int = 16) -> tuple[_F32, _F32]:
    """``(embedding (n, E), fake probability (n,))`` of aligned uint8 RGB crops, normalised
    as the scan normalises them (ImageNet mean/std)."""
    mean, std = MEAN * 255.0, STD * 255.0
    embs: list[_F32] = []
    probs: list[_F32] = []
    for start in range(0, len(crops), batch):
        x = (crops[start : start + batch].astype(np.float32) - mean) / std
        prob, emb = session.run(
            ["fake_probability", "embedding"], {"input": x.transpose(0, 3, 1, 2).copy()}
        )
        probs.append(np.asarray(prob, np.float32).reshape(-1))
        embs.append(np.asarray(emb, np.float32).reshape(len(x), -1))
    if not embs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.float32)
    return np.concatenate(embs), np.concatenate(probs)


def track_features(
    store: FaceStore,
    indices: Sequence[int] | _I64,
    onnx_path: str | Path,
    size: int,
    margin: float,
    *,
    session: Any = None,
    chunk: int = 64,
) -> tuple[_F32, _F32]:
    """Per crop of ``store`` at ``indices`` (in that order): ``(embedding (n, E) float32, raw
    fake probability (n,))`` of the detector at ``onnx_path`` on the aligned ``size`` crop
    (``margin`` as the scan). ``session`` reuses an open :func:`detector_session`."""
    session = session if session is not None else detector_session(onnx_path)
    embs: list[_F32] = []
    probs: list[_F32] = []
    idx = [int(i) for i in indices]
    for start in range(0, len(idx), chunk):
        crops = np.stack(
            [
                align(store.images[i], store.landmarks[i], size, margin)[0]
                for i in idx[start : start + chunk]
            ]
        )
        emb, prob = embed_crops(session, crops)
        embs.append(emb)
        probs.append(prob)
    if not embs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.float32)
    return np.concatenate(embs), np.concatenate(probs)


# --------------------------------------------------------------------------------------------
# tracks and video pseudo-fakes


@dataclass(frozen=True)
class Track:
    """One video of the store: its crops' row indices in frame order."""

    media_id: str
    dataset: str
    label: int
    method: str
    split: str
    indices: _I64


def video_tracks(
    store: FaceStore,
    assignment: dict[str, str],
    datasets: Sequence[str],
    min_frames: int = 4,
) -> list[Track]:
    """The videos of ``datasets`` with at least ``min_frames`` crops, grouped by media id,
    frames in order, with the split of their identity group (``assignment``)."""
    by_media: dict[str, list[int]] = {}
    for i, row in enumerate(store.rows):
        if row["dataset"] in datasets:
            by_media.setdefault(row["media_id"], []).append(i)
    missing = {store.rows[ix[0]]["group"] for ix in by_media.values()} - set(assignment)
    if missing:
        raise ConfigError(
            f"{len(missing)} identity groups of the store have no split (e.g. "
            f"{sorted(missing)[0]}): the splits are not of this store"
        )
    tracks: list[Track] = []
    for media_id in sorted(by_media):
        ix = sorted(by_media[media_id], key=lambda i: int(store.rows[i]["frame"]))
        if len(ix) < min_frames:
            continue
        row = store.rows[ix[0]]
        tracks.append(
            Track(
                media_id=media_id,
                dataset=row["dataset"],
                label=int(row["label"] == "fake"),
                method=str(row["method"]),
                split=assignment[row["group"]],
                indices=np.asarray(ix, np.int64),
            )
        )
    return tracks


@dataclass(frozen=True)
class PseudoFakeVideo:
    """A self-blended video: ``frames`` (T, H, W, 3) uint8, ``masks`` (T, H, W) float32."""

    frames: _U8
    masks: _F32
    label: int = 1


def video_sbi_config(base: SBIConfig | None = None) -> SBIConfig:
    """The frame recipe for video pseudo-fakes: ``base`` (default :class:`SBIConfig`) with
    colour/frequency transforms on the source only (see the module docstring)."""
    return dataclasses.replace(base or SBIConfig(), p_source_side=1.0)


def pseudo_fake_video(
    images: _U8 | Sequence[_U8],
    landmarks: _F32 | Sequence[_F32],
    seed: int,
    config: SBIConfig | None = None,
    jitter: float = 0.004,
    ratio_jitter: float = 0.05,
) -> PseudoFakeVideo:
    """Self-blend every frame of a video (loose crops ``images`` with their 468 landmarks).

    One seed per video: the blend ratio is drawn once, and every frame's
    :func:`~fakescope.training.sbi.sbi_pair` runs from a generator seeded identically, so the
    mask deformation, blurs, colour/frequency transform and source affine are the same on
    every frame. Per frame: the landmarks the mask is built from move by Gaussian noise of
    ``jitter`` x the face size (per point), the blend ratio by ``ratio_jitter`` (relative),
    and the elastic field differs with the region's size. ``config`` defaults to
    :func:`video_sbi_config`."""
    cfg = config if config is not None else video_sbi_config()
    base = np.random.default_rng(seed)
    ratio = float(cfg.blend_ratios[int(base.integers(len(cfg.blend_ratios)))])
    shared = int(base.integers(2**62))
    frame_rng = np.random.default_rng([seed, 1])
    frames: list[_U8] = []
    masks: list[_F32] = []
    for image, points in zip(images, landmarks, strict=True):
        xy = np.asarray(points, np.float32)[:, :2]
        face = max(1.0, 0.5 * float(np.ptp(xy[:, 0]) + np.ptp(xy[:, 1])))
        moved = xy + frame_rng.normal(0.0, jitter * face, xy.shape).astype(np.float32)
        r = float(np.clip(ratio * (1.0 + frame_rng.normal(0.0, ratio_jitter)), 0.05, 1.0))
        frame_cfg = dataclasses.replace(cfg, blend_ratios=(r,))
        _, fake, mask = sbi_pair(np.asarray(image), moved, np.random.default_rng(shared), frame_cfg)
        frames.append(fake)
        masks.append(mask)
    return PseudoFakeVideo(np.stack(frames), np.stack(masks))


def _video_seed(seed: int, media_id: str, copy_index: int) -> int:
    return int(hashlib.sha256(f"{seed}:{copy_index}:{media_id}".encode()).hexdigest()[:15], 16)


# --------------------------------------------------------------------------------------------
# heads


class TemporalHead(nn.Module):
    """Common front end: standardise ``(B, T, D)`` frames (statistics set by
    :meth:`set_normalisation`), reduce the embedding (first ``D - 1`` dims) to ``reduce``
    dims by a linear layer (``reduce=0``: keep it whole; ``use_embedding=False``: drop it)
    and append the standardised frame logit (last dim) -> ``z`` (B, T, F); subclasses map
    ``z`` and the raw frame logits to one video logit per sequence."""

    kind = "base"

    def __init__(
        self, dim: int, reduce: int = 64, dropout: float = 0.2, use_embedding: bool = True
    ) -> None:
        super().__init__()
        if dim < 1 or reduce < 0:
            raise ConfigError(f"invalid head dims: dim={dim}, reduce={reduce}")
        self.dim = dim
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("inv_std", torch.ones(dim))
        emb = dim - 1 if use_embedding else 0
        self.proj: nn.Module | None = nn.Linear(emb, reduce) if emb and reduce else None
        self.drop = nn.Dropout(dropout)
        self.use_embedding = bool(emb)
        self.features = (reduce if self.proj is not None else emb) + 1

    def set_normalisation(self, mean: _F32, std: _F32) -> None:
        self.mean.copy_(torch.from_numpy(np.asarray(mean, np.float32)))
        self.inv_std.copy_(torch.from_numpy(1.0 / np.maximum(np.asarray(std, np.float32), 1e-3)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z (B, T, F), raw frame logits (B, T))``."""
        logits = x[..., -1]
        xn = (x - self.mean) * self.inv_std
        score = xn[..., -1:]
        if not self.use_embedding:
            return score, logits
        emb = xn[..., :-1]
        if self.proj is not None:
            emb = self.proj(emb)
        return torch.cat([self.drop(emb), score], dim=-1), logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class AttentionPool(TemporalHead):
    """Attentive pooling: ``a_t = softmax_t(w^T tanh(W z_t))``; logit =
    ``v^T sum_t a_t z_t + alpha * mean_t(frame logit) + b`` with ``v = 0``, ``b = 0``,
    ``alpha = 1`` at the start (= the mean-logit rule)."""

    kind = "attention"

    def __init__(
        self,
        dim: int,
        reduce: int = 64,
        hidden: int = 32,
        dropout: float = 0.2,
        use_embedding: bool = True,
    ) -> None:
        super().__init__(dim, reduce, dropout, use_embedding)
        self.att = nn.Linear(self.features, hidden)
        self.att_w = nn.Linear(hidden, 1, bias=False)
        self.out = nn.Linear(self.features, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.mean_weight = nn.Parameter(torch.tensor(1.0))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The weights ``a`` (B, T)."""
        return self._weights(self.encode(x)[0])

    def _weights(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.att_w(torch.tanh(self.att(z)))[..., 0], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, logits = self.encode(x)
        a = self._weights(z)
        pooled = (a[..., None] * z).sum(dim=1)
        return self.out(pooled)[:, 0] + self.mean_weight * logits.mean(dim=1)


class GRUHead(TemporalHead):
    """A 1-layer GRU over ``z``; its last state -> linear -> logit."""

    kind = "gru"

    def __init__(
        self,
        dim: int,
        reduce: int = 64,
        hidden: int = 64,
        dropout: float = 0.2,
        use_embedding: bool = True,
    ) -> None:
        super().__init__(dim, reduce, dropout, use_embedding)
        self.gru = nn.GRU(self.features, hidden, num_layers=1, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.encode(x)
        _, h = self.gru(z)
        return self.out(h[-1])[:, 0]


HEADS: dict[str, type[TemporalHead]] = {"attention": AttentionPool, "gru": GRUHead}


def make_head(kind: str, dim: int, **kwargs: Any) -> TemporalHead:
    try:
        cls = HEADS[kind]
    except KeyError:
        raise ConfigError(f"unknown head {kind!r}: one of {sorted(HEADS)}") from None
    return cls(dim, **kwargs)


# --------------------------------------------------------------------------------------------
# training and evaluation


@dataclass
class VideoSet:
    """Sequences of per-frame features (``(T_i, D)`` each) with video labels."""

    features: list[_F32]
    labels: _I64
    kinds: list[str]
    media_ids: list[str]

    def __len__(self) -> int:
        return len(self.features)

    def mean_probability(self) -> _F32:
        """The current rule: the mean frame probability per video."""
        return np.array(
            [
                float(np.mean(1.0 / (1.0 + np.exp(-f[:, -1].astype(np.float64)))))
                for f in self.features
            ],
            np.float32,
        )

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for k in self.kinds:
            out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 40
    steps_per_epoch: int = 25
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 8
    min_len: int = 8
    max_len: int = 32
    seed: int = 0


def _batch(
    data: VideoSet, rng: np.random.Generator, cfg: FitConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Half real, half fake videos (drawn with replacement), each a random temporal crop of
    one common length in ``[min_len, max_len]`` (at most the shortest drawn video)."""
    reals = np.nonzero(data.labels == 0)[0]
    fakes = np.nonzero(data.labels == 1)[0]
    n_real = cfg.batch // 2
    chosen = np.concatenate(
        [rng.choice(reals, n_real), rng.choice(fakes, cfg.batch - n_real)]
    ).astype(np.int64)
    length = int(rng.integers(cfg.min_len, cfg.max_len + 1))
    length = min(length, min(len(data.features[i]) for i in chosen))
    crops = []
    for i in chosen:
        seq = data.features[int(i)]
        start = int(rng.integers(0, len(seq) - length + 1))
        crops.append(seq[start : start + length])
    x = torch.from_numpy(np.stack(crops))
    y = torch.from_numpy(data.labels[chosen].astype(np.float32))
    return x, y


@torch.no_grad()
def predict_videos(head: nn.Module, data: VideoSet) -> _F32:
    """Video logits of whole sequences (sequences of one length run as one batch)."""
    head.eval()
    out = np.zeros(len(data), np.float32)
    by_len: dict[int, list[int]] = {}
    for i, f in enumerate(data.features):
        by_len.setdefault(len(f), []).append(i)
    for ix in by_len.values():
        x = torch.from_numpy(np.stack([data.features[i] for i in ix]))
        out[ix] = head(x).numpy()
    return out


def _val_loss(logits: _F32, labels: _I64) -> float:
    return float(
        F.binary_cross_entropy_with_logits(
            torch.from_numpy(logits), torch.from_numpy(labels.astype(np.float32))
        )
    )


def fit_head(
    head: TemporalHead, train: VideoSet, val: VideoSet, cfg: FitConfig = FitConfig()
) -> dict[str, Any]:
    """Train ``head`` in place (the best epoch's weights are loaded at the end) and return
    its history: per epoch the training loss, val AUC and val loss; ``best_epoch``.

    The best epoch has the highest validation video AUC, ties broken by the lower validation
    loss; training stops after ``patience`` epochs without a better one."""
    if len(set(train.labels.tolist())) < 2:
        raise ConfigError("the temporal training set needs real and fake videos")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    frames = np.concatenate(train.features)
    head.set_normalisation(frames.mean(axis=0), frames.std(axis=0))
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict[str, Any]] = []
    best_key: tuple[float, float] | None = None
    best_state: dict[str, Any] = copy.deepcopy(head.state_dict())
    best_epoch, bad = -1, 0
    for epoch in range(cfg.epochs):
        head.train()
        total = 0.0
        for _ in range(cfg.steps_per_epoch):
            x, y = _batch(train, rng, cfg)
            loss = F.binary_cross_entropy_with_logits(head(x), y)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += loss.item()
        logits = predict_videos(head, val)
        auc = roc_auc_or_none(val.labels, logits, ndigits=4)
        vloss = _val_loss(logits, val.labels) if len(val) else float("nan")
        entry = {
            "epoch": epoch,
            "loss": round(total / cfg.steps_per_epoch, 5),
            "val_auc": auc,
            "val_loss": round(vloss, 5),
        }
        history.append(entry)
        key = (auc if auc is not None else -1.0, -vloss if math.isfinite(vloss) else 0.0)
        if best_key is None or key > best_key:
            best_key, best_state, best_epoch, bad = key, copy.deepcopy(head.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    return {"history": history, "best_epoch": best_epoch}


def evaluate(heads: dict[str, nn.Module], sets: dict[str, VideoSet]) -> dict[str, Any]:
    """Video AUC per split of the mean frame probability (``mean``) and of every head."""
    out: dict[str, Any] = {}
    for split, data in sets.items():
        entry: dict[str, Any] = {
            "videos": len(data),
            "real": int((data.labels == 0).sum()),
            "fake": int((data.labels == 1).sum()),
            "kinds": data.counts(),
            "mean": roc_auc_or_none(data.labels, data.mean_probability(), ndigits=4),
        }
        for name, head in heads.items():
            entry[name] = roc_auc_or_none(data.labels, predict_videos(head, data), ndigits=4)
        out[split] = entry
    return out


# --------------------------------------------------------------------------------------------
# export


class _Export(nn.Module):
    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(frames))


def export_head(head: TemporalHead, path: Path) -> None:
    """ONNX: input ``frames`` (1, T, D) float32, T dynamic -> ``fake_probability`` (1,)."""
    head.eval()
    with warnings.catch_warnings():  # legacy exporter deprecation; GRU batch-size notes
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Export(head),
            (torch.zeros(1, 8, head.dim),),
            str(path),
            input_names=["frames"],
            output_names=["fake_probability"],
            dynamic_axes={"frames": {1: "t"}},
            opset_version=17,
            dynamo=False,
        )


@torch.no_grad()
def check_export(
    head: TemporalHead, path: Path, lengths: Sequence[int] = (1, 5, 32), seed: int = 0
) -> float:
    """The largest |onnxruntime - torch| probability over random inputs of ``lengths``."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    from fakescope._runtime import onnx_session

    session = onnx_session(path, threads=1)
    gen = torch.Generator().manual_seed(seed)
    head.eval()
    worst = 0.0
    for t in lengths:
        x = torch.randn(1, t, head.dim, generator=gen) / head.inv_std + head.mean
        want = torch.sigmoid(head(x)).numpy()
        (got,) = session.run(["fake_probability"], {"frames": x.numpy()})
        if np.asarray(got).shape != (1,):
            raise RuntimeError(f"exported head gives shape {np.asarray(got).shape}, not (1,)")
        worst = max(worst, float(np.abs(np.asarray(got) - want).max()))
    return worst


# --------------------------------------------------------------------------------------------
# command line


def _sbi_base(run: Path | None) -> tuple[SBIConfig, str]:
    """The detector run's SBI recipe (``<run>/config.yaml``), else the defaults."""
    if run is not None and (run / "config.yaml").is_file():
        from fakescope.training.config import resolve

        return resolve(run / "config.yaml").sbi.to_sbi_config(), str(run / "config.yaml")
    return SBIConfig(), "defaults"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole recipe of the module docstring; returns the report."""
    t_start = time.time()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = Path(args.run) if args.run else None
    store = FaceStore.open(Path(args.store))
    assignment, split_source = split_assignment(store, run_dir)
    tracks = video_tracks(store, assignment, args.datasets, args.min_frames)
    if not tracks:
        raise ConfigError(f"{args.store} has no videos of {args.datasets}")
    detector = Path(args.detector_onnx)
    detector_sha = _sha256(detector)
    session = detector_session(detector)
    timings: dict[str, float] = {}

    # detector outputs of every crop of every track (cached)
    t0 = time.time()
    all_idx = np.concatenate([t.indices for t in tracks])
    meta = {
        "version": CACHE_VERSION,
        "store": store_key(store),
        "detector_sha256": detector_sha,
        "size": args.size,
        "margin": args.margin,
        "indices": content_key(all_idx.tolist()),
    }
    feat_path = out / f"features_{content_key(meta)}.npz"
    cached = load_cache(feat_path, meta)
    if cached is None:
        _log(f"embedding {len(all_idx)} crops of {len(tracks)} videos ...")
        emb, prob = track_features(
            store, all_idx, detector, args.size, args.margin, session=session
        )
        save_cache(feat_path, meta, {"indices": all_idx, "embedding": emb, "prob": prob})
    else:
        _log(f"{feat_path.name}: cached detector outputs")
        emb, prob = cached["embedding"], cached["prob"]
    timings["features_s"] = round(time.time() - t0, 1)
    row_of = {int(i): k for k, i in enumerate(all_idx.tolist())}

    # video pseudo-fakes of the train split's real videos (cached)
    t0 = time.time()
    base_cfg, sbi_source = _sbi_base(run_dir)
    sbi_cfg = video_sbi_config(base_cfg)
    sources = [t for t in tracks if t.split == "train" and t.label == 0]
    pmeta = {
        **meta,
        "indices": content_key([t.indices.tolist() for t in sources]),
        "sbi": dataclasses.asdict(sbi_cfg),
        "seed": args.seed,
        "jitter": args.jitter,
        "copies": args.pseudo_copies,
    }
    pseudo_path = out / f"pseudo_{content_key(pmeta)}.npz"
    pcached = load_cache(pseudo_path, pmeta)
    if pcached is None:
        _log(f"making {len(sources) * args.pseudo_copies} video pseudo-fakes ...")
        p_emb: list[_F32] = []
        p_prob: list[_F32] = []
        lengths: list[int] = []
        names: list[str] = []
        for c in range(args.pseudo_copies):
            for track in sources:
                video = pseudo_fake_video(
                    [store.images[int(i)] for i in track.indices],
                    store.landmarks[track.indices],
                    _video_seed(args.seed, track.media_id, c),
                    sbi_cfg,
                    args.jitter,
                )
                crops = np.stack(
                    [
                        align(frame, store.landmarks[int(i)], args.size, args.margin)[0]
                        for frame, i in zip(video.frames, track.indices, strict=True)
                    ]
                )
                e, p = embed_crops(session, crops)
                p_emb.append(e)
                p_prob.append(p)
                lengths.append(len(crops))
                names.append(track.media_id)
        pcached = {
            "embedding": np.concatenate(p_emb)
            if p_emb
            else np.zeros((0, emb.shape[1]), np.float32),
            "prob": np.concatenate(p_prob) if p_prob else np.zeros(0, np.float32),
            "lengths": np.asarray(lengths, np.int64),
            "sources": np.asarray(names, dtype=str),
        }
        save_cache(pseudo_path, pmeta, pcached)
    else:
        _log(f"{pseudo_path.name}: cached pseudo-fake outputs")
    timings["pseudo_fakes_s"] = round(time.time() - t0, 1)

    # video sets per split
    sets: dict[str, VideoSet] = {}
    for track in tracks:
        rows = [row_of[int(i)] for i in track.indices]
        data = sets.setdefault(track.split, VideoSet([], np.zeros(0, np.int64), [], []))
        data.features.append(frame_features(emb[rows], prob[rows]))
        data.labels = np.append(data.labels, track.label)
        data.kinds.append(track.method if track.label else "real")
        data.media_ids.append(track.media_id)
    train = sets.setdefault("train", VideoSet([], np.zeros(0, np.int64), [], []))
    start = 0
    for n, name in zip(pcached["lengths"].tolist(), pcached["sources"].tolist(), strict=True):
        train.features.append(
            frame_features(
                pcached["embedding"][start : start + n], pcached["prob"][start : start + n]
            )
        )
        train.labels = np.append(train.labels, 1)
        train.kinds.append("pseudo")
        train.media_ids.append(f"pseudo:{name}")
        start += n
    val = sets.get("val", VideoSet([], np.zeros(0, np.int64), [], []))
    if len(set(val.labels.tolist())) < 2:
        raise ConfigError("the validation split needs real and fake videos")
    dim = train.features[0].shape[1]

    # heads
    t0 = time.time()
    fit_cfg = FitConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        batch=args.batch,
        lr=args.lr,
        weight_decay=args.weight_decay,
        patience=args.patience,
        seed=args.seed,
    )
    heads: dict[str, TemporalHead] = {}
    fits: dict[str, Any] = {}
    for kind in ("attention", "gru"):
        torch.manual_seed(args.seed)
        head = make_head(kind, dim, reduce=args.reduce, use_embedding=not args.score_only)
        fits[kind] = fit_head(head, train, val, fit_cfg)
        heads[kind] = head
        best = fits[kind]["history"][fits[kind]["best_epoch"]]
        _log(f"{kind}: best epoch {fits[kind]['best_epoch']} (val AUC {best['val_auc']})")
    timings["training_s"] = round(time.time() - t0, 1)
    order = ["train", "val", "calib", *sorted(set(sets) - {"train", "val", "calib"})]
    results = evaluate(dict(heads), {s: sets[s] for s in order if s in sets})

    # choice
    mean_val = results["val"]["mean"]
    best_kind = max(heads, key=lambda k: (results["val"][k] or -1.0, k == "attention"))
    best_val = results["val"][best_kind]
    replaces = best_val is not None and mean_val is not None and best_val > mean_val + args.min_gain
    calib = results.get("calib", {})
    calib_txt = (
        f"; calib AUC {best_kind} {calib.get(best_kind)} vs mean {calib.get('mean')}"
        if calib
        else ""
    )
    if replaces:
        note = (
            f"the {best_kind} head replaces the mean: val video AUC {best_val} > mean "
            f"{mean_val} (+{args.min_gain}){calib_txt}"
        )
    else:
        note = (
            f"the mean of the frame probabilities stays: the best head ({best_kind}, val video "
            f"AUC {best_val}) is not better than the mean ({mean_val}) on validation{calib_txt}"
        )
    n_val = len(val)
    if n_val < 50:
        note += (
            f". Only {n_val} validation videos "
            f"({int((val.labels == 0).sum())} real): the AUCs are coarse, and the heads' val "
            "figures are optimistic (their epoch was picked on val)"
        )

    # export the best head (replaces_mean says whether the scan should use it)
    head = heads[best_kind]
    onnx_path = out / "head.onnx"
    export_head(head, onnx_path)
    diff = check_export(head, onnx_path)
    if diff > 1e-4:
        raise RuntimeError(f"exported head differs from torch by {diff:.2e}")
    head_sha = _sha256(onnx_path)
    head_cfg = {
        "kind": best_kind,
        "replaces_mean": bool(replaces),
        "onnx": onnx_path.name,
        "sha256": head_sha,
        "input": "frames",
        "input_shape": [1, "T", dim],
        "output": "fake_probability",
        "input_dims": dim,
        "embedding_dims": dim - 1,
        "features": [
            f"embedding[0:{dim - 1}]: the detector's 'embedding' output on the aligned crop",
            f"logit(clip(fake_probability, {_EPS}, {1 - _EPS})): the detector's raw frame score",
        ],
        "frames": "one track's aligned crops in time order (trained on 8-32 frames)",
        "uses_embedding": not args.score_only,
        "reduce": args.reduce,
        "detector_sha256": detector_sha,
        "detector_input_size": args.size,
        "detector_margin": args.margin,
        "val_auc": best_val,
        "mean_val_auc": mean_val,
        "max_export_error": diff,
        "note": note,
    }
    (out / "head.json").write_text(json.dumps(head_cfg, indent=1), encoding="utf-8")
    timings["total_s"] = round(time.time() - t_start, 1)
    report = {
        "store": str(args.store),
        "datasets": list(args.datasets),
        "splits": split_source,
        "detector": str(detector),
        "detector_sha256": detector_sha,
        "size": args.size,
        "margin": args.margin,
        "pseudo_fakes": {
            "videos": len(pcached["lengths"]),
            "sbi": dataclasses.asdict(sbi_cfg),
            "sbi_from": sbi_source,
            "jitter": args.jitter,
            "copies": args.pseudo_copies,
        },
        "fit": dataclasses.asdict(fit_cfg),
        "results": results,
        "training": fits,
        "chosen": best_kind if replaces else "mean",
        "replaces_mean": bool(replaces),
        "exported": {"onnx": onnx_path.name, "kind": best_kind, "sha256": head_sha},
        "note": note,
        "timings": timings,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    _log(json.dumps({"results": results, "timings": timings}))
    _log(note)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="face store folder")
    parser.add_argument("--run", type=Path, help="detector run folder (splits.json, config.yaml)")
    parser.add_argument("--detector-onnx", type=Path, required=True)
    parser.add_argument("--size", type=int, required=True, help="detector input size")
    parser.add_argument("--margin", type=float, required=True, help="alignment margin")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--datasets", nargs="+", default=["ffpp_c23_videos"])
    parser.add_argument("--min-frames", type=int, default=4)
    parser.add_argument("--pseudo-copies", type=int, default=1, help="pseudo-fakes per real")
    parser.add_argument("--jitter", type=float, default=0.004, help="landmark jitter (x face)")
    parser.add_argument("--reduce", type=int, default=64, help="embedding dims (0: keep all)")
    parser.add_argument("--score-only", action="store_true", help="heads see no embedding")
    parser.add_argument("--epochs", type=int, default=FitConfig.epochs)
    parser.add_argument("--steps", type=int, default=FitConfig.steps_per_epoch)
    parser.add_argument("--batch", type=int, default=FitConfig.batch)
    parser.add_argument("--lr", type=float, default=FitConfig.lr)
    parser.add_argument("--weight-decay", type=float, default=FitConfig.weight_decay)
    parser.add_argument("--patience", type=int, default=FitConfig.patience)
    parser.add_argument("--min-gain", type=float, default=0.0, help="val AUC gain to replace")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()

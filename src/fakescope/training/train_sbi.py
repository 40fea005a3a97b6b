"""Train EfficientNet-Lite0 on Self-Blended Images (real faces only) and export it to ONNX.

    fakescope train configs/sbi_lite0.yaml [--set optim.lr=3e-4 ...]
    fakescope train --ship runs/sbi [--set ship.beside=true]   # by the config's ship section

The ``sbi`` recipe of the training engine (:mod:`fakescope.training.engine`, which resolves
the config of :mod:`fakescope.training.config`, defaults < YAML < ``--set``, and writes it to
``<run.out>/config.yaml``). The run folder also gets ``last.pt`` (resumable
checkpoint, written after every epoch: rerunning the same command continues after the last
finished epoch), ``log.jsonl`` (one JSON line per epoch, also printed on stdout) and
``model.onnx``. The recipe's later stages (``quantize``, ``calibrate``, ``ship``) are those of
:mod:`fakescope.training.face_stages`.

Cache (``data.cache``, ``.npz``): ``images`` (N, 256, 256, 3) uint8 RGB loosely cropped faces,
``landmarks`` (N, 468, 2) float32 FaceMesh points in those pixels, ``labels`` (N,) 0 real /
1 fake, ``methods`` (N,) str, ``splits`` (N,) str; items of split ``train`` are trained on.
``data.val_cache`` has the same format; all of its items are validated on (frame AUC, overall
and per fake method against all reals).

Each training sample: a real face becomes, with probability ``sbi.fake_fraction``, an SBI
pseudo-fake (label 1, segmentation target = the blend mask), else the SBI real (label 0, mask
zeros; the real from :func:`~fakescope.training.sbi.sbi_pair` so that target-side colour
transforms occur on both classes). With ``data.supervised_fakes`` the cache's fakes are used
too (label 1, no segmentation target). Then: similarity alignment (image and mask with the same
matrix), then :func:`~fakescope.training.crops.augment` on the image with its
geometry (flip, shift/rotate/scale) replayed on the mask.

Loss: BCE(logit) + ``model.seg_weight`` * BCE(mask logits at input/16 vs the area-downsampled
blend mask) [+ ``loss.dcf_weight`` * smooth DCF when ``loss.kind`` is ``bce+dcf``].
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from fakescope.errors import ConfigError, InputError
from fakescope.evaluation import roc_auc_or_none
from fakescope.training.balanced import (
    BalancedSampler,
    load_store_data,
    parse_set_weights,
    validate_sets,
)
from fakescope.training.config import TrainConfig
from fakescope.training.crops import align, augment_with_mask
from fakescope.training.degrade import DegradeConfig, degrade, h264_roundtrip
from fakescope.training.effnet_lite import to_tensor
from fakescope.training.engine import RunResult, log
from fakescope.training.face_stages import calibrate, quantize, ship
from fakescope.training.losses import bayes_threshold_logit, smooth_dcf_loss
from fakescope.training.sbi import SBIConfig, sbi_pair
from fakescope.training.sbi_net import SBINet, export_onnx

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["CONFIG", "Cache", "calibrate", "fit", "quantize", "ship", "train"]

_REFIT_BATCHES = 16  # training batches that re-estimate BatchNorm after an ONNX start

_U8 = npt.NDArray[np.uint8]
_F32 = npt.NDArray[np.float32]


# --------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Cache:
    images: _U8
    landmarks: _F32
    labels: npt.NDArray[np.int64]
    methods: npt.NDArray[np.str_]
    splits: npt.NDArray[np.str_]

    def concat(self, other: Cache) -> Cache:
        """Both caches' items in one (image sides must match)."""
        if self.images.shape[1:] != other.images.shape[1:]:
            raise InputError(
                f"face caches differ in image size: {self.images.shape[1:]} vs "
                f"{other.images.shape[1:]}"
            )
        return Cache(
            images=np.concatenate([self.images, other.images]),
            landmarks=np.concatenate([self.landmarks, other.landmarks]),
            labels=np.concatenate([self.labels, other.labels]),
            methods=np.concatenate([self.methods, other.methods]),
            splits=np.concatenate([self.splits, other.splits]),
        )

    def subset_labels(self, label: int) -> Cache:
        """Only the items with this label."""
        keep = self.labels == label
        return Cache(
            self.images[keep],
            self.landmarks[keep],
            self.labels[keep],
            self.methods[keep],
            self.splits[keep],
        )

    @classmethod
    def load(cls, path: str | Path) -> Cache:
        try:
            with np.load(path) as data:
                arrays = {
                    k: data[k] for k in ("images", "landmarks", "labels", "methods", "splits")
                }
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read face cache {path}: {exc}") from exc
        images, landmarks = arrays["images"], arrays["landmarks"]
        n = len(images)
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise InputError(f"{path}: images must be (N, H, W, 3) uint8, got {images.shape}")
        if landmarks.ndim != 3 or landmarks.shape[0] != n or landmarks.shape[2] < 2:
            raise InputError(f"{path}: landmarks must be (N, 468, 2), got {landmarks.shape}")
        if any(len(arrays[k]) != n for k in ("labels", "methods", "splits")):
            raise InputError(f"{path}: labels/methods/splits must have {n} entries")
        return cls(
            images=images,
            landmarks=landmarks[:, :, :2].astype(np.float32),
            labels=arrays["labels"].astype(np.int64),
            methods=arrays["methods"].astype(str),
            splits=arrays["splits"].astype(str),
        )


def draw_batch(
    cache: Cache,
    sampler: _PoolSampler | BalancedSampler,
    step: int,
    cfg: TrainConfig,
    sbi_cfg: SBIConfig,
    rng: np.random.Generator,
    degrade_cfg: DegradeConfig,
) -> tuple[_U8, _F32, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """One training batch of :func:`make_sample` outputs for ``sampler``'s ``step``:
    ``(images, masks, labels, segmentation weights)``."""
    samples = [
        make_sample(cache, i, cfg, sbi_cfg, rng, ff, degrade_cfg)
        for i, ff in sampler.batch(rng, step, cfg.optim.batch)
    ]
    return (
        np.stack([s[0] for s in samples]),
        np.stack([s[1] for s in samples]).astype(np.float32),
        np.array([s[2] for s in samples], np.float32),
        np.array([s[3] for s in samples], np.float32),
    )


def make_sample(
    cache: Cache,
    index: int,
    cfg: TrainConfig,
    sbi_cfg: SBIConfig,
    rng: np.random.Generator,
    fake_fraction: float,
    degrade_cfg: DegradeConfig,
) -> tuple[_U8, _F32, float, float]:
    """``(aligned augmented image, aligned mask, label, segmentation weight)``. A real item
    becomes a pseudo-fake with probability ``fake_fraction``; ``degrade_cfg`` adds the
    deployment degradations after augmentation (skipped, without drawing from ``rng``, when
    both of its probabilities are 0)."""
    image, landmarks = cache.images[index], cache.landmarks[index]
    size, margin = cfg.data.input_size, cfg.data.margin
    if cache.labels[index] == 1:  # supervised fake: blend region unknown -> no seg loss
        mask = np.zeros(image.shape[:2], np.float32)
        label, seg_weight = 1.0, 0.0
    else:
        make_fake = rng.random() < fake_fraction
        real, fake, blend = sbi_pair(image, landmarks, rng, sbi_cfg)
        if make_fake:
            image, mask, label = fake, blend, 1.0
        else:
            image, mask, label = real, np.zeros_like(blend), 0.0
        seg_weight = 1.0
    crop, warped = align(image, landmarks, size, margin, mask)
    assert warped is not None
    crop, warped = augment_with_mask(crop, warped, rng)
    if degrade_cfg.p_resize > 0 or degrade_cfg.p_codec > 0:
        crop = degrade(crop, rng, degrade_cfg)
    return crop, warped, label, seg_weight


def balanced_fake_fraction(n_real: int, n_fake: int) -> float:
    """The pseudo-fake probability that makes fakes half of an epoch of ``n_real`` real and
    ``n_fake`` supervised fake items (0 when the real fakes alone are already half or more)."""
    if n_real == 0:
        return 0.0
    return float(min(1.0, max(0.0, (n_real - n_fake) / (2 * n_real))))


# --------------------------------------------------------------------------------------------
# training


def compute_loss(
    model: SBINet,
    batch: _U8,
    masks: _F32,
    labels: npt.NDArray[np.float32],
    seg_weights: npt.NDArray[np.float32],
    cfg: TrainConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    logit, seg = model(to_tensor(batch))
    y = torch.from_numpy(labels)
    cls_loss = F.binary_cross_entropy_with_logits(logit, y)
    target = F.interpolate(torch.from_numpy(masks)[:, None], size=seg.shape[-2:], mode="area")
    per_sample = F.binary_cross_entropy_with_logits(
        seg, target[:, 0].clamp(0.0, 1.0), reduction="none"
    ).mean(dim=(1, 2))
    w = torch.from_numpy(seg_weights)
    seg_loss = (per_sample * w).sum() / w.sum().clamp(min=1.0)
    loss = cls_loss + cfg.model.seg_weight * seg_loss
    parts = {"cls_loss": cls_loss.item(), "seg_loss": seg_loss.item()}
    if cfg.loss.kind == "bce+dcf":
        lc = cfg.loss
        dcf = smooth_dcf_loss(
            logit,
            y,
            bayes_threshold_logit(lc.c_miss, lc.c_fa, lc.p_target),
            lc.c_miss,
            lc.c_fa,
            lc.p_target,
            lc.dcf_temperature,
        )
        loss = loss + lc.dcf_weight * dcf
        parts["dcf_loss"] = dcf.item()
    return loss, parts


@torch.no_grad()
def predict(model: SBINet, crops: _U8, batch: int = 64) -> npt.NDArray[np.float32]:
    """Fake probabilities of aligned uint8 crops."""
    model.eval()
    out = [
        torch.sigmoid(model(to_tensor(crops[i : i + batch]))[0]).numpy()
        for i in range(0, len(crops), batch)
    ]
    return np.concatenate(out).astype(np.float32)


def validate(
    model: SBINet,
    crops: _U8,
    val: Cache,
    compressed: _U8 | None = None,
    sets: tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]] | None = None,
) -> dict[str, Any]:
    """Validation AUC, overall and per method; with ``compressed`` (the same crops after an
    H.264 CRF-40 round trip) also ``val_auc_h264`` (how the model holds up at c40-like
    compression); with ``sets`` (each crop's source set and media id) the per-set figures
    and ``val_score`` of :func:`~fakescope.training.balanced.validate_sets`."""
    probs = predict(model, crops)
    per_method: dict[str, float | None] = {}
    for method in sorted(set(val.methods[val.labels == 1].tolist())):
        keep = (val.methods == method) | (val.labels == 0)
        per_method[str(method)] = roc_auc_or_none(val.labels[keep], probs[keep])
    out: dict[str, Any] = {
        "val_auc": roc_auc_or_none(val.labels, probs),
        "val_auc_per_method": per_method,
    }
    if compressed is not None:
        out["val_auc_h264"] = roc_auc_or_none(val.labels, predict(model, compressed))
    if sets is not None:
        out.update(validate_sets(probs, val.labels, sets[0], sets[1]))
    return out


class _PoolSampler:
    """The cache recipe's epochs: a shuffled pass over ``pool``; reals become pseudo-fakes
    with probability ``fake_fraction``."""

    def __init__(self, pool: npt.NDArray[np.int64], fake_fraction: float) -> None:
        self.pool, self.fake_fraction = pool, fake_fraction
        self.order = pool

    def new_epoch(self, rng: np.random.Generator) -> None:
        self.order = rng.permutation(self.pool)

    def batch(self, rng: np.random.Generator, step: int, size: int) -> list[tuple[int, float]]:
        idx = self.order[step * size : (step + 1) * size]
        if len(idx) == 0:  # more steps than items: wrap around
            idx = rng.choice(self.pool, size=min(size, len(self.pool)), replace=False)
        return [(int(i), self.fake_fraction) for i in idx]


def _val_indices(
    datasets: npt.NDArray[np.str_], splits: npt.NDArray[np.str_], per_set: int
) -> npt.NDArray[np.int64]:
    """The ``val`` crops, at most ``per_set`` per source set (evenly spaced, so a video set
    keeps frames of every validation video)."""
    out: list[npt.NDArray[np.int64]] = []
    for name in sorted(set(datasets.tolist())):
        idx = np.nonzero((datasets == name) & (splits == "val"))[0]
        if len(idx) > per_set:
            idx = idx[np.linspace(0, len(idx) - 1, per_set).round().astype(np.int64)]
        out.append(idx)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _progress() -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )


def train(cfg: TrainConfig, out: Path) -> Path:
    """Run (or resume) the training described by ``cfg`` in the run folder ``out`` (the
    engine's, which it made); returns it."""
    rng = np.random.default_rng(cfg.run.seed)
    sbi_cfg = cfg.sbi.to_sbi_config()
    size = cfg.data.input_size

    val: Cache | None = None
    val_crops: _U8 | None = None
    val_h264: _U8 | None = None
    val_sets: tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]] | None = None
    sampler: _PoolSampler | BalancedSampler
    if cfg.data.store:
        data = load_store_data(
            cfg.data.store,
            (cfg.data.split_ratios[0], cfg.data.split_ratios[1], cfg.data.split_ratios[2]),
            cfg.data.split_seed,
            out,
            cfg.data.split_file,
        )
        unassigned = int((data.splits == "unassigned").sum())
        if unassigned:
            log(f"{unassigned} store crops are in groups {cfg.data.split_file} does not name")
        cache = Cache(
            data.store.images,  # type: ignore[arg-type]  # memory-mapped, int-indexable
            data.store.landmarks,
            data.labels,
            data.methods,
            data.splits,
        )
        weights = parse_set_weights(cfg.data.set_weights, set(data.datasets.tolist()))
        sampler = BalancedSampler(
            data,
            weights,
            cfg.data.pseudo_fraction,
            cfg.data.supervised_fakes,
            reals_only=cfg.data.reals_only,
            supervised_only=cfg.data.supervised_only,
        )
        n_per_epoch = cfg.data.samples_per_epoch or len(sampler)
        shares = ", ".join(f"{k} {v:.2f}" for k, v in zip(sampler.sets, sampler.probs, strict=True))
        log(f"store {cfg.data.store}: {len(data.labels)} crops, {len(sampler)} in train ({shares})")
        val_idx = _val_indices(data.datasets, data.splits, cfg.data.val_max_per_set)
        if len(val_idx):
            val = Cache(
                data.store.images.take(val_idx),
                data.store.landmarks[val_idx],
                data.labels[val_idx],
                data.methods[val_idx],
                data.splits[val_idx],
            )
            val_sets = (data.datasets[val_idx], data.media_ids[val_idx])
    else:
        cache = Cache.load(cfg.data.cache)
        if cfg.data.fake_cache:
            cache = cache.concat(Cache.load(cfg.data.fake_cache).subset_labels(1))
        # items of sets without a split (UTKFace) train too; "val"/"test" items never do
        in_train = ~np.isin(cache.splits, ["val", "test"])
        pool = np.repeat(np.nonzero(in_train & (cache.labels == 0))[0], cfg.data.real_repeat)
        if cfg.data.supervised_fakes:
            pool = np.concatenate([pool, np.nonzero(in_train & (cache.labels == 1))[0]])
        if len(pool) == 0:
            raise ConfigError(f"data.cache {cfg.data.cache} has no usable training items")
        n_fake = int((cache.labels[pool] == 1).sum())
        fake_fraction = (
            balanced_fake_fraction(len(pool) - n_fake, n_fake)
            if cfg.sbi.fake_fraction is None
            else cfg.sbi.fake_fraction
        )
        sampler = _PoolSampler(pool, fake_fraction)
        n_per_epoch = len(pool)
        log(
            f"train pool {len(pool)} ({n_fake} supervised fakes); pseudo-fake probability "
            f"{fake_fraction:.2f}"
        )
        if cfg.data.val_cache:
            val = Cache.load(cfg.data.val_cache)
    degrade_cfg = cfg.degrade.to_degrade_config()

    if val is not None:
        val_crops = np.stack(
            [
                align(val.images[i], val.landmarks[i], size, cfg.data.margin)[0]
                for i in range(len(val.images))
            ]
        )
        if val_sets is None:  # FF++ crop validation: also at c40-like compression
            val_h264 = np.stack([h264_roundtrip(c, 40) for c in val_crops])
        log(f"validation {len(val_crops)} ({int(val.labels.sum())} fake)")

    model = SBINet(
        cfg.model.pretrained,
        cfg.model.dropout,
        cfg.model.freeze_blocks,
        cfg.model.freeze_bn,
        cfg.model.variant,
    )
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    steps_per_epoch = math.ceil(n_per_epoch / cfg.optim.batch)
    if cfg.run.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.run.max_steps_per_epoch)
    total_steps = cfg.optim.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.optim.lr, total_steps=total_steps, pct_start=0.15
    )

    start_epoch = 0
    best_score: float | None = None
    ckpt_path = out / "last.pt"
    if cfg.model.init_from is not None and not ckpt_path.exists():
        init_path = Path(cfg.model.init_from)
        if not init_path.is_file():
            raise ConfigError(f"model.init_from: {init_path} is not a file")
        if init_path.suffix == ".onnx":
            from fakescope.training.onnx_init import refit_batchnorm, state_from_onnx

            model.load_state_dict(state_from_onnx(model, init_path))
            refit_rng = np.random.default_rng(cfg.run.seed + 1)  # the run's own rng untouched
            sampler.new_epoch(refit_rng)  # (each epoch starts with its own new_epoch)
            refit_batches = (
                to_tensor(draw_batch(cache, sampler, k, cfg, sbi_cfg, refit_rng, degrade_cfg)[0])
                for k in range(_REFIT_BATCHES)
            )
            n_refit = refit_batchnorm(model, refit_batches)
            log(f"BatchNorm statistics re-estimated on {n_refit} training samples")
        else:
            model.load_state_dict(torch.load(init_path, weights_only=True)["model"])
        log(f"warm start from {init_path}")
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True)
        if int(ckpt["total_steps"]) != total_steps:
            raise ConfigError(
                f"{ckpt_path} was trained with a {ckpt['total_steps']}-step schedule, this "
                f"config has {total_steps}: use another run.out"
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        random.setstate(ckpt["rng"]["python"])
        rng.bit_generator.state = ckpt["rng"]["numpy"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        start_epoch = int(ckpt["epoch"]) + 1
        best_score = ckpt.get("best_score")
        log(f"resumed from {ckpt_path}: epochs 0-{start_epoch - 1} done")

    t0 = time.time()
    for epoch in range(start_epoch, cfg.optim.epochs):
        model.train()
        sampler.new_epoch(rng)
        sums: dict[str, float] = {}
        seen = 0
        with _progress() as progress:
            task = progress.add_task(f"epoch {epoch}", total=steps_per_epoch, loss=float("nan"))
            for step in range(steps_per_epoch):
                batch, masks, labels, seg_w = draw_batch(
                    cache, sampler, step, cfg, sbi_cfg, rng, degrade_cfg
                )
                loss, parts = compute_loss(model, batch, masks, labels, seg_w, cfg)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                sched.step()
                parts["loss"] = loss.item()
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v * len(labels)
                seen += len(labels)
                progress.update(task, advance=1, loss=parts["loss"])
        entry: dict[str, Any] = {"epoch": epoch, "steps": steps_per_epoch, "samples": seen}
        entry.update({k: v / max(seen, 1) for k, v in sums.items()})
        entry["lr"] = float(sched.get_last_lr()[0])
        if val is not None and val_crops is not None:
            entry.update(validate(model, val_crops, val, val_h264, val_sets))
            score = entry.get("val_score", entry.get("val_auc"))
            if score is not None and (best_score is None or score > best_score):
                best_score, _improved = float(score), True
                entry["best"] = True
                export_onnx(model, size, out / "model.onnx")  # model.onnx = the best epoch
                (out / "best.json").write_text(json.dumps(entry, indent=1), encoding="utf-8")
        entry["elapsed_s"] = round(time.time() - t0, 1)
        tmp = ckpt_path.with_suffix(".pt.tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch,
                "total_steps": total_steps,
                "best_score": best_score,
                "rng": {
                    "python": random.getstate(),
                    "numpy": rng.bit_generator.state,
                    "torch": torch.get_rng_state(),
                },
                "config": cfg.to_dict(),
            },
            tmp,
        )
        os.replace(tmp, ckpt_path)
        line = json.dumps(entry)
        print(line, flush=True)
        with (out / "log.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    if best_score is None:  # no validation: the last epoch is the model
        export_onnx(model, size, out / "model.onnx")
    log(f"exported {out / 'model.onnx'} (best validation score {best_score})")
    return out


CONFIG = TrainConfig


def fit(cfg: TrainConfig, run_dir: Path) -> RunResult:
    """The engine's entry point: train, export ``model.onnx``; figures of the best epoch."""
    out = train(cfg, run_dir)
    best = out / "best.json"
    metrics = json.loads(best.read_text(encoding="utf-8")) if best.is_file() else {}
    return RunResult(out, {"model": out / "model.onnx"}, metrics)

"""Train the one-class detector (OC-FakeDect-style): a small convolutional VAE on real faces
only, whose reconstruction error is its score; export it as a face-manipulation detector.
The ``vae`` recipe of the training engine (:mod:`fakescope.training.engine`). The shipped
baseline ``oneclass-vae-v1`` (MODEL_CARD.md has the calibration commands):

    fakescope train configs/vae_v1.yaml
    fakescope train --ship runs/vae_v1     # the config's ship section (name, file, ...)

Data: the real crops of the face store's *train* split (identity groups of ``data.splits``, a
v2/v3 run's ``splits.json``, so validation and calibration identities are never seen), aligned
exactly as the scan aligns a face (5 landmarks, ArcFace template, ``data.size`` px, margin
0.125). No fake is used for training. Validation (``report.json``): per set of the val split,
the AUC of the score on real vs fake crops. The exported graph takes the scan's normalised crop
and returns ``fake_probability`` = sigmoid((log reconstruction MSE - m) / s), with m and s the
mean and standard deviation of the log error on the training reals (so "more unusual than the
reals" reads as more fake); ``fakescope calibrate`` then fits the weight's calibrators as for
any detector. Resumable (``last.pt``); fixed epochs, nothing selected on the val split.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from fakescope.errors import ConfigError
from fakescope.training.config import RunConfig
from fakescope.training.crops import aligned_crops
from fakescope.training.effnet_lite import MEAN, STD
from fakescope.training.engine import RunResult, log
from fakescope.training.ship import FaceShipSection, write_face_weights

__all__ = ["CONFIG", "VAE", "VAEConfig", "VAEShip", "export_onnx", "fit", "ship"]

_U8 = npt.NDArray[np.uint8]


@dataclass
class VAEData:
    """The face store, its identity split and the crops' alignment."""

    store: str = "cache/faces_v2"  # face store folder (fakescope.training.store)
    splits: str = "configs/splits/faces_v2.json"  # a run's splits.json (its ``groups``)
    size: int = 96  # aligned crop side (a multiple of 16)
    margin: float = 0.125
    limit: int = 0  # at most this many training crops (0: all)
    val_per_set: int = 600  # validation crops per set

    def validate(self) -> None:
        if self.size < 16 or self.size % 16:
            raise ConfigError("data.size: must be a positive multiple of 16")
        if self.margin < 0 or self.limit < 0 or self.val_per_set < 1:
            raise ConfigError("data: margin and limit must be >= 0, val_per_set >= 1")


@dataclass
class VAEModel:
    latent: int = 128  # size of the Gaussian code
    beta: float = 0.01  # weight of the KL term

    def validate(self) -> None:
        if self.latent < 1 or self.beta < 0:
            raise ConfigError("model: latent must be >= 1, beta >= 0")


@dataclass
class VAEOptim:
    epochs: int = 12
    batch: int = 64
    lr: float = 1e-3  # Adam

    def validate(self) -> None:
        if self.epochs < 1 or self.batch < 1 or self.lr <= 0:
            raise ConfigError("optim: epochs and batch must be >= 1, lr > 0")


@dataclass
class VAERun(RunConfig):
    out: str = "runs/vae_v1"


@dataclass
class VAEShip(FaceShipSection):
    """A face network's ship section (:class:`~fakescope.training.ship.FaceShipSection`);
    input size and margin are ``data.size`` and ``data.margin``."""

    architecture: str = (
        "Convolutional VAE (OC-FakeDect-style), score = sigmoid((log reconstruction MSE - m) / s)"
    )
    trained_on: str = "Real faces only, never a fake: the face store's train identity groups"


@dataclass
class VAEConfig:
    data: VAEData = field(default_factory=VAEData)
    model: VAEModel = field(default_factory=VAEModel)
    optim: VAEOptim = field(default_factory=VAEOptim)
    run: VAERun = field(default_factory=VAERun)
    ship: VAEShip = field(default_factory=VAEShip)


CONFIG = VAEConfig


def _block(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def _up(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)
    )


class VAE(nn.Module):
    """``size`` -> ``size / 16`` px (96 -> 6) over four stride-2 convolutions (32-256
    channels), a ``latent``-d Gaussian code, and the mirror decoder."""

    def __init__(self, size: int, latent: int) -> None:
        super().__init__()
        self.side = side = size // 16
        self.enc = nn.Sequential(_block(3, 32), _block(32, 64), _block(64, 128), _block(128, 256))
        self.mu = nn.Linear(256 * side * side, latent)
        self.logvar = nn.Linear(256 * side * side, latent)
        self.fc = nn.Linear(latent, 256 * side * side)
        self.dec = nn.Sequential(
            _up(256, 128), _up(128, 64), _up(64, 32), nn.ConvTranspose2d(32, 3, 4, 2, 1)
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x).flatten(1)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.dec(self.fc(z).view(-1, 256, self.side, self.side))
        return out

    def log_error(self, x: torch.Tensor) -> torch.Tensor:
        """log mean squared error of the reconstruction from the mean code, per item."""
        recon = self.decode(self.encode(x)[0])
        return torch.log(((recon - x) ** 2).mean(dim=(1, 2, 3)) + 1e-8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def _normalise(batch: _U8) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255
    return (torch.from_numpy(batch).permute(0, 3, 1, 2).float() - mean) / std


def _log_errors(model: VAE, crops: _U8, batch: int = 128) -> npt.NDArray[np.float64]:
    """log mean squared reconstruction error (from the mean code) per crop."""
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(crops), batch):
            x = _normalise(crops[start : start + batch])
            out.append(model.log_error(x).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


class _Score(nn.Module):
    """sigmoid((log reconstruction MSE of the mean code - m) / s)."""

    def __init__(self, vae: VAE, m: float, s: float) -> None:
        super().__init__()
        self.vae, self.m, self.s = vae, m, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid((self.vae.log_error(x) - self.m) / self.s)


def export_onnx(model: VAE, size: int, m: float, s: float, path: Path) -> Path:
    """The scan-facing graph: normalised crops -> ``fake_probability`` (N,)."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Score(model, m, s).eval(),  # else the exporter restores train mode after
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=["input"],
            output_names=["fake_probability"],
            dynamic_axes={"input": {0: "n"}, "fake_probability": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    return path


def fit(cfg: VAEConfig, run_dir: Path) -> RunResult:
    """The engine's entry point: train (resuming ``last.pt``), export ``model.onnx`` and write
    ``report.json`` (its figures are the run's metrics)."""
    from fakescope.evaluation import roc_auc
    from fakescope.training.checkpoint import resume, save_checkpoint
    from fakescope.training.store import FaceStore

    data, optim, seed = cfg.data, cfg.optim, cfg.run.seed
    store = FaceStore.open(Path(data.store))
    groups = json.loads(Path(data.splits).read_text())["groups"]
    rows = store.rows
    split = np.asarray([groups.get(r["group"], "none") for r in rows])
    real = np.asarray([r["label"] == "real" for r in rows])
    train_idx = np.flatnonzero((split == "train") & real)[: data.limit or None]
    log(f"{len(train_idx)} real training crops; aligning at {data.size} px")
    train = aligned_crops(store, train_idx, data.size, data.margin)
    model = VAE(data.size, cfg.model.latent)
    opt = torch.optim.Adam(model.parameters(), lr=optim.lr)
    last = run_dir / "last.pt"
    start = resume(last, model, opt)
    for epoch in range(start, optim.epochs):
        rng = np.random.default_rng([seed, epoch])
        model.train()
        losses = []
        t0 = time.time()
        order = rng.permutation(len(train))
        steps = range(0, max(len(train) - optim.batch + 1, 1), optim.batch)
        for b in steps[: cfg.run.max_steps_per_epoch]:
            batch = train[order[b : b + optim.batch]]
            flip = rng.random(len(batch)) < 0.5
            batch[flip] = batch[flip][:, :, ::-1]
            x = _normalise(np.ascontiguousarray(batch))
            recon, mu, logvar = model(x)
            rec = ((recon - x) ** 2).mean()
            kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
            loss = rec + cfg.model.beta * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        save_checkpoint(last, model, opt, epoch)
        log(f"epoch {epoch}: loss {np.mean(losses):.4f} ({time.time() - t0:.0f} s)")
    errors = _log_errors(model, train)
    m, s = float(errors.mean()), float(errors.std() + 1e-6)
    report: dict[str, Any] = {"train_reals": len(train), "log_error_mean": m, "log_error_std": s}
    val = {}
    for dataset in sorted({r["dataset"] for r in rows}):
        pick = np.flatnonzero(
            (split == "val") & np.asarray([r["dataset"] == dataset for r in rows])
        )
        pick = np.random.default_rng([seed, 3]).permutation(pick)[: data.val_per_set]
        labels = real[pick] == 0
        if 0 < labels.sum() < len(labels):
            err = _log_errors(model, aligned_crops(store, pick, data.size, data.margin))
            val[dataset] = {"n": len(pick), "auc": round(roc_auc(labels, err), 4)}
    report["val_crop_auc"] = val
    onnx = export_onnx(model, data.size, m, s, run_dir / "model.onnx")
    (run_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(json.dumps(report))
    return RunResult(run_dir, {"model": onnx, "report": run_dir / "report.json"}, report)


def ship(cfg: VAEConfig, run_dir: Path) -> Path:
    """The engine's ship stage: ``model.onnx`` as ``cfg.ship`` says; returns its weight JSON."""
    return write_face_weights(run_dir / "model.onnx", cfg.ship, cfg.data.size, cfg.data.margin)

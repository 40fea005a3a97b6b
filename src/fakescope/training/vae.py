"""Train the one-class detector (OC-FakeDect-style): a small convolutional VAE on real faces
only, whose reconstruction error is its score; export it as a face-manipulation detector.
The shipped baseline ``oneclass-vae-v1`` (MODEL_CARD.md has the calibration commands):

    python3 -m fakescope.training.vae --store cache/faces_v2 \\
        --splits configs/splits/faces_v2.json --out runs/vae_v1
    python3 -m fakescope.training.ship runs/vae_v1/model.onnx --name oneclass-vae-v1 \\
        --file oneclass_vae_v1.onnx --input-size 96 --margin 0.125 --version 0.7.0 \\
        --architecture "..." --trained-on "..."

Data: the real crops of the face store's *train* split (identity groups from a v2/v3 run's
``splits.json``, so validation and calibration identities are never seen), aligned exactly as
the scan aligns a face (5 landmarks, ArcFace template, ``--size`` px, margin 0.125). No fake is
used for training. Validation (``report.json``): per set of the val split, the AUC of the
score on real vs fake crops. The exported graph takes the scan's normalised crop and returns
``fake_probability`` = sigmoid((log reconstruction MSE - m) / s), with m and s the mean and
standard deviation of the log error on the training reals (so "more unusual than the reals"
reads as more fake); ``fakescope calibrate`` then fits the weight's calibrators as for any
detector. Resumable (``last.pt``); fixed epochs, nothing selected on the val split.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from fakescope.training.crops import aligned_crops
from fakescope.training.effnet_lite import MEAN, STD

__all__ = ["main"]

_U8 = npt.NDArray[np.uint8]


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--splits", type=Path, required=True, help="a run's splits.json (groups)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--margin", type=float, default=0.125)
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--beta", type=float, default=0.01, help="weight of the KL term")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="at most this many crops per split")
    p.add_argument("--val-per-set", type=int, default=600)
    return p.parse_args(argv)


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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def _build(size: int, latent: int) -> VAE:
    return VAE(size, latent)


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
            recon = model.decode(model.encode(x)[0])
            out.append(torch.log(((recon - x) ** 2).mean(dim=(1, 2, 3)) + 1e-8).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


class _Score(nn.Module):
    """sigmoid((log reconstruction MSE of the mean code - m) / s)."""

    def __init__(self, vae: VAE, m: float, s: float) -> None:
        super().__init__()
        self.vae, self.m, self.s = vae, m, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recon = self.vae.decode(self.vae.encode(x)[0])
        err = torch.log(((recon - x) ** 2).mean(dim=(1, 2, 3)) + 1e-8)
        return torch.sigmoid((err - self.m) / self.s)


def export_onnx(model: VAE, size: int, m: float, s: float, path: Path) -> Path:
    """The scan-facing graph: normalised crops -> ``fake_probability`` (N,)."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Score(model, m, s),
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=["input"],
            output_names=["fake_probability"],
            dynamic_axes={"input": {0: "n"}, "fake_probability": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from fakescope.evaluation import roc_auc
    from fakescope.training.checkpoint import resume, save_checkpoint
    from fakescope.training.store import FaceStore

    args = _arguments(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    store = FaceStore.open(args.store)
    groups = json.loads(args.splits.read_text())["groups"]
    rows = store.rows
    split = np.asarray([groups.get(r["group"], "none") for r in rows])
    real = np.asarray([r["label"] == "real" for r in rows])
    lim = args.limit or None
    train_idx = np.flatnonzero((split == "train") & real)[:lim]
    _log(f"{len(train_idx)} real training crops; aligning at {args.size} px")
    train = aligned_crops(store, train_idx, args.size, args.margin)
    model = _build(args.size, args.latent)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    last = args.out / "last.pt"
    start = resume(last, model, opt)
    for epoch in range(start, args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        model.train()
        losses = []
        t0 = time.time()
        order = rng.permutation(len(train))
        for b in range(0, max(len(train) - args.batch + 1, 1), args.batch):
            batch = train[order[b : b + args.batch]]
            flip = rng.random(len(batch)) < 0.5
            batch[flip] = batch[flip][:, :, ::-1]
            x = _normalise(np.ascontiguousarray(batch))
            recon, mu, logvar = model(x)
            rec = ((recon - x) ** 2).mean()
            kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
            loss = rec + args.beta * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        save_checkpoint(last, model, opt, epoch)
        _log(f"epoch {epoch}: loss {np.mean(losses):.4f} ({time.time() - t0:.0f} s)")
    errors = _log_errors(model, train)
    m, s = float(errors.mean()), float(errors.std() + 1e-6)
    report: dict[str, Any] = {"train_reals": len(train), "log_error_mean": m, "log_error_std": s}
    val = {}
    for dataset in sorted({r["dataset"] for r in rows}):
        pick = np.flatnonzero(
            (split == "val") & np.asarray([r["dataset"] == dataset for r in rows])
        )
        pick = np.random.default_rng([args.seed, 3]).permutation(pick)[: args.val_per_set]
        labels = real[pick] == 0
        if 0 < labels.sum() < len(labels):
            err = _log_errors(model, aligned_crops(store, pick, args.size, args.margin))
            val[dataset] = {"n": len(pick), "auc": round(roc_auc(labels, err), 4)}
    report["val_crop_auc"] = val
    export_onnx(model, args.size, m, s, args.out / "model.onnx")
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    _log(json.dumps(report))
    return report


if __name__ == "__main__":
    main()

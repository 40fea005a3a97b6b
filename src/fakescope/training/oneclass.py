"""One-class detector in feature space: a frozen ImageNet EfficientNet-Lite0 (never trained on
fakes) as the fixed front, and a small VAE (or a plain Gaussian) fitted on the features of real
face crops only; the score is how unusual a crop's features are to that model.

    python3 -m fakescope.training.oneclass --store cache/faces_v2 \\
        --splits runs/sbi_v3/splits.json --out runs/oneclass_v1 \\
        --features multi final stats maps --latent 32 --epochs 60 --map-epochs 15
    # then, only if a variant is worth shipping (writes OUT/model.onnx):
    PYTHONPATH=src python3 -m fakescope.training.oneclass ... --export VARIANT

Data: as :mod:`fakescope.training.vae` - the real crops of the store's *train* split (identity
groups of a run's ``splits.json``) aligned as the scan aligns a face (``--size`` 192 px,
margin 0.125, ImageNet mean/std); no fake is ever used for fitting. Features (extracted once,
cached as npz under ``--cache``):

* ``final``: the pooled 1280-d head feature;
* ``stats``: per-channel spatial mean and std of the block outputs at stride 2/4/8/16/16
  (16+24+40+80+112 channels -> 544-d), the low-level statistics;
* ``maps``: the stride-16 block output (112 x 12 x 12), scored per location and mean/max pooled;
* ``multi``: PaDiM-style, the stride 4/8/16 block outputs average-pooled to the 12 x 12 grid
  and concatenated (24+40+112 = 176 channels), scored as ``maps``.

A non-parametric baseline ``knn`` (cosine distance to the k nearest training reals, k = 1/5/20;
its m and s on the training reals are leave-one-out).

Per feature choice two models: ``gauss`` (per-dim standardised, Ledoit-Wolf covariance,
squared Mahalanobis distance; per location for ``maps``) and ``vae`` (MLP, shared over the
locations with a learned position embedding for ``maps``, unit-variance Gaussian decoder):
scores ``rec`` (mean squared feature reconstruction error from the mean code), ``elbo``
(negative ELBO with the mean code) and ``lat`` (Ledoit-Wolf Mahalanobis of the mean code).
``report.json``: the val-split AUC (fake = positive) per set for every variant, plus the mean
z-score of the val reals (held-out reals drifting from the training reals shows overfitting).
Export: ``fake_probability`` = sigmoid((score - m) / s), m and s the score's mean and std on
the training reals, backbone + scorer in one ONNX graph (opset 17), checked against torch.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from fakescope.evaluation import roc_auc_or_none
from fakescope.training.crops import aligned_crops
from fakescope.training.store import FaceStore
from fakescope.training.vae import _normalise

__all__ = ["main"]

_F32 = npt.NDArray[np.float32]
TAPS = (0, 2, 4, 7, 10)  # block outputs at stride 2, 4, 8, 16, 16
MAP_BLOCK = 10
MULTI = (2, 4, 10)  # stride 4, 8, 16 block outputs, average-pooled to the stride-16 grid
GROUPS = {"base": ("final", "stats", "maps"), "multi": ("multi",)}
_FULL = range(16)  # MBConv blocks of Lite0


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--splits", type=Path, required=True, help="a run's splits.json (groups)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default OUT/features)")
    p.add_argument(
        "--features",
        nargs="+",
        choices=("final", "stats", "maps", "multi"),
        default=["final", "stats", "maps"],
    )
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--margin", type=float, default=0.125)
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--beta", type=float, default=1.0, help="weight of the KL term")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--map-epochs", type=int, default=15, help="epochs of the maps VAE")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="at most this many crops per split")
    p.add_argument("--export", default="", help="variant to export, e.g. stats/gauss/maha")
    return p.parse_args(argv)


# -- features -------------------------------------------------------------------------------


class Features(nn.Module):
    """Frozen ImageNet Lite0 -> one feature choice: (N, D) vectors or (N, L, C) location maps."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        from fakescope.training.effnet_lite import imagenet_lite0

        self.kind = kind
        self.net = imagenet_lite0(1000).eval()
        for p in self.net.parameters():
            p.requires_grad = False
        last = {"final": 15, "stats": max(TAPS), "maps": MAP_BLOCK, "multi": MAP_BLOCK}[kind]
        self.net._blocks = self.net._blocks[: last + 1]

    def every(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """All the feature choices the blocks kept here reach, in one pass."""
        b = self.net
        h = b.act(b._bn0(b._conv_stem(x)))
        out: dict[str, torch.Tensor] = {}
        stats: list[torch.Tensor] = []
        multi: list[torch.Tensor] = []
        for i, block in enumerate(b._blocks):
            h = block(h)
            if i in TAPS:
                mean = h.mean(dim=(2, 3))
                var = (h - mean[:, :, None, None]).pow(2).mean(dim=(2, 3))
                stats += [mean, torch.sqrt(var + 1e-6)]
            if i == max(TAPS):
                out["stats"] = torch.cat(stats, dim=1)
            if i in MULTI:
                multi.append(h)
            if i == MAP_BLOCK:
                out["maps"] = h.flatten(2).transpose(1, 2)  # (N, L, C)
                side = h.shape[-1]
                pooled = [nn.functional.avg_pool2d(m, m.shape[-1] // side) for m in multi]
                out["multi"] = torch.cat(pooled, dim=1).flatten(2).transpose(1, 2)
        if len(b._blocks) == len(_FULL):
            out["final"] = b.act(b._bn1(b._conv_head(h))).mean(dim=(2, 3))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.every(x)[self.kind]


def extract(args: argparse.Namespace, split: str) -> dict[str, Any]:
    """The feature choices of one split (train: reals only), cached as npz per group."""
    data: dict[str, Any] = {}
    for group, kinds in GROUPS.items():
        if group == "base" or any(k in args.features for k in kinds):
            data.update(_extract(args, split, group, kinds))
    return data


def _extract(
    args: argparse.Namespace, split: str, group: str, kinds: tuple[str, ...]
) -> dict[str, Any]:
    tag = "" if group == "base" else f"_{group}"
    path = args.cache / f"{split}_{args.size}_{args.limit}{tag}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    store = FaceStore.open(args.store)
    groups = json.loads(args.splits.read_text())["groups"]
    rows = store.rows
    which = np.asarray([groups.get(r["group"], "none") for r in rows])
    fake = np.asarray([r["label"] == "fake" for r in rows])
    pick = np.flatnonzero((which == split) & ~fake if split == "train" else which == split)
    pick = pick[: args.limit or None]
    net = Features("final")
    out: dict[str, list[_F32]] = {k: [] for k in kinds}
    t0 = time.time()
    with torch.no_grad():
        for s in range(0, len(pick), 64):
            x = _normalise(aligned_crops(store, pick[s : s + 64], args.size, args.margin))
            for k, v in net.every(x).items():
                if k in kinds:
                    out[k].append(v.numpy().astype(np.float16 if v.dim() == 3 else np.float32))
            if s % 1280 == 0:
                _log(f"{split}: {s + len(x)}/{len(pick)} crops ({time.time() - t0:.0f} s)")
    data: dict[str, Any] = {k: np.concatenate(v) for k, v in out.items()}
    data["labels"] = fake[pick].astype(np.int64)
    data["datasets"] = np.asarray([rows[int(i)]["dataset"] for i in pick])
    data["index"] = pick
    data["seconds"] = np.float64(time.time() - t0)
    args.cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    _log(f"{split}: {len(pick)} crops extracted in {data['seconds']:.0f} s")
    return data


# -- scorers ----------------------------------------------------------------------------------


def _ledoit_wolf(x: _F32) -> tuple[_F32, _F32]:
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf().fit(x.astype(np.float64))
    return lw.location_.astype(np.float32), lw.precision_.astype(np.float32)


def _maha(d: torch.Tensor, prec: torch.Tensor) -> torch.Tensor:
    """Squared Mahalanobis of ``d``: (N, D) with a precision (D, D), or (N, L, D) with (L, D, D)."""
    if prec.dim() == 2:
        return ((d @ prec) * d).sum(-1)
    return (torch.matmul(d.transpose(0, 1), prec) * d.transpose(0, 1)).sum(-1).transpose(0, 1)


def _pool(score: torch.Tensor, name: str) -> dict[str, torch.Tensor]:
    if score.dim() == 1:
        return {name: score}
    return {f"{name}_mean": score.mean(1), f"{name}_max": score.amax(1)}


class Standard(nn.Module):
    """Per-dimension standardisation fitted on the training reals (per channel for maps)."""

    center: torch.Tensor
    scale: torch.Tensor

    def __init__(self, x: _F32) -> None:
        super().__init__()
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        self.register_buffer("center", torch.tensor(flat.mean(0), dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(flat.std(0) + 1e-3, dtype=torch.float32))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return (f - self.center) / self.scale


class Gauss(nn.Module):
    """Ledoit-Wolf Gaussian of the standardised features (one per location for maps)."""

    mu: torch.Tensor
    prec: torch.Tensor

    def __init__(self, x: _F32) -> None:
        super().__init__()
        self.std = Standard(x)
        z = self.std(torch.from_numpy(x.astype(np.float32))).numpy()
        fits = [_ledoit_wolf(zi) for zi in ([z] if z.ndim == 2 else z.transpose(1, 0, 2))]
        mu, prec = (
            fits[0]
            if z.ndim == 2
            else (np.stack([f[0] for f in fits]), np.stack([f[1] for f in fits]))
        )
        self.register_buffer("mu", torch.from_numpy(mu))
        self.register_buffer("prec", torch.from_numpy(prec))

    def forward(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        return _pool(_maha(self.std(f) - self.mu, self.prec), "maha")


class KNN(nn.Module):
    """Cosine distance to the nearest training reals (standardised vectors): a non-parametric
    baseline; the bank (all training reals) becomes part of the model."""

    bank: torch.Tensor

    def __init__(self, x: _F32) -> None:
        super().__init__()
        self.std = Standard(x)
        bank = self.std(torch.from_numpy(x.astype(np.float32)))
        self.register_buffer("bank", nn.functional.normalize(bank, dim=1).T.contiguous())
        self.loo = False  # scoring the bank itself: leave each member's own match out

    def forward(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        sim = nn.functional.normalize(self.std(f), dim=1) @ self.bank
        size = self.bank.shape[1] - int(self.loo)  # the bank may hold fewer than 20 reals
        top = sim.topk(min(20, size) + int(self.loo), dim=1).values[:, int(self.loo) :]
        return {f"knn{k}": 1 - top[:, : min(k, size)].mean(1) for k in (1, 5, 20)}


class VAE(nn.Module):
    """MLP VAE over standardised features; for (N, L, C) maps it is a 1x1-conv VAE shared over
    the locations, with a learned position embedding fed to encoder and decoder."""

    lat_mu: torch.Tensor
    lat_prec: torch.Tensor

    def __init__(self, x: _F32, latent: int, hidden: int) -> None:
        super().__init__()
        self.std = Standard(x)
        dim, locs = x.shape[-1], (x.shape[1] if x.ndim == 3 else 0)
        emb = 16 if locs else 0
        self.pos = nn.Parameter(torch.zeros(max(locs, 1), emb))
        self.enc = nn.Sequential(
            nn.Linear(dim + emb, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
        )
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.dec = nn.Sequential(
            nn.Linear(latent + emb, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, dim),
        )
        self.register_buffer("lat_mu", torch.zeros(latent))
        self.register_buffer("lat_prec", torch.eye(latent))

    def _cat(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() == 2:
            return h
        return torch.cat([h, self.pos.unsqueeze(0).expand(h.shape[0], -1, -1)], dim=-1)

    def encode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(self._cat(z))
        return self.mu(h), self.logvar(h).clamp(-10, 10)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.dec(self._cat(code))
        return out

    def terms(self, z: torch.Tensor, sample: bool) -> tuple[torch.Tensor, ...]:
        mu, logvar = self.encode(z)
        code = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        sq = (self.decode(code) - z).pow(2)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
        return sq, kl, mu

    def forward(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        sq, kl, mu = self.terms(self.std(f), sample=False)
        scores = {**_pool(sq.mean(-1), "rec"), **_pool(0.5 * sq.sum(-1) + kl, "elbo")}
        if mu.dim() == 2:
            scores["lat"] = _maha(mu - self.lat_mu, self.lat_prec)
        return scores


def fit_vae(x: _F32, args: argparse.Namespace) -> VAE:
    torch.manual_seed(args.seed)
    model = VAE(x, args.latent, args.hidden)
    data = model.std(torch.from_numpy(x.astype(np.float32))).detach()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    batch = 64 if x.ndim == 3 else 128
    epochs = args.map_epochs if x.ndim == 3 else args.epochs
    steps = epochs * max(len(x) // batch, 1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps)
    rng = np.random.default_rng(args.seed)
    model.train()
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        losses = []
        for s in range(0, len(x) - batch + 1, batch):
            z = data[order[s : s + batch]]
            sq, kl, _ = model.terms(z, sample=True)
            loss = (0.5 * sq.sum(-1) + args.beta * kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        if epoch % 10 == 0 or epoch == epochs - 1:
            _log(f"  vae epoch {epoch}: loss/dim {np.mean(losses) / x.shape[-1]:.4f}")
    model.eval()
    if x.ndim == 2:
        with torch.no_grad():
            mu = model.encode(data)[0].numpy()
        loc, prec = _ledoit_wolf(mu)
        model.lat_mu.copy_(torch.from_numpy(loc))
        model.lat_prec.copy_(torch.from_numpy(prec))
    return model


def scores(model: nn.Module, x: _F32) -> dict[str, npt.NDArray[np.float64]]:
    out: dict[str, list[npt.NDArray[np.float64]]] = {}
    with torch.no_grad():
        for s in range(0, len(x), 256):
            for k, v in model(torch.from_numpy(x[s : s + 256].astype(np.float32))).items():
                out.setdefault(k, []).append(v.numpy().astype(np.float64))
    return {k: np.concatenate(v) for k, v in out.items()}


# -- export ------------------------------------------------------------------------------------


class Scan(nn.Module):
    """normalised crops -> fake_probability = sigmoid((score - m) / s)."""

    def __init__(self, kind: str, scorer: nn.Module, key: str, m: float, s: float) -> None:
        super().__init__()
        self.features, self.scorer, self.key, self.m, self.s = Features(kind), scorer, key, m, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid((self.scorer(self.features(x))[self.key] - self.m) / self.s)


def export(scan: Scan, x: torch.Tensor, path: Path) -> dict[str, float]:
    """Write the graph and check onnxruntime against torch on ``x`` (real normalised crops)."""
    import warnings

    from fakescope._runtime import onnx_session

    scan.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            scan,
            (x[:1],),
            str(path),
            input_names=["input"],
            output_names=["fake_probability"],
            dynamic_axes={"input": {0: "n"}, "fake_probability": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    with torch.no_grad():
        ref = scan(x).numpy()
    sess = onnx_session(path, 2)
    got = sess.run(None, {"input": x.numpy()})[0]
    sess.run(None, {"input": x.numpy()})
    t0 = time.perf_counter()
    for _ in range(5):
        sess.run(None, {"input": x.numpy()})
    ms = (time.perf_counter() - t0) / 5 / len(x) * 1000
    return {"max_abs_diff": float(np.abs(got - ref).max()), "ms_per_crop_ort_2threads": ms}


# -- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = _arguments(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.cache is None:
        args.cache = args.out / "features"
    train, val = extract(args, "train"), extract(args, "val")
    report: dict[str, Any] = {
        "train_reals": len(train["labels"]),
        "val_crops": len(val["labels"]),
        "extract_seconds": {"train": float(train["seconds"]), "val": float(val["seconds"])},
        "variants": {},
    }
    fitted: dict[str, tuple[str, nn.Module, float, float]] = {}
    real_val = val["labels"] == 0
    val_sets = {name: val["datasets"] == name for name in sorted(set(val["datasets"].tolist()))}
    for kind in args.features:
        xt, xv = train[kind].astype(np.float32), val[kind].astype(np.float32)
        for name in ("gauss", "vae") if train[kind].ndim == 3 else ("gauss", "vae", "knn"):
            t0 = time.time()
            _log(f"{kind}/{name}: fitting on {xt.shape}")
            model = {"gauss": Gauss, "knn": KNN}[name](xt) if name != "vae" else fit_vae(xt, args)
            fit_s = time.time() - t0
            if isinstance(model, KNN):
                model.loo = True
            st = scores(model, xt)
            if isinstance(model, KNN):
                model.loo = False
            sv = scores(model, xv)
            for key in sv:
                m, s = float(st[key].mean()), float(st[key].std() + 1e-9)
                variant = f"{kind}/{name}/{key}"
                fitted[variant] = (kind, model, m, s)
                aucs = {
                    name: roc_auc_or_none(val["labels"][m], sv[key][m], ndigits=4)
                    for name, m in val_sets.items()
                }
                entry: dict[str, Any] = {
                    "auc": {name: a for name, a in aucs.items() if a is not None},
                    "val_real_z": round(float((sv[key][real_val].mean() - m) / s), 3),
                    "fit_seconds": round(fit_s, 1),
                    "m": m,
                    "s": s,
                }
                entry["mean_auc"] = round(float(np.mean(list(entry["auc"].values()))), 4)
                report["variants"][variant] = entry
                _log(f"{variant}: {entry['auc']} val-real z {entry['val_real_z']}")
    if args.export:
        kind, model, m, s = fitted[args.export]
        some = val["index"][np.linspace(0, len(val["index"]) - 1, 16).astype(int)]
        crops = _normalise(aligned_crops(FaceStore.open(args.store), some, args.size, args.margin))
        check = export(
            Scan(kind, model, args.export.split("/")[-1], m, s), crops, args.out / "model.onnx"
        )
        report["export"] = {"variant": args.export, "path": str(args.out / "model.onnx"), **check}
        _log(f"exported: {report['export']}")
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()

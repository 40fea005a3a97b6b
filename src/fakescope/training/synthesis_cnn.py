"""Train the synthesis detector's CNN branch (EfficientNet-Lite0, ImageNet init) on
native-resolution patches of whole images, export it to ONNX, calibrate and measure it.

    python3 -m fakescope.training.synthesis_cnn --data ../shared/data/stylegan2_ffhq \\
        --reals ../shared/data/utkface_real ../shared/data/dfdc_faces \\
        --video-reals ../shared/data/ffpp_c23_videos --fp-videos ../shared/data/ffpp_c40_videos \\
        --out runs/synth_cnn_v1
    python3 -m fakescope.training.synthesis_cnn ship runs/synth_cnn_v1 synth_cnn_v1

Data: the generated-image set split by image exactly as the frequency branch splits it
(``split_by_image``, same seed: train / calib / test); real-only images drawn from each
``--reals`` set (its ``real`` rows) and frames of the real videos of ``--video-reals`` (so
whole video frames are seen as real); and self-made fakes (real images down-scaled by 2 or 4
and up-sampled back by a transposed convolution, nearest or bilinear), so that the network
learns up-sampling traces rather than one GAN. Every sample, of either class, goes through the
same random crop / resize / blur / JPEG 30-95 degradations, then a random patch is cut at
native resolution. A fixed number of epochs (no selection on held-out data); ``last.pt``
after every epoch makes a run resumable. The calib split only fits the Platt calibrator; the
test split only reports (``report.json``): clean AUC with its bootstrap interval, AUC after
JPEG-50 re-compression and after a 75 % down-scale of both classes, ECE, and the share of
real frames of ``--fp-videos`` (e.g. the dev set's real videos) called generated.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope import __version__
from fakescope.synthesis import CnnSynthesisDetector, CnnSynthesisWeights, limit_side
from fakescope.training.synthesis import (
    Degradation,
    Item,
    degrade,
    generator_upsample,
    jpeg,
    load_manifest,
    split_by_image,
)

__all__ = ["main", "read_video_frames"]

_U8 = npt.NDArray[np.uint8]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MAX_SIDE = 1024
_MODES = ("transposed", "nearest", "bilinear")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _read(path: str) -> _U8:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode {path}")
    return limit_side(np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8), MAX_SIDE)


def read_video_frames(path: str, count: int) -> list[_U8]:
    """``count`` frames spread evenly over a video (RGB, shorter side at most 1024)."""
    cap = cv2.VideoCapture(path)
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        out: list[_U8] = []
        for index in np.linspace(0, max(total - 1, 0), count).round().astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, bgr = cap.read()
            if ok:
                rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                out.append(limit_side(rgb, MAX_SIDE))
        return out
    finally:
        cap.release()


def _real_videos(root: Path) -> list[str]:
    with (root / "MANIFEST.tsv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return sorted(str(root / r["file"]) for r in rows if r["label"].strip().lower() == "real")


@dataclass
class Pools:
    """Decoded images by role (each a list of RGB uint8 arrays)."""

    gen_fake: list[_U8]
    gen_real: list[_U8]
    other_real: list[_U8]


def _write_items(root: Path, split_of: dict[str, str], out: Path) -> list[Path]:
    """``<out>/calib.tsv`` and ``<out>/test.tsv``: those splits of the generated-image set as
    ``fakescope eval`` reads them, so ``fakescope eval <out>/test.tsv --synthesis-detector
    <out>/weights.json`` measures the test split through the scan pipeline."""
    from fakescope.data import load_dataset, write_manifest

    by_name = {Path(p).resolve(): s for p, s in split_of.items()}
    items = load_dataset("manifest", root)
    return [
        write_manifest(
            [i for i in items if by_name.get(Path(i.path).resolve()) == split],
            out / f"{split}.tsv",
        )
        for split in ("calib", "test")
    ]


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="generated-image set (MANIFEST.tsv)")
    p.add_argument("--reals", type=Path, nargs="*", default=[], help="sets whose reals to add")
    p.add_argument("--extra-reals", type=int, default=400, help="reals drawn from each set")
    p.add_argument("--video-reals", type=Path, nargs="*", default=[])
    p.add_argument("--frames-per-video", type=int, default=6)
    p.add_argument("--fp-videos", type=Path, nargs="*", default=[], help="reals to measure only")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=192, help="patch side, px")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--steps", type=int, default=40, help="steps per epoch")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--pseudo-share", type=float, default=0.2, help="share of self-made fakes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="at most this many images per pool")
    p.add_argument("--name", default="cnn-v1")
    p.add_argument("--version", default=__version__)
    return p.parse_args(argv)


def _pick(items: list[str], n: int, seed: int, salt: int) -> list[str]:
    order = np.random.default_rng([seed, salt]).permutation(len(items))
    return [items[i] for i in order[:n]] if n > 0 else list(items)


def _head(items: list[Item], limit: int | None) -> list[Item]:
    """The first ``limit`` items of each label (all with None)."""
    if limit is None:
        return items
    return [i for i in items if i.label == 0][:limit] + [i for i in items if i.label == 1][:limit]


def _sample(pools: Pools, rng: np.random.Generator, n: int, size: int, share: float) -> Any:
    """One batch: (n, size, size, 3) uint8 patches and labels; half generated (of which
    ``share`` self-made), half real (half of those from the generated set's reals)."""
    cfg = Degradation()
    images: list[_U8] = []
    labels: list[int] = []
    reals = pools.gen_real + pools.other_real
    for k in range(n):
        if k % 2 == 0:
            if rng.random() < share:
                src = reals[int(rng.integers(len(reals)))]
                factor = 2 if rng.random() < 0.7 else 4
                mode = _MODES[int(rng.integers(len(_MODES)))]
                img = generator_upsample(src, factor, mode, rng)
            else:
                img = pools.gen_fake[int(rng.integers(len(pools.gen_fake)))]
            labels.append(1)
        else:
            pool = pools.gen_real if rng.random() < 0.5 else pools.other_real
            img = pool[int(rng.integers(len(pool)))]
            labels.append(0)
        if min(img.shape[:2]) < size:  # a small real: up-scaling would add traces, pad instead
            img = cv2.copyMakeBorder(
                img,
                0,
                max(0, size - img.shape[0]),
                0,
                max(0, size - img.shape[1]),
                cv2.BORDER_REFLECT,
            )
        img = degrade(img, rng, size, cfg)
        y = int(rng.integers(0, img.shape[0] - size + 1))
        x = int(rng.integers(0, img.shape[1] - size + 1))
        patch = img[y : y + size, x : x + size]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        images.append(np.ascontiguousarray(patch))
    return np.stack(images), np.asarray(labels, dtype=np.float32)


def _train(args: argparse.Namespace, pools: Pools) -> Path:
    import torch
    from torch import nn

    from fakescope.training.checkpoint import resume, save_checkpoint
    from fakescope.training.effnet_lite import imagenet_lite0

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = imagenet_lite0(1).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    total = args.epochs * args.steps
    warmup = max(1, min(total // 4, args.steps))

    def lr_at(step: int) -> float:
        """Linear warm-up over the first epoch, then cosine to zero at the last step (a pure
        function of the step, so a resumed run follows the same schedule)."""
        if step < warmup:
            return float(args.lr * (step + 1) / warmup)
        return float(args.lr * 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, total - warmup))))

    last = args.out / "last.pt"
    start = resume(last, model, opt)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(start, args.epochs):
        rng = np.random.default_rng([args.seed, 101, epoch])
        model.train()
        losses = []
        t0 = time.time()
        for k in range(args.steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * args.steps + k)
            xb, yb = _sample(pools, rng, args.batch, args.size, args.pseudo_share)
            x = (torch.from_numpy(xb).permute(0, 3, 1, 2).float() - mean) / std
            x = x.contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(x).squeeze(1), torch.from_numpy(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        save_checkpoint(last, model, opt, epoch)
        _log(f"epoch {epoch}: loss {np.mean(losses):.4f} ({time.time() - t0:.0f} s)")
        with (args.out / "log.jsonl").open("a") as fh:
            fh.write(json.dumps({"epoch": epoch, "loss": float(np.mean(losses))}) + "\n")
    return export_onnx(model, args.size, args.out / "model.onnx")


def export_onnx(model: Any, size: int, path: Path) -> Path:
    """Export the network: normalised NCHW float patches -> ``logit`` (N,) and the pooled
    1280-d ``embedding`` (N, 1280) the logit is a linear function of (what ``fakescope
    finetune`` refits a head on)."""
    import warnings

    import torch
    from torch import nn

    class _Export(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            emb = self.net.features(x).mean(dim=(2, 3))
            return self.net._fc(emb).squeeze(1), emb

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Export(model),
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=["input"],
            output_names=["logit", "embedding"],
            dynamic_axes={"input": {0: "n"}, "logit": {0: "n"}, "embedding": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    return path


def reexport(run: Path) -> Path:
    """Export ``run``'s ``last.pt`` again (same weights, current export: with the embedding
    output) and point its ``weights.json`` at the new file's sha256, calibration kept."""
    import torch

    from fakescope.models import sha256_file
    from fakescope.training.effnet_lite import EfficientNetLite0

    data = json.loads((run / "weights.json").read_text())
    model = EfficientNetLite0(1)
    model.load_state_dict(torch.load(run / "last.pt", weights_only=True)["model"])
    path = export_onnx(model, int(data["input_size"]), run / data["file"])
    weights = CnnSynthesisWeights.from_dict({**data, "sha256": sha256_file(path)})
    return weights.save(run / "weights.json")


def _auc(y: Sequence[int], s: Sequence[float]) -> float:
    from fakescope.evaluation import roc_auc

    return roc_auc(np.asarray(y), np.asarray(s))


def _auc_ci(y: Sequence[int], s: Sequence[float], seed: int) -> list[float]:
    """95 % percentile bootstrap interval of the AUC, resampling images."""
    from fakescope.evaluation import bootstrap_ci, roc_auc

    _, low, high = bootstrap_ci(roc_auc, np.asarray(y), np.asarray(s), n_boot=2000, seed=seed)
    return [round(low, 4), round(high, 4)]


def _ece(y: Sequence[int], p: Sequence[float]) -> float:
    from fakescope.evaluation import expected_calibration_error

    return expected_calibration_error(np.asarray(y), np.asarray(p), n_bins=10)


def ship(run: Path, stem: str) -> Path:
    """Copy ``run``'s network into the package as ``<stem>.onnx`` and write ``<stem>.json``
    (the run's weight config pointing at it); returns the JSON, whose sha256 goes into
    ``ASSET_SHA256``."""
    import shutil

    from fakescope.models import asset_path, sha256_file

    data = json.loads((run / "weights.json").read_text())
    target = asset_path(f"{stem}.onnx")
    shutil.copyfile(run / data["file"], target)
    weights = CnnSynthesisWeights.from_dict({**data, "file": target.name})
    if sha256_file(target) != weights.sha256:
        raise SystemExit(f"{run}: weights.json does not describe {data['file']}")
    return weights.save(asset_path(f"{stem}.json"))


def recalibrate(weights_path: Path, data: Path, seed: int = 0) -> dict[str, Any]:
    """Refit the Platt calibrator of a shipped weight file (in place) on the calib split of
    ``data`` (``split_by_image`` with ``seed``, as every run splits it), e.g. after its network
    was quantized: the raw scores moved, so the old calibrator no longer holds."""
    from fakescope.calibration import LogitCalibrator
    from fakescope.synthesis._cnn import CnnSynthesisDetector

    gen = load_manifest(data, "gen")
    splits = split_by_image([i.path for i in gen], [i.label for i in gen], seed)
    calib = [i for i, split in zip(gen, splits, strict=True) if split == "calib"]
    detector = CnnSynthesisDetector.from_json(weights_path)
    raw = np.asarray(detector.score([_read(i.path) for i in calib]), dtype=np.float64)
    labels = np.asarray([i.label for i in calib])
    fitted = LogitCalibrator().fit(1 / (1 + np.exp(-raw)), labels)
    data_ = json.loads(weights_path.read_text())
    CnnSynthesisWeights.from_dict({**data_, "calibration": fitted.to_dict()}).save(weights_path)
    return {
        "calib_items": len(calib),
        "calib_auc": _auc(labels.tolist(), raw.tolist()),
        "calibration": fitted.to_dict(),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    if argv is None:
        import sys

        argv = sys.argv[1:]
    if argv and argv[0] == "reexport":  # python3 -m fakescope.training.synthesis_cnn reexport RUN
        return {"weights": str(reexport(Path(argv[1])))}
    if argv and argv[0] == "recalibrate":  # ... recalibrate WEIGHTS.json DATA_DIR
        if len(argv) != 3:
            raise SystemExit("usage: recalibrate WEIGHTS_JSON STYLEGAN2_FFHQ_DIR")
        result = recalibrate(Path(argv[1]), Path(argv[2]))
        print(json.dumps(result))
        return result
    if argv and argv[0] == "ship":  # python3 -m fakescope.training.synthesis_cnn ship RUN STEM
        if len(argv) != 3:
            raise SystemExit("usage: ship RUN_FOLDER FILE_STEM")
        path = ship(Path(argv[1]), argv[2])
        from fakescope.models import sha256_file

        print(f"wrote {path} (sha256 {sha256_file(path)}: add it to ASSET_SHA256)")
        return {"shipped": str(path)}
    args = _arguments(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)
    gen = load_manifest(args.data, "gen")
    splits = split_by_image([i.path for i in gen], [i.label for i in gen], args.seed)
    by_split: dict[str, list[Item]] = {"train": [], "calib": [], "test": []}
    for item, split in zip(gen, splits, strict=True):
        by_split[split].append(item)
    with (args.out / "splits.tsv").open("w") as fh:
        fh.write("file\tlabel\tsplit\n")
        for item, split in zip(gen, splits, strict=True):
            fh.write(f"{Path(item.path).name}\t{item.label}\t{split}\n")
    _write_items(args.data, dict(zip((i.path for i in gen), splits, strict=True)), args.out)
    lim = args.limit or None
    train = by_split["train"]
    other: list[_U8] = []
    for k, root in enumerate(args.reals):
        paths = [i.path for i in load_manifest(root, root.name) if i.label == 0]
        other += [_read(p) for p in _pick(paths, args.extra_reals, args.seed, 7 + k)[:lim]]
    for root in args.video_reals:
        for path in _real_videos(root)[:lim]:
            other += read_video_frames(path, args.frames_per_video)
    pools = Pools(
        gen_fake=[_read(i.path) for i in train if i.label == 1][:lim],
        gen_real=[_read(i.path) for i in train if i.label == 0][:lim],
        other_real=other,
    )
    if not pools.gen_fake or not pools.gen_real:
        raise SystemExit(f"{args.data}: the train split needs generated and real images")
    if not pools.other_real:
        pools.other_real = pools.gen_real
    _log(
        f"train: {len(pools.gen_fake)} generated, {len(pools.gen_real)} real from "
        f"{args.data.name}, {len(other)} other reals"
    )
    (args.out / "config.json").write_text(
        json.dumps(
            {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            indent=2,
            default=str,
        )
        + "\n"
    )
    onnx_path = _train(args, pools)
    from fakescope.models._assets import sha256_file

    weights = CnnSynthesisWeights(
        name=args.name,
        version=args.version,
        file=onnx_path.name,
        sha256=sha256_file(onnx_path),
        input_size=args.size,
        mean=MEAN,
        std=STD,
        max_side=MAX_SIDE,
        architecture="EfficientNet-Lite0 (ImageNet init) on 5 native-resolution patches, "
        "mean logit",
        trained_on=(
            f"{args.data.name} train split (by image), reals of "
            f"{', '.join(r.name for r in [*args.reals, *args.video_reals]) or 'no other set'}, "
            "self-made up-sampled fakes; research-only data, see MODEL_CARD"
        ),
        license="Apache-2.0 (code); weights trained on research-only data, see MODEL_CARD",
    )
    detector = CnnSynthesisDetector(weights, onnx_path, threads=args.threads)

    def scores(items: list[Item], op: str = "clean") -> tuple[list[int], list[float]]:
        imgs = [_read(i.path) for i in items]
        if op == "jpeg50":
            imgs = [jpeg(im, 50) for im in imgs]
        elif op == "resize75":
            imgs = [
                np.asarray(cv2.resize(im, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA))
                for im in imgs
            ]
        return [i.label for i in items], [float(v) for v in detector.score(imgs)]

    from fakescope.calibration import LogitCalibrator

    yc, sc = scores(_head(by_split["calib"], lim))
    calibration_note = "Platt on the calib split"
    try:
        calib = LogitCalibrator().fit(1 / (1 + np.exp(-np.asarray(sc))), np.asarray(yc))
        weights = CnnSynthesisWeights(**{**weights.__dict__, "calibration": calib.to_dict()})
    except ValueError as exc:  # e.g. an untrained network ranks the calib split backwards
        calibration_note = f"none: {exc}"
        _log(f"not calibrated: {exc}")
    weights.save(args.out / "weights.json")
    detector = CnnSynthesisDetector(weights, onnx_path, threads=args.threads)
    test = _head(by_split["test"], lim)
    yt, st = scores(test)
    pt = detector.probability(np.asarray(st))
    report: dict[str, Any] = {
        "name": args.name,
        "calib_auc": round(_auc(yc, sc), 4),
        "calibration": calibration_note,
        "test_n": {"generated": int(sum(yt)), "real": len(yt) - int(sum(yt))},
        "test_auc": round(_auc(yt, st), 4),
        "test_auc_ci95": _auc_ci(yt, st, args.seed),
        "test_auc_jpeg50": round(_auc(*scores(test, "jpeg50")), 4),
        "test_auc_resize75": round(_auc(*scores(test, "resize75")), 4),
        "test_ece": round(_ece(yt, pt), 4),
        "test_accuracy": round(float(np.mean((pt >= weights.threshold) == np.asarray(yt))), 4),
    }
    for root in args.fp_videos:
        frames = [f for v in _real_videos(root)[:lim] for f in read_video_frames(v, 4)]
        if frames:
            p = detector.probability(detector.score(frames))
            report[f"real_frames_{root.name}"] = {
                "frames": len(frames),
                "mean_probability": round(float(p.mean()), 4),
                "called_generated": round(float(np.mean(p >= weights.threshold)), 4),
            }
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    _log(json.dumps(report))
    return report


if __name__ == "__main__":
    main()

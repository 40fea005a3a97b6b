"""Train the synthesis detector's CNN branch (EfficientNet-Lite0, ImageNet init) on
native-resolution patches of whole images from GAN and diffusion generators, with a second
output naming the generator family; export it to ONNX, calibrate and measure it.

    python3 -m fakescope.training.synthesis_cnn --data ../shared/data/stylegan2_ffhq \\
        --diffusion ../shared/data/sd21_faces \\
        --reals ../shared/data/utkface_real ../shared/data/dfdc_faces \\
        --video-reals ../shared/data/ffpp_c23_videos --fp-videos ../shared/data/ffpp_c40_videos \\
        --out runs/synth_cnn_v2
    python3 -m fakescope.training.synthesis_cnn ship runs/synth_cnn_v2 synth_cnn_v2

Data (:mod:`fakescope.training.synthesis_cnn_data`): the ``--data`` set (generated images and
real photos, family ``--data-family``, default ``gan``) split by image exactly as the frequency
branch and cnn-v1 split it (``split_by_image``, same seed: train / calib / test); each
``--gen SET=FAMILY`` / ``--diffusion SET`` set split by prompt group (``split_by_group``: one
prompt's images never in two splits), same 60/20/20 ratios. ``splits.tsv`` (the ``--data``
set, as cnn-v1's) and ``sets/<set>/splits.tsv`` record them; ``calib.tsv`` / ``test.tsv`` (all
sets) and ``sets/<set>/{calib,test}.tsv`` (one set, with the real photos of that split when it
has none) are what ``fakescope eval`` reads. Reals: the sets' own reals, real-only images drawn
from each ``--reals`` set and frames of the real videos of ``--video-reals``; and self-made
fakes (real images down-scaled by 2 or 4 and up-sampled back), so that the network learns
up-sampling traces rather than one generator. ``--train-families gan`` (or ``diffusion``)
trains on that family's generated images only, a leave-one-generator-out run; every set is
still tested.

Every sample, of either class, goes through the same random rescale (0.5-1.0, Lanczos / area
/ bilinear / bicubic: sd21_faces carry a 2/3 Lanczos down-scale the FFHQ reals do not),
crop / resize / blur, then JPEG 30-95 or an H.264 intra frame; then a random patch at native
resolution. With both families trained, the network has two outputs: the generated logit
(BCE on every sample) and a family logit, P(diffusion | generated), trained by BCE on the
generated images of the sets only (self-made fakes and reals are masked out of it). A fixed
number of epochs (no selection on held-out data); ``last.pt`` after every epoch makes a run
resumable.

The calib split (its reals and the trained families' generated images) only fits the Platt
calibrator; the test split only reports (``report.json``): per set, the AUC of its generated
test images against the real test photos (bootstrap 95 % interval, whole prompt groups
resampled), after JPEG-50 and after a 75 % down-scale of both classes, the share called
generated and the family accuracy; ECE on the calib split; and, per real set (the test split's
real photos, held-out reals of each ``--reals`` set, real frames of ``--fp-videos``), the share
called generated at the shipped threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope import __version__
from fakescope.errors import ConfigError
from fakescope.evaluation import roc_auc
from fakescope.synthesis import CnnSynthesisDetector, CnnSynthesisWeights
from fakescope.synthesis._cnn import FAMILY_OUTPUT
from fakescope.training.synthesis_cnn_data import (
    FAMILIES,
    MAX_SIDE,
    Augment,
    Degradation,
    GenSet,
    Pools,
    load_gen_set,
    load_manifest,
    parse_gen,
    read_image,
    read_video_frames,
    real_videos,
    sample_batch,
    write_manifests,
    write_splits,
)
from fakescope.training.synthesis_cnn_eval import evaluate

if TYPE_CHECKING:
    from fakescope.training.effnet_lite import EfficientNetLite0

__all__ = ["main", "read_video_frames"]

_U8 = npt.NDArray[np.uint8]
_F64 = npt.NDArray[np.float64]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python3 -m fakescope.training.synthesis_cnn",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data", type=Path, required=True, help="generated-image set with reals, split by image"
    )
    p.add_argument("--data-family", choices=FAMILIES, default="gan", help="--data's generator")
    p.add_argument(
        "--gen",
        action="append",
        default=[],
        metavar="SET=FAMILY",
        help="another generated-image set and its family (gan or diffusion), split by prompt "
        "group; repeatable",
    )
    p.add_argument(
        "--diffusion", type=Path, action="append", default=[], help="= --gen SET=diffusion"
    )
    p.add_argument(
        "--train-families",
        default=",".join(FAMILIES),
        help="train on these families' generated images only (comma list; e.g. gan for a "
        "leave-one-generator-out run); every set is tested",
    )
    p.add_argument(
        "--family-weight",
        type=float,
        default=0.5,
        help="weight of the family loss (a family output needs both families trained; 0: none)",
    )
    p.add_argument("--reals", type=Path, nargs="*", default=[], help="sets whose reals to add")
    p.add_argument("--extra-reals", type=int, default=400, help="reals drawn from each set")
    p.add_argument(
        "--fp-count",
        type=int,
        default=200,
        help="held-out reals of each --reals set measured for false alarms",
    )
    p.add_argument("--video-reals", type=Path, nargs="*", default=[])
    p.add_argument("--frames-per-video", type=int, default=6)
    p.add_argument("--fp-videos", type=Path, nargs="*", default=[], help="reals to measure only")
    p.add_argument("--fp-frames", type=int, default=4, help="frames of each --fp-videos video")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=192, help="patch side, px")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--steps", type=int, default=42, help="steps per epoch")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--pseudo-share", type=float, default=0.2, help="share of self-made fakes")
    p.add_argument("--p-rescale", type=float, default=Augment.p_rescale)
    p.add_argument("--p-h264", type=float, default=Augment.p_h264)
    p.add_argument(
        "--init-from",
        type=Path,
        help="warm start from this exported synthesis CNN (.onnx, e.g. the shipped "
        "synth_cnn_v1.onnx) instead of the ImageNet weights; its BatchNorm statistics are "
        "re-estimated on training batches",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="at most this many images per pool")
    p.add_argument("--name", default="cnn-v2")
    p.add_argument("--version", default=__version__)
    return p.parse_args(argv)


def _pick_order(items: list[str], seed: int, salt: int) -> list[str]:
    order = np.random.default_rng([seed, salt]).permutation(len(items))
    return [items[i] for i in order]


def _train(args: argparse.Namespace, pools: Pools, aug: Augment, family_head: bool) -> Path:
    import torch
    from torch import nn

    from fakescope.training.checkpoint import resume, save_checkpoint
    from fakescope.training.effnet_lite import imagenet_lite0

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = imagenet_lite0(2 if family_head else 1)
    # torch's stubs type Module.to without its memory_format keyword
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
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
    if args.init_from is not None and not last.is_file():
        _warm_start(model, args, pools, aug)
    start = resume(last, model, opt)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(start, args.epochs):
        rng = np.random.default_rng([args.seed, 101, epoch])
        model.train()
        losses: list[float] = []
        family_losses: list[float] = []
        t0 = time.time()
        for k in range(args.steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * args.steps + k)
            xb, yb, fb = sample_batch(pools, rng, args.batch, args.size, aug)
            x = (torch.from_numpy(xb).permute(0, 3, 1, 2).float() - mean) / std
            x = x.contiguous(memory_format=torch.channels_last)
            out = model(x)
            loss = loss_fn(out[:, 0], torch.from_numpy(yb))
            losses.append(loss.item())
            if family_head:
                fam = torch.from_numpy(fb)
                mask = fam >= 0  # generated images of the sets; reals and self-made: neither
                if bool(mask.any()):
                    family_loss = loss_fn(out[mask, 1], fam[mask])
                    family_losses.append(family_loss.item())
                    loss = loss + args.family_weight * family_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        save_checkpoint(last, model, opt, epoch)
        entry: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(losses))}
        if family_losses:
            entry["family_loss"] = float(np.mean(family_losses))
        fam_text = f", family loss {entry['family_loss']:.4f}" if family_losses else ""
        _log(f"epoch {epoch}: loss {entry['loss']:.4f}{fam_text} ({time.time() - t0:.0f} s)")
        with (args.out / "log.jsonl").open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
    return export_onnx(model, args.size, args.out / "model.onnx")


def _warm_start(
    model: EfficientNetLite0, args: argparse.Namespace, pools: Pools, aug: Augment
) -> None:
    """Load ``args.init_from`` (an exported synthesis CNN) into ``model`` and re-estimate its
    BatchNorm statistics on 8 training batches of a seed of their own (the run's batches are
    untouched)."""
    import torch

    from fakescope.training.onnx_init import refit_batchnorm, state_from_onnx

    if not args.init_from.is_file():
        raise ConfigError(f"--init-from: {args.init_from} is not a file")
    model.load_state_dict(state_from_onnx(model, args.init_from))
    rng = np.random.default_rng([args.seed, 7])
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255

    def batches() -> Iterator[torch.Tensor]:
        for _ in range(8):
            xb = sample_batch(pools, rng, args.batch, args.size, aug)[0]
            yield (torch.from_numpy(xb).permute(0, 3, 1, 2).float() - mean) / std

    seen = refit_batchnorm(model, batches())
    _log(f"warm start from {args.init_from} (BatchNorm re-estimated on {seen} samples)")


def export_onnx(model: EfficientNetLite0, size: int, path: Path) -> Path:
    """Export the network: normalised NCHW float patches -> ``logit`` (N,), with a two-output
    head also ``family_logit`` (N,; sigmoid = P(diffusion | generated)), and the pooled
    1280-d ``embedding`` (N, 1280) both are linear functions of (what ``fakescope finetune``
    refits a head on)."""
    import warnings

    import torch
    from torch import nn

    family = int(model._fc.out_features) == 2

    class _Export(nn.Module):
        def __init__(self, net: EfficientNetLite0) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            emb = self.net.features(x).mean(dim=(2, 3))
            out = self.net._fc(emb)
            if family:
                return out[:, 0], out[:, 1], emb
            return out.squeeze(1), emb

    names = ["logit", FAMILY_OUTPUT, "embedding"] if family else ["logit", "embedding"]
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Export(model),
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=["input"],
            output_names=names,
            dynamic_axes={"input": {0: "n"}, **{n: {0: "n"} for n in names}},
            opset_version=17,
            dynamo=False,
        )
    return path


def reexport(run: Path) -> Path:
    """Export ``run``'s ``last.pt`` again (same weights, current export: with the embedding
    output, and the family output of a two-output head) and point its ``weights.json`` at the
    new file's sha256, calibration kept."""
    import torch

    from fakescope.models import sha256_file
    from fakescope.training.effnet_lite import EfficientNetLite0

    data = json.loads((run / "weights.json").read_text())
    state = torch.load(run / "last.pt", weights_only=True)["model"]
    model = EfficientNetLite0(int(state["_fc.weight"].shape[0]))
    model.load_state_dict(state)
    path = export_onnx(model, int(data["input_size"]), run / data["file"])
    weights = CnnSynthesisWeights.from_dict({**data, "sha256": sha256_file(path)})
    return weights.save(run / "weights.json")


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


def recalibrate(
    weights_path: Path, data: Path, seed: int = 0, gen: Sequence[tuple[Path, str]] = ()
) -> dict[str, Any]:
    """Refit the Platt calibrator of a shipped weight file (in place) on the calib split of
    ``data`` (``split_by_image`` with ``seed``, as every run splits it) and of each ``gen``
    set (``(folder, family)``, split by prompt group: give the sets the run trained on), e.g.
    after its network was quantized: the raw scores moved, so the old calibrator no longer
    holds."""
    from fakescope.calibration import LogitCalibrator

    sets = [load_gen_set(data, "gan", "image", seed)]
    sets += [load_gen_set(root, family, "prompt", seed) for root, family in gen]
    calib = [i for g in sets for i in g.of("calib")]
    detector = CnnSynthesisDetector.from_json(weights_path)
    raw = np.asarray(detector.score([read_image(i.path) for i in calib]), dtype=np.float64)
    labels = np.asarray([i.label for i in calib])
    fitted = LogitCalibrator().fit(1 / (1 + np.exp(-raw)), labels)
    data_ = json.loads(weights_path.read_text())
    CnnSynthesisWeights.from_dict({**data_, "calibration": fitted.to_dict()}).save(weights_path)
    return {
        "calib_items": len(calib),
        "calib_auc": roc_auc(labels, raw),
        "calibration": fitted.to_dict(),
    }


def _sets(args: argparse.Namespace) -> tuple[list[GenSet], list[GenSet]]:
    """Every generated-image set (``--data`` first) and those whose family is trained."""
    try:
        extra = [parse_gen(t) for t in args.gen] + [(r, "diffusion") for r in args.diffusion]
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    families = [f.strip() for f in args.train_families.split(",") if f.strip()]
    if not families or any(f not in FAMILIES for f in families):
        raise SystemExit(f"--train-families: choose from {', '.join(FAMILIES)}")
    sets = [load_gen_set(args.data, args.data_family, "image", args.seed)]
    sets += [load_gen_set(root, family, "prompt", args.seed) for root, family in extra]
    names = [g.name for g in sets]
    if len(set(names)) != len(names):
        raise SystemExit(f"set folder names must differ: {', '.join(names)}")
    trained = [g for g in sets if g.family in families]
    if not any(g.of("train", 1) for g in trained):
        raise SystemExit(f"no generated training images of the families {', '.join(families)}")
    return sets, trained


def _pools(
    args: argparse.Namespace, sets: list[GenSet], trained: list[GenSet]
) -> tuple[Pools, dict[str, list[str]]]:
    """The decoded training images, and the held-out reals of each ``--reals`` set (the next
    ``--fp-count`` of the same seeded order the training reals were drawn from)."""
    lim = args.limit or None
    fakes: dict[str, list[list[_U8]]] = {}
    for g in trained:
        fakes.setdefault(g.family, []).append([read_image(i.path) for i in g.of("train", 1)[:lim]])
    gen_real = [read_image(i.path) for g in sets for i in g.of("train", 0)[:lim]]
    other: list[_U8] = []
    held: dict[str, list[str]] = {}
    for k, root in enumerate(args.reals):
        paths = _pick_order(
            [i.path for i in load_manifest(root, root.name) if i.label == 0], args.seed, 7 + k
        )
        n = args.extra_reals if args.extra_reals > 0 else len(paths)
        other += [read_image(p) for p in paths[:n][:lim]]
        held[root.name] = paths[n : n + args.fp_count][:lim]
    for root in args.video_reals:
        for path in real_videos(root)[:lim]:
            other += read_video_frames(path, args.frames_per_video)
    pools = Pools(fakes=fakes, gen_real=gen_real, other_real=other)
    if not gen_real:
        raise SystemExit(f"{args.data}: the train split needs real images")
    if not pools.other_real:
        pools.other_real = pools.gen_real
    counts = ", ".join(f"{f} {sum(len(s) for s in v)}" for f, v in sorted(fakes.items()))
    _log(f"train: generated {counts}; {len(gen_real)} real from the sets, {len(other)} other reals")
    return pools, held


def _run(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)
    sets, trained = _sets(args)
    write_splits(sets[0], args.out / "splits.tsv")  # cnn-v1's file, for the quantizer
    for g in sets:
        write_splits(g, args.out / "sets" / g.name / "splits.tsv")
    write_manifests(sets, args.out)
    family_head = args.family_weight > 0 and len({g.family for g in trained}) == len(FAMILIES)
    pools, held = _pools(args, sets, trained)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    config["family_output"] = family_head
    (args.out / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
    aug = Augment(
        degradation=Degradation(),
        p_rescale=args.p_rescale,
        p_h264=args.p_h264,
        pseudo_share=args.pseudo_share,
    )
    t_load = time.time()
    onnx_path = _train(args, pools, aug, family_head)
    t_train = time.time()
    del pools
    from fakescope.models import sha256_file

    trained_names = ", ".join(f"{g.name} ({g.family}, by {g.rule})" for g in trained)
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
        "mean logit" + ("; a family_logit output, P(diffusion | generated)" if family_head else ""),
        trained_on=(
            f"train splits of {trained_names}, reals of "
            f"{', '.join(r.name for r in [*args.reals, *args.video_reals]) or 'no other set'}, "
            "self-made up-sampled fakes; research-only data, see MODEL_CARD"
        ),
        license="Apache-2.0 (code); weights trained on research-only data, see MODEL_CARD",
    )
    weights, report = evaluate(args, sets, trained, weights, onnx_path, held)
    report["seconds"] = {
        "load": round(t_load - t_start),
        "train": round(t_train - t_load),
        "evaluate": round(time.time() - t_train),
        "total": round(time.time() - t_start),
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    _log(json.dumps(report))
    return report


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "reexport":  # python3 -m fakescope.training.synthesis_cnn reexport RUN
        return {"weights": str(reexport(Path(argv[1])))}
    if argv and argv[0] == "recalibrate":  # ... recalibrate WEIGHTS.json DATA_DIR [SET=FAMILY]
        if len(argv) < 3:
            raise SystemExit("usage: recalibrate WEIGHTS_JSON STYLEGAN2_FFHQ_DIR [SET=FAMILY ...]")
        try:
            gen = [parse_gen(t) for t in argv[3:]]
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        result = recalibrate(Path(argv[1]), Path(argv[2]), gen=gen)
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
    args.argv = list(argv)
    return _run(args)


if __name__ == "__main__":
    main()

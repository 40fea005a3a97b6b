"""Train the synthesis detector's CNN branch (EfficientNet-Lite0, or Lite1/2; ImageNet init) on
native-resolution patches of whole images from GAN and diffusion generators, with a second
output naming the generator family; export it to ONNX, calibrate and measure it.

    fakescope train configs/synth_cnn_v3.yaml [--set optim.epochs=12 run.out=runs/x]
    fakescope train --ship runs/synth_cnn_v3    # ship.stem: synth_cnn_v3 (the config's)

The ``synthesis-cnn`` recipe of the training engine (:mod:`fakescope.training.engine`); this
module's command line re-exports or re-calibrates a finished run, or ships one whose config has
no ship section (:func:`main`). Its quantize, calibrate and ship stages are in
:mod:`fakescope.training.synthesis_cnn_stages`.

Data (:mod:`fakescope.training.synthesis_cnn_data`): the ``data.root`` set (generated images
and real photos of family ``data.family``) split by image as cnn-v1's (``split_by_image``:
train / calib / test); each ``data.gen`` (``SET=FAMILY``) / ``data.diffusion`` set split by
prompt group (``split_by_group``: one prompt's images never in two splits), same 60/20/20.
``splits.tsv`` (``data.root``'s, as cnn-v1's) and ``sets/<set>/splits.tsv`` record them;
``calib.tsv`` / ``test.tsv`` (all sets) and ``sets/<set>/{calib,test}.tsv`` (one set, with the
split's real photos when it has none) are what ``fakescope eval`` reads. Reals: the sets' own,
real-only images of each ``data.reals`` set, frames of the real videos of ``data.video_reals``;
and self-made fakes (reals down-scaled by 2 or 4 and up-sampled back), so that the network
learns up-sampling traces rather than one generator. ``data.train_families: [gan]`` trains on
that family's generated images only (leave one generator out); every set is still tested.

Every sample, of either class, goes through the same random rescale (0.5-1.0, Lanczos / area
/ bilinear / bicubic: sd21_faces carry a 2/3 Lanczos down-scale the FFHQ reals do not),
crop / resize / blur, then JPEG 30-95 or an H.264 intra frame; then a random patch at native
resolution. With both families trained, the network has two outputs: the generated logit
(BCE on every sample) and a family logit, P(diffusion | generated), trained by BCE on the
sets' generated images only. A fixed number of epochs (no selection on held-out data);
``last.pt`` after every epoch makes a run resumable.

The calib split only fits the Platt calibrator; the test split only reports (``report.json``):
per set, the AUC of its generated test images against the real test photos (bootstrap 95 %
interval, whole prompt groups resampled), after JPEG-50 and a 75 % down-scale, the share
called generated and the family accuracy; ECE on the calib split; and per real set (the test
photos, held-out ``data.reals``, frames of ``eval.fp_videos``) the share called generated.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from fakescope import __version__
from fakescope.errors import ConfigError, InputError
from fakescope.synthesis import FAMILY_OUTPUT, PATCH_LAYOUTS, CnnSynthesisWeights
from fakescope.training.config import (
    Backbone,
    CalibrateSection,
    QuantizeSection,
    RunConfig,
    backbone_variant,
    check,
)
from fakescope.training.engine import RunResult, load_config, log
from fakescope.training.ship import check_asset_name
from fakescope.training.synthesis_cnn_data import (
    FAMILIES,
    MAX_SIDE,
    Augment,
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
from fakescope.training.synthesis_cnn_eval import EvalSection, evaluate
from fakescope.training.synthesis_cnn_stages import (
    calibrate_run,
    quantize_run,
    recalibrate,
    ship_run,
)

if TYPE_CHECKING:
    import torch

    from fakescope.training.effnet_lite import EfficientNetLite

__all__ = [
    "CONFIG",
    "SynthCnnConfig",
    "SynthShip",
    "calibrate",
    "export_onnx",
    "fit",
    "main",
    "quantize",
    "recalibrate",
    "reexport",
    "ship",
]

_U8 = npt.NDArray[np.uint8]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
Family = Literal["gan", "diffusion"]


@dataclass
class DataSection:
    """Generated-image sets and reals (paths relative to the working directory)."""

    root: str = ""  # generated-image set with reals, split by image (required)
    family: Family = "gan"  # root's generator family
    gen: tuple[str, ...] = ()  # more generated-image sets, "SET=FAMILY", split by prompt group
    diffusion: tuple[str, ...] = ()  # = gen "SET=diffusion"
    train_families: tuple[Family, ...] = ("gan", "diffusion")  # generated images trained on
    reals: tuple[str, ...] = ()  # sets whose reals to add
    extra_reals: int = 400  # reals drawn from each reals set (<= 0: all)
    video_reals: tuple[str, ...] = ()  # video sets whose real clips give training frames
    frames_per_video: int = 6
    limit: int = 0  # at most this many images per pool (0: all; smoke runs)

    def validate(self) -> None:
        for text in self.gen:
            try:
                parse_gen(text)
            except ValueError as exc:
                raise ConfigError(f"data.gen: {exc}") from None
        check(bool(self.train_families), "data.train_families", "name at least one family")
        check(self.frames_per_video >= 1 and self.limit >= 0, "data", "frames < 1 or limit < 0")


@dataclass
class AugmentSection:
    pseudo_share: float = Augment.pseudo_share  # share of self-made fakes
    p_rescale: float = Augment.p_rescale
    p_h264: float = Augment.p_h264
    gan_share: float | None = None  # GAN share of the generated draws; null: families evenly

    def validate(self) -> None:
        for key in ("pseudo_share", "p_rescale", "p_h264"):
            check(0.0 <= getattr(self, key) <= 1.0, f"augment.{key}", "must be in [0, 1]")
        share = self.gan_share
        check(share is None or 0.0 <= share <= 1.0, "augment.gan_share", "must be in [0, 1]")


@dataclass
class ModelSection:
    size: int = 192  # patch side, px
    family_weight: float = 0.5  # family loss weight (output needs both families trained; 0: none)
    # warm start from an exported synthesis CNN (.onnx, e.g. the shipped synth_cnn_v1.onnx)
    # instead of ImageNet weights; its BatchNorm statistics re-estimated on training batches
    init_from: str | None = None
    name: str = "cnn-v2"
    version: str = __version__
    # EfficientNet-Lite0, Lite1 or Lite2 (ImageNet init; Lite0 is cnn-v1/v2's)
    backbone: Backbone = "effnet-lite0"
    # the stem also reads the neighbouring-pixel residual of each patch (NPR, up-samplers'
    # trace; fakescope.training.effnet_lite.npr_residual), computed inside the exported graph
    npr: bool = False
    # where a scan cuts an image's patches and how many (fakescope.synthesis.PATCH_LAYOUTS):
    # what the weight config says, so the run's evaluation and calibration already use it
    patches: int = 5
    layout: str = "quadrants"

    def validate(self) -> None:
        check(self.size >= 32 and self.family_weight >= 0, "model", "size < 32 or weight < 0")
        check(self.layout in PATCH_LAYOUTS, "model.layout", f"one of {', '.join(PATCH_LAYOUTS)}")
        check(
            1 <= self.patches <= PATCH_LAYOUTS.get(self.layout, 0),
            "model.patches",
            f"1 to the layout's {PATCH_LAYOUTS.get(self.layout, 0)}",
        )
        check(not (self.npr and self.init_from), "model.npr", "cannot warm-start (3-ch stem)")
        check(
            self.backbone == "effnet-lite0" or not self.init_from,
            "model.backbone",
            "a warm start needs effnet-lite0",
        )


@dataclass
class OptimSection:
    epochs: int = 12
    steps: int = 42  # steps per epoch (at most run.max_steps_per_epoch)
    batch: int = 32
    lr: float = 3e-4  # AdamW peak LR: linear warm-up over the first epoch, then cosine

    def validate(self) -> None:
        ok = min(self.epochs, self.steps, self.batch) >= 1 and self.lr > 0
        check(ok, "optim", "epochs, steps and batch must be >= 1, lr > 0")


@dataclass
class SynthRunConfig(RunConfig):
    out: str = "runs/synth_cnn"


@dataclass
class SynthShip:
    """``fakescope train --ship RUN``: the run's network and weight config into the package as
    ``<stem>.onnx`` / ``<stem>.json`` (the JSON's sha256 then goes into ``ASSET_SHA256``), or
    with ``beside`` the run's own ``weights.json`` (checked). Nothing ships unless asked."""

    stem: str = ""  # asset file stem, e.g. synth_cnn_v3
    beside: bool = False  # the run's weights.json (fakescope eval --synthesis-detector it)
    dest: str | None = None  # folder shipped into; null: the package's models/assets
    int8_stem: str = ""  # the quantize stage's network too, e.g. synth_cnn_v3_int8

    def validate(self) -> None:
        check_asset_name(self.stem, "ship.stem")
        check_asset_name(self.int8_stem, "ship.int8_stem")
        check(
            not ((self.stem or self.int8_stem) and self.beside),
            "ship",
            "ship.stem / ship.int8_stem and ship.beside exclude each other",
        )
        check(not self.int8_stem or self.int8_stem != self.stem, "ship.int8_stem", "is ship.stem")


@dataclass
class SynthCnnConfig:
    data: DataSection = field(default_factory=DataSection)
    eval: EvalSection = field(default_factory=EvalSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    model: ModelSection = field(default_factory=ModelSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: SynthRunConfig = field(default_factory=SynthRunConfig)
    quantize: QuantizeSection = field(default_factory=QuantizeSection)  # off by default
    calibrate: CalibrateSection = field(default_factory=CalibrateSection)  # off by default
    ship: SynthShip = field(default_factory=SynthShip)


CONFIG = SynthCnnConfig


def _pick_order(items: list[str], seed: int, salt: int) -> list[str]:
    order = np.random.default_rng([seed, salt]).permutation(len(items))
    return [items[i] for i in order]


def _to_input(xb: _U8) -> torch.Tensor:
    """Patches ``(N, H, W, 3)`` uint8 -> the network's normalised NCHW float input."""
    import torch

    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255
    return (torch.from_numpy(xb).permute(0, 3, 1, 2).float() - mean) / std


def _patch_words(count: int, layout: str) -> str:
    """The weight config's words for its patches (cnn-v1/v2's: "5 native-resolution patches")."""
    where = " on a 3 x 3 grid to the edges" if layout == "grid" else ""
    return f"{count} native-resolution patches{where}"


def _steps(cfg: SynthCnnConfig) -> int:
    cap = cfg.run.max_steps_per_epoch
    return cfg.optim.steps if cap is None else min(cfg.optim.steps, cap)


def _train(
    cfg: SynthCnnConfig, run_dir: Path, pools: Pools, aug: Augment, family_head: bool
) -> Path:
    """The loop (torch seeded and threaded by the engine); ``model.onnx`` of the last epoch."""
    import torch
    from torch import nn

    from fakescope.training.checkpoint import resume, save_checkpoint
    from fakescope.training.effnet_lite import imagenet_lite

    opt_cfg, seed, steps = cfg.optim, cfg.run.seed, _steps(cfg)
    variant = backbone_variant(cfg.model.backbone)
    model = imagenet_lite(2 if family_head else 1, variant, npr=cfg.model.npr)
    # torch's stubs type Module.to without its memory_format keyword
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=opt_cfg.lr, weight_decay=1e-4)
    total = opt_cfg.epochs * steps
    warmup = max(1, min(total // 4, steps))

    def lr_at(step: int) -> float:
        """Linear warm-up over the first epoch, then cosine to zero at the last step (a pure
        function of the step, so a resumed run follows the same schedule)."""
        if step < warmup:
            return float(opt_cfg.lr * (step + 1) / warmup)
        cosine = 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, total - warmup)))
        return float(opt_cfg.lr * cosine)

    last = run_dir / "last.pt"
    if cfg.model.init_from is not None and not last.is_file():
        _warm_start(model, cfg, Path(cfg.model.init_from), pools, aug)
    start = resume(last, model, opt)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(start, opt_cfg.epochs):
        rng = np.random.default_rng([seed, 101, epoch])
        model.train()
        losses: list[float] = []
        family_losses: list[float] = []
        t0 = time.time()
        for k in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * steps + k)
            xb, yb, fb = sample_batch(pools, rng, opt_cfg.batch, cfg.model.size, aug)
            out = model(_to_input(xb).contiguous(memory_format=torch.channels_last))
            loss = loss_fn(out[:, 0], torch.from_numpy(yb))
            losses.append(loss.item())
            if family_head:
                fam = torch.from_numpy(fb)
                mask = fam >= 0  # generated images of the sets; reals and self-made: neither
                if bool(mask.any()):
                    family_loss = loss_fn(out[mask, 1], fam[mask])
                    family_losses.append(family_loss.item())
                    loss = loss + cfg.model.family_weight * family_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        save_checkpoint(last, model, opt, epoch)
        entry: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(losses))}
        if family_losses:
            entry["family_loss"] = float(np.mean(family_losses))
        fam_text = f", family loss {entry['family_loss']:.4f}" if family_losses else ""
        log(f"epoch {epoch}: loss {entry['loss']:.4f}{fam_text} ({time.time() - t0:.0f} s)")
        with (run_dir / "log.jsonl").open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
    return export_onnx(model, cfg.model.size, run_dir / "model.onnx")


def _warm_start(
    model: EfficientNetLite, cfg: SynthCnnConfig, init_from: Path, pools: Pools, aug: Augment
) -> None:
    """Load ``init_from`` (an exported synthesis CNN) into ``model`` and re-estimate its
    BatchNorm statistics on 8 training batches of a seed of their own (the run's batches are
    untouched)."""

    from fakescope.training.onnx_init import refit_batchnorm, state_from_onnx

    if not init_from.is_file():
        raise ConfigError(f"model.init_from: {init_from} is not a file")
    model.load_state_dict(state_from_onnx(model, init_from))
    rng = np.random.default_rng([cfg.run.seed, 7])

    def batches() -> Iterator[torch.Tensor]:
        for _ in range(8):
            yield _to_input(sample_batch(pools, rng, cfg.optim.batch, cfg.model.size, aug)[0])

    seen = refit_batchnorm(model, batches())
    log(f"warm start from {init_from} (BatchNorm re-estimated on {seen} samples)")


def export_onnx(model: EfficientNetLite, size: int, path: Path) -> Path:
    """Export the network: normalised NCHW float patches -> ``logit`` (N,), with a two-output
    head also ``family_logit`` (N,; sigmoid = P(diffusion | generated)), and the pooled
    1280-d ``embedding`` (N, 1280) both are linear functions of (what ``fakescope finetune``
    refits a head on)."""
    import warnings

    import torch
    from torch import nn

    family = int(model._fc.out_features) == 2

    class _Export(nn.Module):
        def __init__(self, net: EfficientNetLite) -> None:
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
            _Export(model).eval(),  # else the exporter restores train mode after
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
    from fakescope.training.effnet_lite import EfficientNetLite

    data = json.loads((run / "weights.json").read_text())
    state = torch.load(run / "last.pt", weights_only=True)["model"]
    model_cfg = load_config(run / "config.yaml")[1].model  # the run's backbone and stem
    variant = backbone_variant(model_cfg.backbone)
    model = EfficientNetLite(int(state["_fc.weight"].shape[0]), 0.2, variant, model_cfg.npr)
    model.load_state_dict(state)
    path = export_onnx(model, int(data["input_size"]), run / data["file"])
    weights = CnnSynthesisWeights.from_dict({**data, "sha256": sha256_file(path)})
    return weights.save(run / "weights.json")


def ship(cfg: SynthCnnConfig, run_dir: Path) -> dict[str, Path]:
    """The engine's ship stage: ``run_dir``'s network into the package as ``<ship.stem>.onnx``
    with ``<ship.stem>.json`` (the run's weight config pointing at it), or with ``ship.beside``
    the run's own ``weights.json``; with ``ship.int8_stem`` the quantize stage's network too.
    Returns the JSON(s) (their sha256 goes into ``ASSET_SHA256``)."""
    sh = cfg.ship
    return ship_run(run_dir, sh.stem, sh.int8_stem, sh.beside, sh.dest)


def quantize(cfg: SynthCnnConfig, run_dir: Path) -> RunResult:
    """The engine's quantize stage (:mod:`fakescope.training.synthesis_cnn_stages`)."""
    return quantize_run(run_dir, cfg.quantize, [root for root, _ in _set_roots(cfg)])


def calibrate(cfg: SynthCnnConfig, run_dir: Path) -> RunResult:
    """The engine's calibrate stage (:mod:`fakescope.training.synthesis_cnn_stages`)."""
    (root, _), *gen = _set_roots(cfg)
    return calibrate_run(run_dir, cfg.calibrate, root, gen, cfg.run.seed)


def _set_roots(cfg: SynthCnnConfig) -> list[tuple[Path, str]]:
    """Every generated-image set's folder and family, ``data.root`` first."""
    data = cfg.data
    if not data.root:
        raise ConfigError("data.root: name the generated-image set (e.g. stylegan2_ffhq)")
    extra = [parse_gen(t) for t in data.gen] + [(Path(r), "diffusion") for r in data.diffusion]
    return [(Path(data.root), data.family), *extra]


def _sets(cfg: SynthCnnConfig) -> tuple[list[GenSet], list[GenSet]]:
    """Every generated-image set (``data.root`` first) and those whose family is trained."""
    data, seed = cfg.data, cfg.run.seed
    (root, family), *extra = _set_roots(cfg)
    sets = [load_gen_set(root, family, "image", seed)]
    sets += [load_gen_set(root, family, "prompt", seed) for root, family in extra]
    names = [g.name for g in sets]
    if len(set(names)) != len(names):
        raise ConfigError(f"set folder names must differ: {', '.join(names)}")
    trained = [g for g in sets if g.family in data.train_families]
    if not any(g.of("train", 1) for g in trained):
        families = ", ".join(data.train_families)
        raise InputError(f"no generated training images of the families {families}")
    return sets, trained


def _pools(
    cfg: SynthCnnConfig, sets: list[GenSet], trained: list[GenSet]
) -> tuple[Pools, dict[str, list[str]]]:
    """The decoded training images, and the held-out reals of each ``data.reals`` set (the
    next ``eval.fp_count`` of the same seeded order the training reals were drawn from)."""
    data = cfg.data
    lim = data.limit or None
    fakes: dict[str, list[list[_U8]]] = {}
    for g in trained:
        fakes.setdefault(g.family, []).append([read_image(i.path) for i in g.of("train", 1)[:lim]])
    gen_real = [read_image(i.path) for g in sets for i in g.of("train", 0)[:lim]]
    other: list[_U8] = []
    held: dict[str, list[str]] = {}
    for k, root in enumerate(map(Path, data.reals)):
        paths = _pick_order(
            [i.path for i in load_manifest(root, root.name) if i.label == 0], cfg.run.seed, 7 + k
        )
        n = data.extra_reals if data.extra_reals > 0 else len(paths)
        other += [read_image(p) for p in paths[:n][:lim]]
        held[root.name] = paths[n : n + cfg.eval.fp_count][:lim]
    for root in map(Path, data.video_reals):
        for path in real_videos(root)[:lim]:
            other += read_video_frames(path, data.frames_per_video)
    pools = Pools(fakes=fakes, gen_real=gen_real, other_real=other)
    if not gen_real:
        raise InputError(f"{data.root}: the train split needs real images")
    if not pools.other_real:
        pools.other_real = pools.gen_real
    counts = ", ".join(f"{f} {sum(len(s) for s in v)}" for f, v in sorted(fakes.items()))
    log(f"train: generated {counts}; {len(gen_real)} real from the sets, {len(other)} other reals")
    return pools, held


def fit(cfg: SynthCnnConfig, run_dir: Path) -> RunResult:
    """The engine's entry point: splits and manifests, train (resuming), export, calibrate on
    the calib split and measure the test split: ``model.onnx``, ``weights.json``,
    ``report.json`` (the report is the run's metrics)."""
    t_start = time.time()
    cv2.setNumThreads(1)  # decoding and augmenting on one thread, as the shipped runs did
    sets, trained = _sets(cfg)
    write_splits(sets[0], run_dir / "splits.tsv")  # cnn-v1's file, for the quantizer
    for g in sets:
        write_splits(g, run_dir / "sets" / g.name / "splits.tsv")
    write_manifests(sets, run_dir)
    families = {g.family for g in trained}
    family_head = cfg.model.family_weight > 0 and len(families) == len(FAMILIES)
    pools, held = _pools(cfg, sets, trained)
    aug = Augment(**dataclasses.asdict(cfg.augment))  # its default Degradation
    t_load = time.time()
    onnx_path = _train(cfg, run_dir, pools, aug, family_head)
    t_train = time.time()
    del pools
    from fakescope.models import sha256_file

    trained_names = ", ".join(f"{g.name} ({g.family}, by {g.rule})" for g in trained)
    other_reals = [Path(r).name for r in (*cfg.data.reals, *cfg.data.video_reals)]
    weights = CnnSynthesisWeights(
        name=cfg.model.name,
        version=cfg.model.version,
        file=onnx_path.name,
        sha256=sha256_file(onnx_path),
        input_size=cfg.model.size,
        mean=MEAN,
        std=STD,
        max_side=MAX_SIDE,
        patches=cfg.model.patches,
        layout=cfg.model.layout,
        architecture=f"EfficientNet-{backbone_variant(cfg.model.backbone).title()} (ImageNet init)"
        + (" reading each patch and its neighbouring-pixel residual" if cfg.model.npr else "")
        + f" on {_patch_words(cfg.model.patches, cfg.model.layout)}, mean logit"
        + ("; a family_logit output, P(diffusion | generated)" if family_head else ""),
        trained_on=(
            f"train splits of {trained_names}, reals of {', '.join(other_reals) or 'no other set'}"
            ", self-made up-sampled fakes; research-only data, see MODEL_CARD"
        ),
        license="Apache-2.0 (code); weights trained on research-only data, see MODEL_CARD",
    )
    weights, figures = evaluate(
        sets, trained, weights, onnx_path, held, cfg.eval, run_dir, cfg.data.limit, cfg.run
    )
    report = {
        "name": cfg.model.name,
        "command": f"fakescope train {run_dir / 'config.yaml'}",
        **figures,
        "seconds": {
            "load": round(t_load - t_start),
            "train": round(t_train - t_load),
            "evaluate": round(time.time() - t_train),
            "total": round(time.time() - t_start),
        },
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(json.dumps(report))
    outputs = {"model": onnx_path, "weights": run_dir / "weights.json"}
    return RunResult(run_dir, {**outputs, "report": run_dir / "report.json"}, report)


_USAGE = """usage: python3 -m fakescope.training.synthesis_cnn COMMAND (training: fakescope train)
  ship RUN_FOLDER FILE_STEM                           copy a run's network into the package
                                                      (fakescope train --ship RUN_FOLDER)
  reexport RUN_FOLDER                                 export a run's last.pt again
  recalibrate WEIGHTS_JSON DATA_DIR [SET=FAMILY ...]  refit a weight file's calibrator"""


def main(argv: Sequence[str] | None = None) -> None:
    """The finished-run tools: ``ship``, ``reexport``, ``recalibrate`` (``_USAGE``)."""
    command, *rest = list(sys.argv[1:] if argv is None else argv) or [""]
    if command == "reexport" and len(rest) == 1:
        print(f"wrote {reexport(Path(rest[0]))}")
    elif command == "recalibrate" and len(rest) >= 2:
        try:
            gen = [parse_gen(t) for t in rest[2:]]
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        print(json.dumps(recalibrate(Path(rest[0]), Path(rest[1]), gen=gen)))
    elif command == "ship" and len(rest) == 2:
        from fakescope.models import sha256_file

        section = SynthShip(stem=rest[1])
        section.validate()
        path = ship(dataclasses.replace(CONFIG(), ship=section), Path(rest[0]))["weights"]
        print(f"wrote {path} (sha256 {sha256_file(path)}: add it to ASSET_SHA256)")
    else:
        raise SystemExit(_USAGE)


if __name__ == "__main__":
    main()

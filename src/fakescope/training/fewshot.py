"""The engine's ``fewshot`` recipe: issue 11/28's few-shot transfer figures of a CNN synthesis
detector (:func:`fakescope.training.finetune.transfer_report`) as a run of the one engine.

    fakescope train configs/fewshot_sd21.yaml [--set fewshot.base=PATH/synth_cnn_v1.json]
    fakescope train --ship runs/fewshot_sd21 --set ship.shots=50 ship.dest=my_detectors

Fit: for each N of ``fewshot.shots``, :func:`~fakescope.training.finetune.finetune` refits the
base's head on N generated + N real images of the new set (the backbone frozen, L2-SP towards
the base head) and measures AUC on the new set's held-out source groups and on the old set's
test split, before and after; writes ``report.json`` and each fine-tuned weight config
``ft<N>.json`` (the base's network beside it) into the run folder. No torch.

Ship (nothing by default): ``ship.shots`` names the fine-tuned detector to copy, with its
network, into ``ship.dest`` (a folder of the user's, never the package: a head fitted on a few
shots is a user's detector, not a shipped one), for ``--synthesis-detector DEST/<file>``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fakescope.errors import ConfigError
from fakescope.training.config import RunConfig, check
from fakescope.training.finetune import DEFAULT_L2SP
from fakescope.training.stages import RunResult

__all__ = ["CONFIG", "FewshotConfig", "fit", "ship"]


@dataclass
class FewshotData:
    new: str = ""  # set with MANIFEST.tsv: the new generator's images (required)
    old: str = "../shared/data/stylegan2_ffhq"  # the base's own set: its test split
    new_reals: str | None = None  # a set whose reals pair with `new`'s fakes (it has none)

    def validate(self) -> None:
        pass  # `new` is checked when the run starts, so the defaults resolve


@dataclass
class FewshotSection:
    base: str = "cnn-v3"  # registered synthesis detector or weight .json of a CNN
    shots: tuple[int, ...] = (10, 50, 200)  # shots per class, one fine-tuned head each
    l2sp: float | None = DEFAULT_L2SP  # L2-SP strength; null: chosen on the shots
    eval_per_class: int = 300  # held-out new-set images per class

    def validate(self) -> None:
        check(bool(self.shots) and min(self.shots) >= 2, "fewshot.shots", "each must be >= 2")
        check(self.eval_per_class >= 1, "fewshot.eval_per_class", "must be >= 1")
        check(self.l2sp is None or self.l2sp >= 0, "fewshot.l2sp", "must be >= 0 or null")


@dataclass
class FewshotRun(RunConfig):
    out: str = "runs/fewshot"


@dataclass
class FewshotShip:
    shots: int = 0  # the fine-tuned head to ship (one of fewshot.shots); 0: nothing
    dest: str = ""  # folder it is copied into (with its network)

    def validate(self) -> None:
        check(self.shots >= 0, "ship.shots", "must be >= 0")
        check(not self.shots or bool(self.dest), "ship.dest", "give the folder to ship into")


@dataclass
class FewshotConfig:
    data: FewshotData = field(default_factory=FewshotData)
    fewshot: FewshotSection = field(default_factory=FewshotSection)
    run: FewshotRun = field(default_factory=FewshotRun)
    ship: FewshotShip = field(default_factory=FewshotShip)


CONFIG = FewshotConfig


def fit(cfg: FewshotConfig, run_dir: Path) -> RunResult:
    """Fine-tune and measure for every shot count; ``report.json`` and ``ft<N>.json``."""
    from fakescope.training.finetune import transfer_report

    if not cfg.data.new:
        raise ConfigError("data.new: give the new generator's set (a folder with MANIFEST.tsv)")
    report_path = Path(run_dir) / "report.json"
    report = transfer_report(
        cfg.fewshot.base,
        Path(cfg.data.new),
        Path(cfg.data.old),
        cfg.fewshot.shots,
        report_path,
        l2sp=cfg.fewshot.l2sp,
        eval_per_class=cfg.fewshot.eval_per_class,
        seed=cfg.run.seed,
        new_reals=None if cfg.data.new_reals is None else Path(cfg.data.new_reals),
    )
    outputs = {"report": report_path}
    outputs.update({f"ft{n}": Path(run_dir) / f"ft{n}.json" for n in cfg.fewshot.shots})
    return RunResult(Path(run_dir), outputs, {"before": report["before"], "after": report["after"]})


def ship(cfg: FewshotConfig, run_dir: Path) -> Path:
    """Copy ``ft<ship.shots>.json`` and its network into ``ship.dest``; returns the copy."""
    n = cfg.ship.shots
    if not n:
        raise ConfigError("ship: nothing to ship; give ship.shots (and ship.dest)")
    source = Path(run_dir) / f"ft{n}.json"
    if not source.is_file():
        raise ConfigError(f"ship.shots: the run has no {source.name} (its shots: ft*.json)")
    dest = Path(cfg.ship.dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source.with_suffix(".onnx"), dest / f"ft{n}.onnx")
    shutil.copyfile(source, dest / source.name)
    return dest / source.name

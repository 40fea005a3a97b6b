"""The one training engine: every recipe runs through :func:`train`.

    fakescope train configs/sbi_v4_lite0.yaml [--set optim.lr=3e-4 run.out=runs/x]
    fakescope train configs/vae_v1.yaml
    fakescope train --stage quantize|calibrate|ship runs/x [--set quantize.calib_count=500]
    fakescope train --ship runs/vae_v1 [--set ship.beside=true]      # = --stage ship

A config file names its recipe (``recipe: vae``; without the key it is ``sbi``, the face
detector). The engine does for every recipe what no recipe does for itself:

1. **config**: the recipe's typed root dataclass (sections of dataclasses, each with a
   ``validate()``) resolved with one precedence, defaults < YAML < ``--set``; unknown keys
   are errors (:func:`fakescope.training.config.resolve`);
2. **run folder**: ``run.out`` is created, the resolved config is saved there as
   ``config.yaml`` (with its ``recipe:`` line, so ``fakescope train <run>/config.yaml``
   repeats the run), seeds and thread counts are set from ``run.seed``/``run.threads``;
3. **fit**: the recipe's ``fit(cfg, run_dir)`` reads the data store, runs its loop (resuming
   where it can), exports ONNX and returns what it made (a :class:`RunResult`), recorded in
   ``result.json`` (:mod:`fakescope.training.stages`);
4. **quantize** and 5. **calibrate**, when the config's ``quantize`` / ``calibrate`` section
   says ``enabled: true`` (off by default): the recipe's ``quantize(cfg, run_dir)`` writes
   ``model_int8.onnx`` and its weight config from the run's train split
   (:class:`~fakescope.training.config.QuantizeSection`), its ``calibrate(cfg, run_dir)``
   refits the calibrator of the run's network(s) on the run's calib split
   (:class:`~fakescope.training.config.CalibrateSection`); each records itself in
   ``result.json``. Recipes that cannot (``vae``, ``cues``, ``attribution``) have neither
   section nor function.
6. **ship** (never automatic: it writes into the package), on a finished run folder:
   :func:`run_stage` ``(run, "ship")`` or :func:`ship`; the recipe's ``ship(cfg, run_dir)``
   copies what fit and the stages made into the package's ``models/assets`` (or writes weight
   configs beside the run's models) as the config's ``ship`` section says
   (:mod:`fakescope.training.ship`); a section by default ships nothing.

:func:`run_stage` runs any later stage on a finished run from its saved ``config.yaml``
resolved again with overrides, whatever ``enabled`` says.

A recipe is one module plus one :func:`register_recipe` line below. The module defines
``CONFIG`` (its root config class, with a ``run`` section of :class:`RunConfig` and a ``ship``
section), ``fit`` and ``ship``, and ``quantize`` / ``calibrate`` when its config has those
sections. Modules are imported only when their recipe runs, so listing recipes needs no torch.
"""

from __future__ import annotations

import importlib
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import yaml

from fakescope.errors import ConfigError
from fakescope.training.config import RunConfig, config_dict, read_yaml, resolve
from fakescope.training.stages import (
    LATER_STAGES,
    RunResult,
    finished_config,
    record_stage,
    start_record,
)

__all__ = [
    "DEFAULT_RECIPE",
    "Recipe",
    "RecipeModule",
    "RunResult",
    "get_recipe",
    "list_recipes",
    "load_config",
    "log",
    "register_recipe",
    "run_stage",
    "ship",
    "train",
]

DEFAULT_RECIPE = "sbi"


class RecipeModule(Protocol):
    """What a recipe module provides."""

    CONFIG: type[Any]

    def fit(self, cfg: Any, run_dir: Path) -> RunResult: ...

    def ship(self, cfg: Any, run_dir: Path) -> Path | dict[str, Path]: ...


_StageFunction = Callable[[Any, Path], RunResult | Path | dict[str, Path]]


@dataclass(frozen=True)
class Recipe:
    """A registered recipe: its name, the module that holds it, and one line about it."""

    name: str
    module: str
    summary: str

    def load(self) -> RecipeModule:
        mod = importlib.import_module(self.module)
        for attr in ("CONFIG", "fit", "ship"):
            if not hasattr(mod, attr):
                raise ConfigError(f"recipe {self.name!r}: {self.module} has no {attr}")
        return cast(RecipeModule, mod)


_RECIPES: dict[str, Recipe] = {}


def register_recipe(name: str, module: str, summary: str) -> Recipe:
    """Register a recipe (a module with ``CONFIG``, ``fit`` and ``ship``) under ``name``."""
    if name in _RECIPES:
        raise ValueError(f"recipe {name!r} is already registered")
    recipe = Recipe(name, module, summary)
    _RECIPES[name] = recipe
    return recipe


def list_recipes() -> list[Recipe]:
    return [_RECIPES[name] for name in sorted(_RECIPES)]


def get_recipe(name: str) -> Recipe:
    try:
        return _RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown recipe {name!r} (known: {', '.join(sorted(_RECIPES))})"
        ) from None


def load_config(
    config: str | Path | Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] = ()
) -> tuple[Recipe, Any]:
    """The recipe a config names and its resolved root config (defaults < YAML < overrides)."""
    loaded = dict(config) if isinstance(config, Mapping) else read_yaml(config)
    name = loaded.pop("recipe", DEFAULT_RECIPE)
    if not isinstance(name, str):
        raise ConfigError(f"recipe: expected a name, got {name!r}")
    recipe = get_recipe(name)
    root = recipe.load().CONFIG
    cfg = resolve(loaded, overrides, root=root)
    if not isinstance(getattr(cfg, "run", None), RunConfig):
        raise ConfigError(f"recipe {name!r}: its CONFIG has no run section of RunConfig")
    return recipe, cfg


def log(message: str) -> None:
    """A recipe's progress line: the time and ``message`` on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _seed(seed: int, threads: int) -> None:
    import cv2
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    cv2.setNumThreads(threads)
    try:
        import torch
    except ImportError:  # the cues and attribution recipes do not need torch
        return
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def train(
    config: str | Path | Mapping[str, Any],
    overrides: Sequence[str] | Mapping[str, Any] = (),
    progress: Callable[[str], None] = log,
) -> RunResult:
    """Run (or resume) the recipe a config names, then each later stage its config enables
    (quantize, calibrate; never ship); returns what fit made (every stage's outputs are in
    ``result.json``). ``progress`` gets the engine's own lines (default: :func:`log`)."""
    recipe, cfg = load_config(config, overrides)
    enabled = [s for s in LATER_STAGES if getattr(getattr(cfg, s, None), "enabled", False)]
    module = recipe.load()
    for stage in enabled:  # refused before the run folder is made, not after the fit
        _stage_function(recipe, module, cfg, stage)
    run_dir = Path(cfg.run.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = {"recipe": recipe.name, **config_dict(cfg)}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False), "utf-8")
    _seed(cfg.run.seed, cfg.run.threads)
    progress(f"recipe {recipe.name}: {recipe.summary} -> {run_dir}")
    start = time.perf_counter()
    result = module.fit(cfg, run_dir)
    start_record(recipe.name, result, time.perf_counter() - start)
    for stage in enabled:
        _run(recipe, module, cfg, run_dir, stage, (), progress)
    return result


def _stage_function(recipe: Recipe, module: RecipeModule, cfg: Any, stage: str) -> _StageFunction:
    if stage not in LATER_STAGES:
        raise ConfigError(f"unknown stage {stage!r} (stages after fit: {', '.join(LATER_STAGES)})")
    function = getattr(module, stage, None)
    if getattr(cfg, stage, None) is None or not callable(function):
        raise ConfigError(
            f"recipe {recipe.name!r} has no {stage} stage (its CONFIG has no {stage} section)"
        )
    return cast(_StageFunction, function)


def _run(
    recipe: Recipe,
    module: RecipeModule,
    cfg: Any,
    run_dir: Path,
    stage: str,
    overrides: Sequence[str] | Mapping[str, Any],
    progress: Callable[[str], None],
) -> RunResult:
    function = _stage_function(recipe, module, cfg, stage)
    progress(f"{stage}: {run_dir}")
    start = time.perf_counter()
    made = function(cfg, run_dir)
    if isinstance(made, RunResult):
        result = made
    else:  # a ship function: the file(s) it wrote
        result = RunResult(run_dir, made if isinstance(made, dict) else {"weights": made})
    record_stage(stage, result, time.perf_counter() - start, overrides)
    return result


def run_stage(
    run_dir: str | Path,
    stage: str,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    progress: Callable[[str], None] = log,
) -> RunResult:
    """Run one later stage (``quantize``, ``calibrate`` or ``ship``) on a finished run folder
    by its saved ``config.yaml`` resolved with ``overrides`` (e.g. ``["ship.beside=true"]``),
    whatever the section's ``enabled`` says; records it in ``result.json`` and returns what it
    made."""
    run_dir = Path(run_dir)
    if stage not in LATER_STAGES:
        raise ConfigError(f"unknown stage {stage!r} (stages after fit: {', '.join(LATER_STAGES)})")
    recipe, cfg = load_config(finished_config(run_dir, stage), overrides)
    return _run(recipe, recipe.load(), cfg, run_dir, stage, overrides, progress)


def ship(run_dir: str | Path, overrides: Sequence[str] | Mapping[str, Any] = ()) -> Path:
    """Ship a finished run by the ``ship`` section of its saved ``config.yaml`` (resolved with
    ``overrides``, e.g. ``["ship.beside=true"]``); returns the main file the recipe wrote (the
    shipped weight config or asset; an int8 twin's is in ``result.json``)."""
    result = run_stage(run_dir, "ship", overrides, progress=lambda _: None)
    return next(iter(result.outputs.values()))


register_recipe(
    "sbi",
    "fakescope.training.train_sbi",
    "face detector on Self-Blended Images (+ supervised fakes), EfficientNet-Lite0/1/2",
)
register_recipe(
    "synthesis-cnn",
    "fakescope.training.synthesis_cnn",
    "synthesis detector's CNN (whole images, GAN and diffusion, family output), EfficientNet-Lite",
)
register_recipe("vae", "fakescope.training.vae", "one-class VAE on real faces (oneclass-vae-v1)")
register_recipe("cues", "fakescope.training.cues", "hand-crafted track cues + SVM (cues-svm-v1)")
register_recipe("attribution", "fakescope.training.attribution", "method attribution (attrib-v1)")
register_recipe(
    "fewshot",
    "fakescope.training.fewshot",
    "few-shot transfer of a synthesis CNN to a new generator (fakescope finetune's figures)",
)

"""The one training engine: every recipe runs through :func:`train`.

    fakescope train configs/sbi_v4_lite0.yaml [--set optim.lr=3e-4 run.out=runs/x]
    fakescope train configs/vae_v1.yaml
    fakescope train --ship runs/vae_v1 [--set ship.beside=true]

A config file names its recipe (``recipe: vae``; without the key it is ``sbi``, the face
detector). The engine does for every recipe what no recipe does for itself:

1. **config**: the recipe's typed root dataclass (sections of dataclasses, each with a
   ``validate()``) resolved with one precedence, defaults < YAML < ``--set``; unknown keys
   are errors (:func:`fakescope.training.config.resolve`);
2. **run folder**: ``run.out`` is created, the resolved config is saved there as
   ``config.yaml`` (with its ``recipe:`` line, so ``fakescope train <run>/config.yaml``
   repeats the run), seeds and thread counts are set from ``run.seed``/``run.threads``;
3. **fit**: the recipe's ``fit(cfg, run_dir)`` reads the data store, runs its loop (resuming
   where it can), exports ONNX and returns what it made (a :class:`RunResult`);
4. **record**: ``result.json`` in the run folder (outputs and figures).

5. **ship** (:func:`ship`, ``fakescope train --ship RUN``, on a finished run folder): the
   run's saved ``config.yaml`` resolved again (with overrides such as ``ship.beside=true``),
   then the recipe's ``ship(cfg, run_dir)`` copies its artefact into the package's
   ``models/assets`` (or writes a weight config beside the run's model) as the config's
   ``ship`` section says (:mod:`fakescope.training.ship`); a section by default ships nothing.

Quantizing (:mod:`fakescope.training.quantize`) and calibrating (``fakescope calibrate``)
run as their own commands on a finished run folder.

A recipe is one module plus one :func:`register_recipe` line below. The module defines
``CONFIG`` (its root config class, with a ``run`` section of :class:`RunConfig` and a ``ship``
section), ``fit`` and ``ship``. Modules are imported only when their recipe runs, so listing
recipes needs no torch.
"""

from __future__ import annotations

import importlib
import json
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import yaml

from fakescope.errors import ConfigError
from fakescope.training.config import RunConfig, config_dict, read_yaml, resolve

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
    "ship",
    "train",
]

DEFAULT_RECIPE = "sbi"


@dataclass
class RunResult:
    """What a recipe's ``fit`` made: the exported model (or fitted file) and its figures."""

    run_dir: Path
    outputs: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "metrics": self.metrics,
        }


class RecipeModule(Protocol):
    """What a recipe module provides."""

    CONFIG: type[Any]

    def fit(self, cfg: Any, run_dir: Path) -> RunResult: ...

    def ship(self, cfg: Any, run_dir: Path) -> Path: ...


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
    """Run (or resume) the recipe a config names; returns what it made. ``progress`` gets the
    engine's own lines (default: :func:`log`)."""
    recipe, cfg = load_config(config, overrides)
    run_dir = Path(cfg.run.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = {"recipe": recipe.name, **config_dict(cfg)}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False), "utf-8")
    _seed(cfg.run.seed, cfg.run.threads)
    progress(f"recipe {recipe.name}: {recipe.summary} -> {run_dir}")
    result = recipe.load().fit(cfg, run_dir)
    (run_dir / "result.json").write_text(
        json.dumps({"recipe": recipe.name, **result.to_json()}, indent=2) + "\n", "utf-8"
    )
    return result


def ship(run_dir: str | Path, overrides: Sequence[str] | Mapping[str, Any] = ()) -> Path:
    """Ship a finished run by the ``ship`` section of its saved ``config.yaml`` (resolved with
    ``overrides``, e.g. ``["ship.beside=true"]``); returns what the recipe wrote (the shipped
    weight config or asset)."""
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise ConfigError(
            f"{run_dir}: no config.yaml, not a run folder of fakescope train (a face network "
            "of an older run ships with python3 -m fakescope.training.ship)"
        )
    if not (run_dir / "result.json").is_file():
        raise ConfigError(
            f"{run_dir}: the run has not finished (no result.json): train first "
            f"(fakescope train {config})"
        )
    recipe, cfg = load_config(config, overrides)
    if getattr(cfg, "ship", None) is None:
        raise ConfigError(f"recipe {recipe.name!r}: its CONFIG has no ship section")
    return recipe.load().ship(cfg, run_dir)


register_recipe(
    "sbi",
    "fakescope.training.train_sbi",
    "face detector on Self-Blended Images (+ supervised fakes), EfficientNet-Lite0",
)
register_recipe(
    "synthesis-cnn",
    "fakescope.training.synthesis_cnn",
    "synthesis detector's CNN (whole images, GAN and diffusion, family output), EfficientNet-Lite0",
)
register_recipe("vae", "fakescope.training.vae", "one-class VAE on real faces (oneclass-vae-v1)")
register_recipe("cues", "fakescope.training.cues", "hand-crafted track cues + SVM (cues-svm-v1)")
register_recipe("attribution", "fakescope.training.attribution", "method attribution (attrib-v1)")

"""The one training engine: recipe registry, config resolution per recipe, run records."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from fakescope.errors import ConfigError
from fakescope.training.config import RunConfig
from fakescope.training.engine import (
    DEFAULT_RECIPE,
    RunResult,
    get_recipe,
    list_recipes,
    load_config,
    register_recipe,
    train,
)

REPO = Path(__file__).resolve().parents[1]


@dataclass
class _Params:
    scale: float = 1.0
    steps: int = 3

    def validate(self) -> None:
        if self.steps < 1:
            raise ConfigError("params.steps: must be >= 1")


@dataclass
class _Root:
    params: _Params = field(default_factory=_Params)
    run: RunConfig = field(default_factory=RunConfig)


def _fit(cfg: _Root, run_dir: Path) -> RunResult:
    out = run_dir / "model.txt"
    out.write_text(str(cfg.params.scale * cfg.params.steps))
    return RunResult(run_dir, {"model": out}, {"value": cfg.params.scale * cfg.params.steps})


@pytest.fixture(scope="module")
def toy_recipe() -> str:
    module = types.ModuleType("fakescope_test_toy_recipe")
    module.CONFIG = _Root  # type: ignore[attr-defined]
    module.fit = _fit  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    register_recipe("toy-test", module.__name__, "a recipe of the tests")
    return "toy-test"


def test_every_registered_recipe_loads_and_resolves_its_defaults() -> None:
    """Contract over the registry: each recipe module has CONFIG and fit, its defaults resolve,
    and its config has a run section (the engine's run folder, seed and threads)."""
    pytest.importorskip("torch")
    names = [r.name for r in list_recipes() if r.name != "toy-test"]
    assert DEFAULT_RECIPE in names
    for name in names:
        recipe, cfg = load_config({"recipe": name})
        assert recipe.name == name and isinstance(cfg.run, RunConfig)
        assert callable(recipe.load().fit)


def test_a_config_without_recipe_is_the_face_detector() -> None:
    pytest.importorskip("torch")
    recipe, cfg = load_config(REPO / "configs" / "sbi_v4_lite0.yaml")
    assert recipe.name == "sbi" and cfg.data.store


def test_unknown_recipe_and_unknown_keys_are_errors(toy_recipe: str) -> None:
    with pytest.raises(ConfigError, match="unknown recipe 'nope'"):
        load_config({"recipe": "nope"})
    with pytest.raises(ConfigError, match="unknown config section 'optim'"):
        load_config({"recipe": toy_recipe, "optim": {"lr": 1}})
    with pytest.raises(ConfigError, match=r"params\.nope"):
        load_config({"recipe": toy_recipe}, ["params.nope=1"])
    with pytest.raises(ConfigError, match=r"params\.steps"):
        load_config({"recipe": toy_recipe}, ["params.steps=0"])
    with pytest.raises(ValueError, match="already registered"):
        register_recipe(toy_recipe, "x", "y")


def test_train_saves_the_resolved_config_and_the_result(tmp_path: Path, toy_recipe: str) -> None:
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump({"recipe": toy_recipe, "params": {"scale": 2}}))
    out = tmp_path / "run"
    seen: list[str] = []
    result = train(config, ["params.steps=5", f"run.out={out}"], log=seen.append)
    assert result.run_dir == out and (out / "model.txt").read_text() == "10.0"
    assert seen and toy_recipe in seen[0]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["recipe"] == toy_recipe
    assert saved["params"] == {"scale": 2.0, "steps": 5} and saved["run"]["out"] == str(out)
    record = json.loads((out / "result.json").read_text())
    assert record["recipe"] == toy_recipe and record["metrics"] == {"value": 10.0}
    assert record["outputs"] == {"model": str(out / "model.txt")}
    # the saved config repeats the run (precedence: the file's values, then overrides)
    again = train(out / "config.yaml", [f"run.out={tmp_path / 'again'}"])
    assert again.metrics == result.metrics
    assert get_recipe(toy_recipe).summary == "a recipe of the tests"

"""The one training engine: recipe registry, config resolution per recipe, run records, and
its ship stage (``fakescope train --ship RUN``)."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from fakescope.errors import ConfigError
from fakescope.training.config import RunConfig, config_dict
from fakescope.training.engine import (
    DEFAULT_RECIPE,
    RunResult,
    get_recipe,
    list_recipes,
    load_config,
    register_recipe,
    ship,
    train,
)
from fakescope.training.ship import copy_asset

REPO = Path(__file__).resolve().parents[1]


@dataclass
class _Params:
    scale: float = 1.0
    steps: int = 3

    def validate(self) -> None:
        if self.steps < 1:
            raise ConfigError("params.steps: must be >= 1")


@dataclass
class _Ship:
    file: str = ""
    dest: str | None = None

    def validate(self) -> None:
        pass


@dataclass
class _Root:
    params: _Params = field(default_factory=_Params)
    run: RunConfig = field(default_factory=RunConfig)
    ship: _Ship = field(default_factory=_Ship)


def _fit(cfg: _Root, run_dir: Path) -> RunResult:
    out = run_dir / "model.txt"
    out.write_text(str(cfg.params.scale * cfg.params.steps))
    return RunResult(run_dir, {"model": out}, {"value": cfg.params.scale * cfg.params.steps})


def _ship(cfg: _Root, run_dir: Path) -> Path:
    if not cfg.ship.file:
        raise ConfigError("ship: nothing to ship")
    return copy_asset(run_dir / "model.txt", cfg.ship.file, cfg.ship.dest)


@pytest.fixture(scope="module")
def toy_recipe() -> str:
    module = types.ModuleType("fakescope_test_toy_recipe")
    module.CONFIG = _Root  # type: ignore[attr-defined]
    module.fit = _fit  # type: ignore[attr-defined]
    module.ship = _ship  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    register_recipe("toy-test", module.__name__, "a recipe of the tests")
    return "toy-test"


def test_every_registered_recipe_loads_and_resolves_its_defaults(tmp_path: Path) -> None:
    """Contract over the registry: each recipe module has CONFIG, fit and ship, its defaults
    resolve, its config has a run section (the engine's run folder, seed and threads) and a
    ship section, and that section's defaults ship nothing (a finished run with the default
    config is refused by the ship stage, before any file is read)."""
    pytest.importorskip("torch")
    names = [r.name for r in list_recipes() if not r.name.endswith("-test")]  # the tests' own
    assert DEFAULT_RECIPE in names
    assert {"sbi", "vae", "synthesis-cnn", "attribution", "cues"} <= set(names)
    for name in names:
        recipe, cfg = load_config({"recipe": name})
        assert recipe.name == name and isinstance(cfg.run, RunConfig)
        module = recipe.load()
        assert callable(module.fit) and callable(module.ship)
        assert "ship" in config_dict(cfg)
        cfg.ship.validate()
        run = tmp_path / name
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump({"recipe": name}))
        (run / "result.json").write_text("{}")
        with pytest.raises(ConfigError, match="nothing to ship"):
            ship(run)


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
    result = train(config, ["params.steps=5", f"run.out={out}"], progress=seen.append)
    assert result.run_dir == out and (out / "model.txt").read_text() == "10.0"
    assert seen and toy_recipe in seen[0]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["recipe"] == toy_recipe
    assert saved["params"] == {"scale": 2.0, "steps": 5} and saved["run"]["out"] == str(out)
    record = json.loads((out / "result.json").read_text())
    assert record["recipe"] == toy_recipe and record["metrics"] == {"value": 10.0}
    assert record["outputs"] == {"model": str(out / "model.txt")}
    (fit,) = record["stages"]  # the toy recipe has no later stage
    assert fit["stage"] == "fit" and fit["outputs"] == record["outputs"] and fit["seconds"] >= 0
    # the saved config repeats the run (precedence: the file's values, then overrides)
    again = train(out / "config.yaml", [f"run.out={tmp_path / 'again'}"])
    assert again.metrics == result.metrics
    assert get_recipe(toy_recipe).summary == "a recipe of the tests"


def test_ship_copies_a_finished_run_and_refuses_an_unfinished_one(
    tmp_path: Path, toy_recipe: str
) -> None:
    out, assets = tmp_path / "run", tmp_path / "assets"
    assets.mkdir()
    with pytest.raises(ConfigError, match=r"no config\.yaml"):
        ship(out)
    train({"recipe": toy_recipe}, [f"run.out={out}"])
    (out / "result.json").unlink()  # as a run stopped before its end leaves it
    with pytest.raises(ConfigError, match=r"has not finished \(no result.json\): train first"):
        ship(out, ["ship.file=toy.txt"])
    train(out / "config.yaml")
    shipped = ship(out, ["ship.file=toy.txt", f"ship.dest={assets}"])
    assert shipped == assets / "toy.txt"
    assert shipped.read_bytes() == (out / "model.txt").read_bytes()
    stages = json.loads((out / "result.json").read_text())["stages"]
    assert [e["stage"] for e in stages] == ["fit", "ship"]
    assert stages[1]["outputs"] == {"weights": str(shipped)}
    assert stages[1]["overrides"] == ["ship.file=toy.txt", f"ship.dest={assets}"]


def _finished_face_run(run: Path, recipe: str, data: dict[str, object]) -> Path:
    """A finished run folder of a face-network recipe: a tiny exported VAE as its
    ``model.onnx``, its saved ``config.yaml`` (with ``data``) and ``result.json``."""
    from fakescope.training import vae

    run.mkdir()
    vae.export_onnx(vae.VAE(32, 4), 32, 0.0, 1.0, run / "model.onnx")
    saved = {"recipe": recipe, **{"data": data, "run": {"out": str(run)}}}
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    (run / "result.json").write_text("{}")
    return run


def test_ship_a_face_network_beside_the_run_and_into_an_assets_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    import numpy as np

    from fakescope.cli import main
    from fakescope.models import WeightConfig, create_detector, sha256_file
    from fakescope.training import ship as ship_module

    run = _finished_face_run(tmp_path / "vae_run", "vae", {"size": 32, "margin": 0.2})
    model_sha = sha256_file(run / "model.onnx")
    with pytest.raises(ConfigError, match=r"ship\.name"):
        ship(run, ["ship.beside=true"])
    with pytest.raises(ConfigError, match="exclude each other"):
        ship(run, ["ship.name=x", "ship.beside=true", "ship.file=x.onnx"])

    # beside: weights.json next to model.onnx, nothing copied; the detector factory loads it
    beside = ship(run, ["ship.name=vae-test", "ship.beside=true", "ship.version=9.9.0"])
    assert beside == run / "weights.json" and sorted(p.name for p in run.iterdir()) == [
        "config.yaml", "model.onnx", "result.json", "weights.json"
    ]  # fmt: skip
    weights = WeightConfig.from_json(beside)
    assert (weights.name, weights.file, weights.sha256) == ("vae-test", "model.onnx", model_sha)
    assert (weights.input_size, weights.margin, weights.version) == (32, 0.2, "9.9.0")
    assert weights.architecture.startswith("Convolutional VAE") and weights.calibration is None
    detector = create_detector(str(beside))
    crops = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    scores = detector.predict(crops)
    assert scores.shape == (2,) and np.isfinite(scores).all()

    # the module's command line (runs without a ship section) writes the same weight config
    expected = json.loads(beside.read_text())
    beside.unlink()
    ship_module.main(
        [str(run / "model.onnx"), "--beside", "--name", "vae-test", "--input-size", "32",
         "--margin", "0.2", "--version", "9.9.0", "--architecture", weights.architecture,
         "--trained-on", weights.trained_on]
    )  # fmt: skip
    assert json.loads(beside.read_text()) == expected

    # into an assets folder (the package's models/assets unless ship.dest), with a calibrator
    assets = tmp_path / "assets"
    assets.mkdir()
    calibration = tmp_path / "calibration.json"
    fitted = {"crop": {"kind": "logit", "a": 0.5, "b": -0.1}}
    calibration.write_text(json.dumps({"calibration": fitted, "report": {}}))
    code = main(
        ["train", "--ship", str(run), "--set", "ship.name=vae-test", "ship.file=vae_test.onnx",
         f"ship.dest={assets}", f"ship.calibration={calibration}"]
    )  # fmt: skip
    shipped = assets / "vae_test.json"
    assert (
        code == 0
        and f"shipped {shipped} (sha256 {sha256_file(shipped)})" in capsys.readouterr().out
    )
    assert sorted(p.name for p in assets.iterdir()) == ["vae_test.json", "vae_test.onnx"]
    assert sha256_file(assets / "vae_test.onnx") == model_sha
    weights = WeightConfig.from_json(shipped)
    assert weights.file == "vae_test.onnx" and weights.sha256 == model_sha
    assert weights.calibration == fitted
    assert create_detector(str(shipped)).predict(crops) == pytest.approx(scores)


def test_ship_an_sbi_run_takes_input_size_and_margin_from_its_data_section(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch")
    from fakescope.models import WeightConfig, sha256_file

    run = _finished_face_run(tmp_path / "sbi_run", "sbi", {"input_size": 64, "margin": 0.25})
    path = ship(run, ["ship.name=sbi-test", "ship.beside=true"])
    weights = WeightConfig.from_json(path)
    assert (weights.input_size, weights.margin) == (64, 0.25)
    assert weights.sha256 == sha256_file(run / "model.onnx")
    assert weights.architecture == "EfficientNet-Lite0 (ImageNet init), sigmoid head"
    with pytest.raises(ConfigError, match=r"ship.file: a file name ending in .onnx"):
        ship(run, ["ship.name=x", "ship.file=../x.onnx"])


def test_the_shipped_models_configs_hold_their_ship_settings() -> None:
    """Each reproducing config's ship section says what the shipped weight config says."""
    pytest.importorskip("torch")
    from fakescope.models import asset_path

    face = {
        "sbi_lite0": "effnet_lite0_sbi",
        "sbi_v4_lite0": "effnet_lite0_v4",
        "sbi_realsonly_v1": "sbi_realsonly_v1",
        "sbi_realsonly_v3": "sbi_realsonly_v3",
        "vae_v1": "oneclass_vae_v1",
    }
    for config, stem in face.items():
        recipe, cfg = load_config(REPO / "configs" / f"{config}.yaml")
        shipped = json.loads(asset_path(f"{stem}.json").read_text())
        size = cfg.data.size if recipe.name == "vae" else cfg.data.input_size
        assert (size, cfg.data.margin) == (shipped["input_size"], shipped["margin"])
        for key in ("name", "file", "version", "threshold", "architecture", "trained_on"):
            assert getattr(cfg.ship, key) == shipped[key], (config, key)
        if cfg.ship.int8_file:  # the int8 twin's weight config, shipped by the same stage
            twin = json.loads(asset_path(cfg.ship.int8_file.replace(".onnx", ".json")).read_text())
            assert twin["file"] == cfg.ship.int8_file and twin["name"] == cfg.ship.int8_name
            assert twin["architecture"] == cfg.ship.int8_architecture
            assert twin["trained_on"] == cfg.ship.int8_trained_on
    assert load_config(REPO / "configs" / "synth_cnn_v3.yaml")[1].ship.stem == "synth_cnn_v3"
    assert load_config(REPO / "configs" / "synth_cnn_v2.yaml")[1].ship.stem == ""  # not shipped
    assert load_config(REPO / "configs" / "attrib_v1.yaml")[1].ship.stem == "attrib_v1"
    assert load_config(REPO / "configs" / "cues_v1.yaml")[1].ship.file == "cues_svm_v1.json"

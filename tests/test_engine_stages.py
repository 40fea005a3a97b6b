"""The engine's stages after fit (quantize, calibrate, ship) on tiny runs, without the shared
data: ``fakescope train CONFIG`` runs each enabled stage after fit, ``fakescope train --stage
STAGE RUN`` one stage on a finished run, every stage records itself in ``result.json``.

The runs are the real recipes' configs and stage functions (``sbi``'s
:mod:`fakescope.training.face_stages`, ``synthesis-cnn``'s
:mod:`fakescope.training.synthesis_cnn_stages`) with a tiny ``fit``: a hand-set network on
a tiny face store / tiny image sets, split by the recipes' own split writers. Each network
ranks its data the right way round (brighter faces, smoother images are the fakes), so that
Platt fits an increasing map as it does on a trained detector.
"""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")

from conftest import write_image  # noqa: E402
from fakescope.errors import ConfigError  # noqa: E402
from fakescope.training.config import TrainConfig, config_dict  # noqa: E402
from fakescope.training.engine import (  # noqa: E402
    RunResult,
    list_recipes,
    load_config,
    register_recipe,
    run_stage,
    ship,
    train,
)
from fakescope.training.stages import LATER_STAGES, read_record  # noqa: E402
from tiny_store import tiny_store  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _export(net: Any, size: int, outputs: list[str], path: Path) -> Path:
    names = ["input", *outputs]
    with warnings.catch_warnings():  # the legacy exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net.eval(),
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=names[:1],
            output_names=names[1:],
            dynamic_axes={k: {0: "n"} for k in names},
            opset_version=17,
            dynamo=False,
        )
    return path


class _Brightness(torch.nn.Module):  # type: ignore[misc]
    """A face network whose fake probability rises with the crop's brightness (the tiny
    store's fakes are its reals made brighter): local means, pooled, a linear head; and a
    mask output."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.conv = torch.nn.Conv2d(4, 8, 1)
        self.fc = torch.nn.Linear(8, 1)
        with torch.no_grad():
            self.stem.weight.fill_(1 / 27)
            self.stem.bias.zero_()
            self.conv.weight.fill_(1 / 4)
            self.conv.bias.zero_()
            self.fc.weight.fill_(1.0)
            self.fc.bias.fill_(-4.0)

    def forward(self, x):  # type: ignore[no-untyped-def]
        f = self.stem(x)
        emb = self.conv(f).mean(dim=(2, 3))
        return torch.sigmoid(self.fc(emb)[:, 0]), torch.sigmoid(f[:, 0]), emb


class _Roughness(torch.nn.Module):  # type: ignore[misc]
    """A synthesis network whose logit falls with the patch's pixel-to-pixel differences
    (the tiny sets' generated images are blurred noise, the reals noise)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 2, 3, padding=1, bias=False)
        self.mix = torch.nn.Conv2d(2, 4, 1)
        self.fc = torch.nn.Linear(4, 1)
        with torch.no_grad():
            self.stem.weight.zero_()
            self.stem.weight[0, :, 1, 1], self.stem.weight[0, :, 1, 2] = -1 / 3, 1 / 3
            self.stem.weight[1, :, 1, 1], self.stem.weight[1, :, 2, 1] = -1 / 3, 1 / 3
            self.mix.weight.fill_(0.5)
            self.mix.bias.zero_()
            self.fc.weight.fill_(-1.0)
            self.fc.bias.fill_(1.0)

    def forward(self, x):  # type: ignore[no-untyped-def]
        emb = self.mix(torch.abs(self.stem(x))).mean(dim=(2, 3))
        return self.fc(emb)[:, 0], emb


def _face_fit(cfg: TrainConfig, run_dir: Path) -> RunResult:
    """A tiny fit of the ``sbi`` recipe: the store split as the recipe splits it (its
    ``splits.json``), the hand-set network as ``model.onnx``."""
    from fakescope.training.balanced import load_store_data

    assert cfg.data.store
    ratios = cfg.data.split_ratios
    load_store_data(cfg.data.store, (ratios[0], ratios[1], ratios[2]), cfg.data.split_seed, run_dir)
    model = _export(_Brightness(), cfg.data.input_size, ["fake_probability", "mask", "embedding"],
                    run_dir / "model.onnx")  # fmt: skip
    return RunResult(run_dir, {"model": model}, {"tiny": 1})


def _synth_fit(cfg: Any, run_dir: Path) -> RunResult:
    """A tiny fit of the ``synthesis-cnn`` recipe: its splits and manifests as the recipe
    writes them, the hand-set network and its (uncalibrated) ``weights.json``."""
    from fakescope.models import sha256_file
    from fakescope.synthesis import CnnSynthesisWeights
    from fakescope.training.synthesis_cnn import MEAN, STD, _set_roots
    from fakescope.training.synthesis_cnn_data import load_gen_set, write_manifests, write_splits

    (root, family), *gen = _set_roots(cfg)
    sets = [load_gen_set(root, family, "image", cfg.run.seed)]
    sets += [load_gen_set(r, f, "prompt", cfg.run.seed) for r, f in gen]
    write_splits(sets[0], run_dir / "splits.tsv")
    for g in sets:
        write_splits(g, run_dir / "sets" / g.name / "splits.tsv")
    write_manifests(sets, run_dir)
    model = _export(_Roughness(), cfg.model.size, ["logit", "embedding"], run_dir / "model.onnx")
    CnnSynthesisWeights(
        name="tiny-synth", version="0", file=model.name, sha256=sha256_file(model),
        input_size=cfg.model.size, mean=MEAN, std=STD,
    ).save(run_dir / "weights.json")  # fmt: skip
    return RunResult(run_dir, {"model": model}, {"tiny": 1})


def _recipe(name: str, recipe_module: str, fit: Any) -> str:
    """Register ``name``: the real recipe ``recipe_module`` with ``fit`` replaced."""
    import importlib

    real = importlib.import_module(recipe_module)
    module = types.ModuleType(f"fakescope_test_{name.replace('-', '_')}")
    for attr in ("CONFIG", "quantize", "calibrate", "ship"):
        setattr(module, attr, getattr(real, attr))
    module.fit = fit  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    register_recipe(name, module.__name__, f"{recipe_module} with a tiny fit (tests)")
    return name


@pytest.fixture(scope="module")
def face_recipe() -> str:
    return _recipe("sbi-stages-test", "fakescope.training.train_sbi", _face_fit)


@pytest.fixture(scope="module")
def synth_recipe() -> str:
    return _recipe("synth-stages-test", "fakescope.training.synthesis_cnn", _synth_fit)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store") / "store"
    tiny_store(root, groups=10, frames=4)
    return root


def _face_config(recipe: str, store: Path, out: Path) -> dict[str, Any]:
    return {
        "recipe": recipe,
        "data": {"store": str(store), "split_ratios": [0.4, 0.2, 0.4], "input_size": 32},
        "run": {"out": str(out), "threads": 1},
        "calibrate": {"folds": 2, "bootstrap": 20},
        "quantize": {"calib_count": 24, "val_per_set": 50},
    }


def _stages(run: Path) -> list[str]:
    return [e["stage"] for e in read_record(run)["stages"]]


def _qdq(path: Path) -> dict[str, int]:
    """How many QuantizeLinear / DequantizeLinear nodes the ONNX file has (it loads in
    onnxruntime)."""
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    return {op: ops.count(op) for op in ("QuantizeLinear", "DequantizeLinear")}


ENABLED = {
    "sbi_v4_lite0.yaml": ["quantize"],
    # v5 candidates: v4's quantize settings, their int8 files are what MODEL_CARD measured
    "sbi_v5p_lite0.yaml": ["quantize"],
    "sbi_v5q_lite0.yaml": ["quantize"],
    "sbi_v5q10_lite0.yaml": ["quantize"],
    "synth_cnn_v2.yaml": ["quantize", "calibrate"],
    "synth_cnn_v3.yaml": ["quantize", "calibrate"],
}
"""The configs that run stages after fit: those whose stages were checked to make what the
shipped model's commands made (the configs' comments say how), and candidates measured with
them."""


def test_stage_sections_are_off_by_default_in_every_config() -> None:
    """Every config resolves, and only those of :data:`ENABLED` turn a stage on: the others
    run fit only, as before. Stage sections default to off. The recipes that can quantize
    and calibrate have the sections and the functions; the others have neither."""
    for path in sorted((REPO / "configs").glob("*.yaml")):
        recipe, cfg = load_config(path)
        on = [s for s in ("quantize", "calibrate") if getattr(getattr(cfg, s, None), "enabled", 0)]
        assert on == ENABLED.get(path.name, []), path.name
    for recipe in list_recipes():
        if recipe.name.endswith("-test"):
            continue
        cfg = load_config({"recipe": recipe.name})[1]
        module = recipe.load()
        for stage in ("quantize", "calibrate"):
            has = stage in config_dict(cfg)
            assert not has or getattr(cfg, stage).enabled is False  # off by default
            assert has == callable(getattr(module, stage, None)), (recipe.name, stage)
            assert has == (recipe.name in ("sbi", "synthesis-cnn")), (recipe.name, stage)
    with pytest.raises(ConfigError, match=r"quantize\.float_parts"):
        load_config({"recipe": "sbi"}, ["quantize.float_parts=[stem, neck]"])
    with pytest.raises(ConfigError, match=r"calibrate\.kinds"):
        load_config({"recipe": "sbi"}, ["calibrate.kinds=[platt]"])
    with pytest.raises(ConfigError, match=r"calibrate\.folds"):
        load_config({"recipe": "synthesis-cnn"}, ["calibrate.folds=3"])  # only sbi has folds
    # the reproducing configs' settings are those of the shipped models' commands
    v4 = load_config(REPO / "configs" / "sbi_v4_lite0.yaml")[1]
    assert (v4.quantize.calib_count, v4.quantize.seed, v4.quantize.method) == (300, 0, "minmax")
    assert v4.quantize.float_parts == ("stem", "head", "mask") and not v4.quantize.reduce_range
    assert (v4.calibrate.kinds, v4.calibrate.folds, v4.calibrate.group_by) == (
        ("logit",),
        5,
        "item",
    )
    realsonly = load_config(REPO / "configs" / "sbi_realsonly_v1.yaml")[1].calibrate
    assert (realsonly.group_by, realsonly.bootstrap, realsonly.enabled) == ("identity", 200, False)
    synth = load_config(REPO / "configs" / "synth_cnn_v3.yaml")[1]
    assert (synth.quantize.calib_count, synth.ship.int8_stem) == (300, "synth_cnn_v3_int8")
    # a face-cache run cannot: refused when the config is read, before any training
    with pytest.raises(ConfigError, match=r"quantize\.enabled: .*data\.store"):
        load_config(REPO / "configs" / "sbi_lite0.yaml", ["quantize.enabled=true"])


def test_a_run_without_enabled_stages_fits_only(
    face_recipe: str, store: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(_face_config(face_recipe, store, run), progress=lambda _: None)
    record = read_record(run)
    assert _stages(run) == ["fit"] and record["metrics"] == {"tiny": 1}
    assert record["stages"][0]["outputs"] == {"model": str(run / "model.onnx")}
    assert not any(run.glob("*int8*")) and not any(run.glob("calibration*"))
    assert not (run / "weights.json").exists()
    # its int8 twin cannot ship: refused before anything is written
    assets = tmp_path / "assets"
    assets.mkdir()
    asked = ["ship.name=x", "ship.file=x.onnx", "ship.int8_file=x_int8.onnx", f"ship.dest={assets}"]
    with pytest.raises(ConfigError, match="has no quantize stage: run fakescope train --stage"):
        ship(run, asked)
    assert not any(assets.iterdir()) and _stages(run) == ["fit"]


def test_face_run_fit_quantize_calibrate_ship(
    face_recipe: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakescope.cli import main
    from fakescope.models import WeightConfig, create_detector, sha256_file

    run = tmp_path / "run"
    config = _face_config(face_recipe, store, run)
    seen: list[str] = []
    overrides = ["quantize.enabled=true", "calibrate.enabled=true", "ship.name=tiny-face"]
    train(config, overrides, progress=seen.append)
    assert _stages(run) == ["fit", "quantize", "calibrate"]
    assert [line.split(":")[0] for line in seen[1:]] == ["quantize", "calibrate"]
    record = {e["stage"]: e for e in read_record(run)["stages"]}

    # quantize: an int8 network (Q/DQ nodes, same interface) with its weight config
    quant = record["quantize"]
    assert quant["outputs"] == {
        "model_int8": str(run / "model_int8.onnx"),
        "weights_int8": str(run / "weights_int8.json"),
    }
    counts = _qdq(run / "model_int8.onnx")
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > 0
    assert _qdq(run / "model.onnx") == {"QuantizeLinear": 0, "DequantizeLinear": 0}
    assert quant["metrics"]["sha256"] == sha256_file(run / "model_int8.onnx")
    assert quant["metrics"]["calibration_crops"] == 24
    val = quant["metrics"]["val"]["sets"]["all"]
    assert val["n"] > 0 and val["r_logit"] > 0.99
    assert val["auc_fp32"] == 1.0 and val["auc_int8"] == 1.0  # brightness separates them

    # calibrate: the crop level of both networks, in the run's weight configs, with fitted_on
    cal = record["calibrate"]
    assert set(cal["outputs"]) == {"weights", "calibration", "weights_int8", "calibration_int8"}
    splits = json.loads((run / "splits.json").read_text())["groups"]
    calib_groups = sorted(g for g, s in splits.items() if s == "calib")
    for suffix in ("", "_int8"):
        weights = WeightConfig.from_json(run / f"weights{suffix}.json")
        assert weights.calibration is not None and set(weights.calibration) == {"crop"}
        crop = weights.calibration["crop"]
        assert crop["kind"] == "logit" and crop["a"] > 0
        fitted_on = crop["fitted_on"]
        assert fitted_on["items"] == 2 * len(calib_groups)  # a real and a fake video each
        assert fitted_on["samples"] == 2 * len(calib_groups) * 4  # 4 frames a video
        assert fitted_on["command"] == f"fakescope train --stage calibrate {run}"
        assert "calib identity groups" in fitted_on["data"]
        report = json.loads((run / f"calibration{suffix}.json").read_text())
        assert report["calibration"]["crop"] == crop
        assert report["report"]["crop"]["cv_groups"] == len(calib_groups)
        assert "bootstrap" in report["report"]["crop"]
        name = "model_int8.onnx" if suffix else "model.onnx"
        assert cal["metrics"][name]["a"] == crop["a"]
        # the run's weight config is a detector whose crop probabilities are calibrated
        detector = create_detector(str(run / f"weights{suffix}.json"))
        assert weights.sha256 == sha256_file(run / name) and detector.info.name.startswith(
            "tiny-face"
        )
    assert WeightConfig.from_json(run / "weights_int8.json").name == "tiny-face-int8"

    # a video level added by fakescope calibrate --weights stays when the stage runs again
    int8_json = run / "weights_int8.json"
    data = json.loads(int8_json.read_text())
    data["calibration"]["video"] = {"kind": "logit", "a": 1.0, "b": 0.0}
    int8_json.write_text(json.dumps(data))
    again = run_stage(run, "calibrate", ["calibrate.kinds=[logit, identity]"], lambda _: None)
    assert set(json.loads(int8_json.read_text())["calibration"]) == {"crop", "video"}
    assert again.metrics["model_int8.onnx"]["kind"] in ("logit", "identity")
    assert read_record(run)["stages"][-1]["overrides"] == ["calibrate.kinds=[logit, identity]"]

    # ship: the float network and its int8 twin, each calibrated as the run's weight configs
    assets = tmp_path / "assets"
    assets.mkdir()
    code = main(
        ["train", "--stage", "ship", str(run), "--set", "ship.file=tiny.onnx",
         "ship.int8_file=tiny_int8.onnx", f"ship.dest={assets}"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and out.count("shipped ") == 2
    assert sorted(p.name for p in assets.iterdir()) == [
        "tiny.json", "tiny.onnx", "tiny_int8.json", "tiny_int8.onnx"
    ]  # fmt: skip
    for stem, local in (("tiny", "weights.json"), ("tiny_int8", "weights_int8.json")):
        shipped = WeightConfig.from_json(assets / f"{stem}.json")
        run_weights = WeightConfig.from_json(run / local)
        assert shipped.file == f"{stem}.onnx" and shipped.sha256 == run_weights.sha256
        assert shipped.calibration == run_weights.calibration
    assert _stages(run) == ["fit", "quantize", "calibrate", "ship"]
    assert read_record(run)["stages"][-1]["outputs"] == {
        "weights": str(assets / "tiny.json"),
        "weights_int8": str(assets / "tiny_int8.json"),
    }

    # quantizing again drops the stages after it (their outputs are stale)
    run_stage(run, "quantize", ["quantize.measure=false"], lambda _: None)
    assert _stages(run) == ["fit", "quantize"]
    assert WeightConfig.from_json(run / "weights_int8.json").calibration is None
    with pytest.raises(ConfigError, match="exclude each other"):
        ship(run, ["ship.beside=true", "ship.name=x", "ship.int8_file=y.onnx"])
    # beside: the run's two weight configs, uncalibrated now that calibrate is stale
    assert ship(run, ["ship.beside=true", "ship.name=again"]) == run / "weights.json"
    assert WeightConfig.from_json(run / "weights_int8.json").name == "again-int8"
    assert WeightConfig.from_json(run / "weights.json").calibration is None


def test_synthesis_run_fit_quantize_calibrate_ship(synth_recipe: str, tmp_path: Path) -> None:
    from fakescope.models import sha256_file
    from fakescope.synthesis import CnnSynthesisDetector, create_synthesis_detector

    root, diff = _noise_sets(tmp_path)
    run = tmp_path / "run"
    config = {
        "recipe": synth_recipe,
        "data": {"root": str(root), "diffusion": [str(diff)]},
        "model": {"size": 32},
        "run": {"out": str(run), "threads": 1},
        "quantize": {"enabled": True, "calib_count": 20},
        "calibrate": {"enabled": True},
    }
    train(config, progress=lambda _: None)
    assert _stages(run) == ["fit", "quantize", "calibrate"]
    record = {e["stage"]: e for e in read_record(run)["stages"]}
    counts = _qdq(run / "model_int8.onnx")
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > 0
    int8 = json.loads((run / "weights_int8.json").read_text())
    assert int8["file"] == "model_int8.onnx" and int8["sha256"] == sha256_file(
        run / "model_int8.onnx"
    )
    quant = record["quantize"]["metrics"]
    train_rows = [
        row for f in (run / "sets").glob("*/splits.tsv")
        for row in f.read_text().splitlines() if "\ttrain" in row
    ]  # fmt: skip
    assert quant["train_images"] == len(train_rows) and len(quant["calibration_patches"]) == 2
    assert quant["test"]["auc_fp32"] == 1.0 and quant["test"]["r_raw"] > 0.99

    # calibrate: the int8 network's Platt map, refitted on the calib split of both sets
    calibration = int8["calibration"]
    assert calibration["kind"] == "logit" and calibration["a"] > 0
    assert calibration["fitted_on"]["items"] == record["calibrate"]["metrics"]["calib_items"]
    assert calibration["fitted_on"]["command"] == f"fakescope train --stage calibrate {run}"
    calib_rows = (run / "calib.tsv").read_text().splitlines()[1:]
    assert record["calibrate"]["metrics"]["calib_items"] == len(calib_rows)
    assert json.loads((run / "weights.json").read_text())["calibration"] is None  # float: fit's
    detector = create_synthesis_detector(str(run / "weights_int8.json"))
    assert isinstance(detector, CnnSynthesisDetector) and detector.calibrated

    # ship: both networks into an assets folder
    assets = tmp_path / "assets"
    assets.mkdir()
    result = run_stage(
        run, "ship", ["ship.stem=tiny", "ship.int8_stem=tiny_int8", f"ship.dest={assets}"],
        lambda _: None,
    )  # fmt: skip
    assert result.outputs == {
        "weights": assets / "tiny.json",
        "weights_int8": assets / "tiny_int8.json",
    }
    shipped = json.loads((assets / "tiny_int8.json").read_text())
    assert shipped == {**int8, "file": "tiny_int8.onnx"}
    assert sha256_file(assets / "tiny_int8.onnx") == int8["sha256"]


def _noise_sets(tmp_path: Path) -> tuple[Path, Path]:
    """A generated-image set split by image (20 noise photos as reals, 20 blurred ones as
    generated) and a diffusion set of blurred images in 10 prompt groups."""
    import cv2

    rng = np.random.default_rng(0)

    def image(blur: bool) -> Any:
        img = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        return cv2.GaussianBlur(img, (0, 0), 2.0) if blur else img

    root, diff = tmp_path / "gen", tmp_path / "diff"
    rows = []
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
    for k in range(40):
        label = "fake" if k % 2 else "real"
        write_image(root / label / f"{k}.png", image(label == "fake"), ".png")
        rows.append(f"{label}/{k}.png\t{label}")
    (root / "MANIFEST.tsv").write_text("file\tlabel\n" + "\n".join(rows) + "\n")
    (diff / "fake").mkdir(parents=True)
    rows = []
    for g in range(10):
        name = f"fake/p{g},0.png"
        write_image(diff / name, image(True), ".png")
        rows.append(f"{name}\tfake")
    (diff / "MANIFEST.tsv").write_text("file\tlabel\n" + "\n".join(rows) + "\n")
    return root, diff


def test_a_stage_on_an_unfinished_run_or_a_recipe_without_it_is_a_clear_error(
    face_recipe: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakescope.cli import main

    run = tmp_path / "run"
    for stage in LATER_STAGES:
        with pytest.raises(ConfigError, match=r"no config\.yaml, not a run folder"):
            run_stage(run, stage)
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(_face_config(face_recipe, store, run)))
    # a run stopped before the end of fit has its config but no result.json
    with pytest.raises(ConfigError, match=r"has not finished \(no result\.json\): train first"):
        run_stage(run, "quantize")
    assert main(["train", "--stage", "calibrate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "has not finished" in err and f"fakescope train --stage calibrate {run}" in err
    assert main(["train", "--stage", "nope", str(run)]) == 2
    assert "--stage: choose among quantize, calibrate, ship" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown stage 'fit'"):
        run_stage(run, "fit")
    # a recipe without the stage
    vae = tmp_path / "vae"
    vae.mkdir()
    (vae / "config.yaml").write_text(yaml.safe_dump({"recipe": "vae"}))
    (vae / "result.json").write_text("{}")
    with pytest.raises(ConfigError, match="recipe 'vae' has no quantize stage"):
        run_stage(vae, "quantize")
    with pytest.raises(ConfigError, match=r"unknown config key 'calibrate\.enabled'"):
        train({"recipe": "vae", "run": {"out": str(tmp_path / "never")}}, ["calibrate.enabled=1"])
    assert not (tmp_path / "never").exists()

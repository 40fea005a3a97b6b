"""The ``fakescope`` command: JSON Lines schema, exit codes, one-line usage errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakescope.cli import main

STATUSES = {"ok", "no_face", "face_too_small", "undecodable", "unsupported", "too_large", "error"}


def _check_schema(obj: dict) -> None:  # type: ignore[type-arg]
    assert set(obj) >= {
        "path",
        "status",
        "reason",
        "fake_probability",
        "label",
        "faces",
        "model",
        "timings_ms",
    }
    assert obj["status"] in STATUSES
    assert isinstance(obj["reason"], str) and obj["reason"]
    assert obj["label"] in {"fake", "real", "uncertain"}
    if obj["status"] == "ok":
        assert 0.0 <= obj["fake_probability"] <= 1.0
        assert obj["faces"]
    else:
        assert obj["fake_probability"] is None and obj["label"] == "uncertain"
    for face in obj["faces"]:
        assert isinstance(face["track_id"], int)
        assert 0.0 <= face["fake_probability"] <= 1.0
        for frame in face["frames"]:
            assert isinstance(frame["index"], int) and frame["time_s"] >= 0
            assert len(frame["box"]) == 4 and 0.0 <= frame["fake_probability"] <= 1.0
    assert set(obj["model"]) >= {"name", "sha256"}
    assert {"decode", "detect", "landmarks", "align", "classify", "total"} <= set(obj["timings_ms"])


def test_scan_json_over_a_mixed_batch(
    hostile_dir: Path, face_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["scan", "--json", "--frames", "8", str(hostile_dir), str(face_clip)])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    objs = [json.loads(line) for line in out]
    assert len(objs) == 6  # five hostile files and the clip, none lost
    for obj in objs:
        _check_schema(obj)
    by_name = {Path(o["path"]).name: o["status"] for o in objs}
    assert by_name == {
        "empty.mp4": "undecodable",
        "huge.png": "too_large",
        "text.mp4": "unsupported",
        "truncated.mp4": "undecodable",
        "valid.jpg": "ok",
        "face.mp4": "ok",
    }


def test_scan_table(face_image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(face_image)]) == 0
    out = capsys.readouterr().out
    assert "face.jpg" in out and "ok" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["scan", "/no/such/file.mp4"],
        ["scan", "--frames", "0", "x"],
        ["scan", "--bogus", "x"],
        ["scan"],
        [],
        ["scan", "--detector", "nope", "x"],
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fakescope", *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fakescope: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_train_rejects_unknown_config_keys(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    config = Path(__file__).resolve().parents[1] / "configs" / "sbi_lite0.yaml"
    assert main(["train", str(config), "--set", "optim.nope=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "optim.nope" in err[0]


def test_train_without_a_config_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert main(["train"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "needs a CONFIG.yaml, --recipes or --ship" in err[0]
    assert captured.out == ""
    assert main(["train", "--recipes"]) == 0
    assert "synthesis-cnn" in capsys.readouterr().out


def test_calibrate_fits_each_level_on_its_own_aggregate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    from fakescope.calibration import calibrator_from_dict
    from fakescope.evaluation import MEDIA_LEVEL, ScoreRow, ScoreTable
    from fakescope.models import WeightConfig, asset_path

    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        label = i % 2
        # video aggregates: under-confident around 0.5; crops: over-spread around 0.3/0.7
        video = float(np.clip(rng.normal(0.45 + 0.1 * label, 0.05), 0, 1))
        rows.append(
            ScoreRow(
                f"m{i}", MEDIA_LEVEL, MEDIA_LEVEL, "d", 0.5, label, "x", "toy", raw_score=video
            )
        )
        for k in range(4):
            crop = float(np.clip(rng.normal(0.3 + 0.4 * label, 0.2), 0.001, 0.999))
            rows.append(ScoreRow(f"m{i}", 0, k, "d", 0.5, label, "x", "toy", raw_score=crop))
    scores = ScoreTable(rows).save(tmp_path / "scores.csv")
    out = tmp_path / "cal.json"
    weights = tmp_path / "w.json"
    weights.write_text(asset_path("effnet_lite0_sbi.json").read_text())
    code = main(["calibrate", str(scores), "--out", str(out), "--weights", str(weights)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["report"]["video"]["samples"] == 80
    assert report["report"]["crop"]["samples"] == 320
    assert report["report"]["crop"]["items"] == 80
    for level in ("video", "crop"):
        assert report["report"][level]["ece_5fold_cv"] < report["report"][level]["ece_raw"]
    video = calibrator_from_dict(report["calibration"]["video"])
    crop = calibrator_from_dict(report["calibration"]["crop"])
    assert video.predict_proba([0.6])[0, 1] > 0.8  # sharpened: fitted on the aggregates
    assert crop.predict_proba([0.6])[0, 1] < 0.8  # the crops are already spread out
    stored = WeightConfig.from_json(weights).calibration
    assert stored == report["calibration"]
    capsys.readouterr()
    # a table from before raw scores existed cannot be calibrated: a clear error
    old = ScoreTable([dataclasses.replace(r, raw_score=float("nan")) for r in rows])
    assert main(["calibrate", str(old.save(tmp_path / "old.csv"))]) == 2
    assert "raw score" in capsys.readouterr().err
    assert main(["calibrate", str(scores), "--detector", "nope"]) == 2


def test_face_search_interval_flag_reaches_the_scan_config() -> None:
    from fakescope.cli._main import build_parser, config_overrides

    args = build_parser().parse_args(["scan", "x.mp4", "--face-search-every", "16"])
    assert config_overrides(args)["full_scan_every"] == 16
    assert main(["scan", "x.mp4", "--face-search-every", "0"]) == 2


# -- start-up: what a photo scan loads (issue 30; scripts/bench_startup.py times it) ----------
NOT_FOR_A_PHOTO = (
    "av",  # PyAV: videos only
    "rich",  # only for a table or a progress bar on a terminal
    "numpy.ma",  # np.unique's first call imports it
    "importlib.metadata",  # fakescope.__version__ is read on first use
    "fakescope.training",
    "fakescope.cli._batch",
    "fakescope.cli._calibrate",
    "fakescope.cli._eval",
    "fakescope.cli._fuse",
    "fakescope.cli._models",
    "fakescope.cli._serve",
)


def test_a_json_photo_scan_loads_only_what_it_needs(face_image: Path) -> None:
    code = (
        "import json, sys\n"
        "from fakescope.cli import main\n"
        f"assert main(['scan', '--json', {str(face_image)!r}]) == 0\n"
        f"print(json.dumps(sorted(m for m in {NOT_FOR_A_PHOTO!r} if m in sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    lines = proc.stdout.strip().splitlines()
    assert json.loads(lines[0])["status"] == "ok"
    assert json.loads(lines[-1]) == []


def test_one_command_parser_parses_as_the_whole_parser() -> None:
    """``main`` builds only the parser of the command it runs: same namespace, same errors."""
    from fakescope.cli._common import UsageError
    from fakescope.cli._main import build_parser

    argv = ["scan", "x.jpg", "--json", "--frames", "8", "--no-synthesis", "--threshold", "0.4"]
    assert vars(build_parser("scan").parse_args(argv)) == vars(build_parser().parse_args(argv))
    for parser in (build_parser("scan"), build_parser()):
        with pytest.raises(UsageError, match="must be >= 1"):
            parser.parse_args(["scan", "x.jpg", "--frames", "0"])
    commands = build_parser()._subparsers._group_actions[0].choices
    assert list(commands) == [
        "scan",
        "bench",
        "train",
        "calibrate",
        "fuse",
        "finetune",
        "models",
        "people",
        "serve",
        "batch",
        "eval",
    ]


def test_no_command_module_imports_the_dispatcher() -> None:
    """Shared helpers live in cli/_common.py: no command imports cli/_main.py (no circle)."""
    import ast

    import fakescope.cli

    folder = Path(fakescope.cli.__file__).parent
    for path in sorted(folder.glob("_*.py")):
        if path.name in ("__init__.py", "_main.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "fakescope.cli._main", f"{path.name} imports cli._main"

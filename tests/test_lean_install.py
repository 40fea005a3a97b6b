"""The lean install: scanning needs only the core packages, and a command that needs an extra
says which one on one line (exit status 2), never with a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import write_image
from fakescope._extras import EXTRAS, MissingExtra, missing_module, require
from fakescope.io import load_example_face

# Top-level packages only the extras bring (and torch, the train extra's).
EXTRA_PACKAGES = sorted({m for mods in EXTRAS.values() for m in mods} | {"fastapi_offline"})


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    face = np.asarray(load_example_face())
    frame = np.zeros((720, 1280, 3), dtype=np.uint8)
    frame[200 : 200 + face.shape[0], 500 : 500 + face.shape[1]] = face
    return write_image(tmp_path_factory.mktemp("lean") / "photo.jpg", frame)


def _scan_in_subprocess(photo: Path, prelude: str) -> tuple[dict[str, object], list[str]]:
    code = (
        "import json, sys\n"
        f"{prelude}\n"
        "from fakescope.cli import main\n"
        f"code = main(['scan', '--json', {str(photo)!r}])\n"
        "loaded = sorted({k.split('.')[0] for k, v in sys.modules.items() if v is not None})\n"
        "print(json.dumps({'code': code, 'loaded': loaded}), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    verdict = json.loads(out.stdout.strip().splitlines()[-1])
    report = json.loads(out.stderr.strip().splitlines()[-1])
    assert report["code"] == 0
    return verdict, report["loaded"]


def test_scanning_a_photo_imports_no_extra(photo: Path) -> None:
    verdict, loaded = _scan_in_subprocess(photo, "")
    assert verdict["status"] == "ok"
    assert not set(loaded) & set(EXTRA_PACKAGES), set(loaded) & set(EXTRA_PACKAGES)


def test_scanning_works_without_the_extras(photo: Path) -> None:
    """Every extra's package made unimportable (``sys.modules[name] = None``): the scan still
    gives its face and synthesis verdicts."""
    block = f"for name in {EXTRA_PACKAGES!r}: sys.modules[name] = None"
    verdict, _ = _scan_in_subprocess(photo, block)
    assert verdict["status"] == "ok" and verdict["fake_probability"] is not None
    synthesis = verdict["synthesis"]
    assert isinstance(synthesis, dict) and synthesis["status"] == "ok"


@pytest.mark.parametrize(
    ("argv", "extra", "module"),
    [
        (["serve"], "server", "fastapi"),
        (["eval", "DATASET"], "eval", "sklearn"),
        (["eval", "DATASET"], "eval", "matplotlib"),
        (["calibrate", "scores.parquet"], "eval", "sklearn"),
        (["fuse", "s.csv", "--member", "effnet-lite0-sbi", "--name", "n", "--out", "o.json"],
         "eval", "sklearn"),
        (["finetune", "cnn-v3", "--fakes", "f", "--reals", "r", "--out", "w.json"],
         "train", "onnx"),
        (["train", "config.yaml"], "train", "torch"),
    ],
)  # fmt: skip
def test_a_missing_extra_is_named_on_one_line(
    argv: list[str], extra: str, module: str, tmp_path: Path
) -> None:
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # as if not installed\n"
        "from fakescope.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr == (
        f"fakescope: error: fakescope {argv[0]} needs the {extra} extra ({module} is not "
        f"installed): pip install 'fakescope[{extra}]'\n"
    )
    assert out.stdout == ""


def test_require(monkeypatch: pytest.MonkeyPatch) -> None:
    assert missing_module(["json", "numpy"]) is None
    monkeypatch.setitem(sys.modules, "numpy", None)
    assert missing_module(["json", "numpy"]) == "numpy"
    with pytest.raises(MissingExtra) as info:
        require("eval", "fakescope eval", ["numpy"])
    assert (info.value.extra, info.value.module) == ("eval", "numpy")
    assert "pip install 'fakescope[eval]'" in str(info.value)
    assert missing_module(["fakescope_no_such_module.sub"]) == "fakescope_no_such_module.sub"

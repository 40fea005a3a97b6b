"""Few-shot transfer of the CNN synthesis detector (`fakescope finetune`): the base head is
read exactly, the L2-SP head fit behaves as a regulariser should, and the command writes a
detector that loads and scores."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from conftest import write_image
from fakescope.cli import main
from fakescope.synthesis import CnnSynthesisDetector, create_synthesis_detector

pytest.importorskip("onnx")


def test_base_head_is_the_layer_behind_the_logit(example_face: npt.NDArray[np.uint8]) -> None:
    from fakescope.training.finetune import base_head, image_embeddings

    detector = create_synthesis_detector("cnn-v1")
    assert isinstance(detector, CnnSynthesisDetector) and detector.has_embedding
    w0, b0 = base_head(detector.network_path)
    img = cv2.copyMakeBorder(example_face, 0, 120, 0, 120, cv2.BORDER_REFLECT)
    emb = image_embeddings(detector, [img, img[::-1].copy()])
    assert emb.shape == (2, w0.size)
    assert emb @ w0 + b0 == pytest.approx(detector.score([img, img[::-1].copy()]), abs=1e-4)


def test_fit_head_learns_and_l2sp_holds_it_back() -> None:
    from fakescope.training.finetune import fit_head

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8))
    y = (x[:, 3] > 0).astype(np.int64)  # the new task depends on feature 3 only
    w0 = np.zeros(8)
    w0[0] = 1.0  # the base looked at feature 0
    free_w, _ = fit_head(x, y, w0, 0.0, l2sp=1e-3)
    held_w, held_b = fit_head(x, y, w0, 0.0, l2sp=1e4)
    assert abs(free_w[3]) > 5 * abs(free_w[0] - 1.0)  # learnt the new feature
    assert np.abs(held_w - w0).max() < 0.01  # a strong pull keeps the base head
    assert np.isfinite(held_b)


def _folders(tmp_path: Path, face: npt.NDArray[np.uint8]) -> tuple[Path, Path]:
    big = cv2.copyMakeBorder(face, 0, 300, 0, 300, cv2.BORDER_REFLECT)
    rng = np.random.default_rng(1)
    fakes, reals = tmp_path / "new_gen", tmp_path / "reals"
    (fakes / "sub").mkdir(parents=True)
    reals.mkdir()
    for k in range(6):
        y, x = rng.integers(0, big.shape[0] - 200), rng.integers(0, big.shape[1] - 200)
        crop = np.ascontiguousarray(big[y : y + 200, x : x + 200])
        write_image(reals / f"{k}.png", crop, ".png")
        # the "new generator": nearest-neighbour up-sampling of a half-size image
        up = np.repeat(np.repeat(crop[::2, ::2], 2, axis=0), 2, axis=1)
        write_image(fakes / "sub" / f"{k}.png", np.ascontiguousarray(up), ".png")
    return fakes, reals


def test_finetune_command_writes_a_working_detector(
    tmp_path: Path, example_face: npt.NDArray[np.uint8], capsys: pytest.CaptureFixture[str]
) -> None:
    fakes, reals = _folders(tmp_path, example_face)
    out = tmp_path / "ft" / "cnn-new.json"
    argv = ["finetune", "cnn-v1", "--fakes", str(fakes), "--reals", str(reals)]
    assert main([*argv, "--shots", "4", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shots"] == 4 and summary["base"] == "cnn-v1"
    assert len(summary["fakes"]) == len(set(summary["fakes"])) == 4
    assert (out.parent / "cnn-new.onnx").is_file()
    weights = json.loads(out.read_text())
    assert weights["name"] == "cnn-v1-ft4" and weights["head"]["base"] == "cnn-v1"
    detector = create_synthesis_detector(str(out))
    assert isinstance(detector, CnnSynthesisDetector)
    img = np.ascontiguousarray(cv2.imread(str(fakes / "sub" / "0.png"))[:, :, ::-1])
    raw = detector.score([img])
    assert raw.shape == (1,) and np.isfinite(raw).all()
    # the head is what scores: a different head gives a different score
    base = create_synthesis_detector("cnn-v1")
    assert raw[0] != pytest.approx(base.score([img])[0])

    # bad requests are usage errors, not tracebacks
    assert main([*argv, "--shots", "50", "--out", str(out)]) == 2
    assert "found 6 generated" in capsys.readouterr().err
    assert main(["finetune", "freq-v1", *argv[2:], "--shots", "4", "--out", str(out)]) == 2
    assert "not a CNN synthesis detector" in capsys.readouterr().err

"""Few-shot transfer of the CNN synthesis detector (`fakescope finetune`): the base head is
read exactly, the L2-SP head fit behaves as a regulariser should, and the command writes a
detector that loads and scores."""

from __future__ import annotations

import json
from collections.abc import Callable
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

    detector = create_synthesis_detector("cnn-v3")  # the Gemm's logit row (the other: family)
    assert isinstance(detector, CnnSynthesisDetector) and detector.has_embedding
    w0, b0 = base_head(detector.network_path)
    img = cv2.copyMakeBorder(example_face, 0, 120, 0, 120, cv2.BORDER_REFLECT)
    emb = image_embeddings(detector, [img, img[::-1].copy()])
    assert emb.shape == (2, w0.size)
    assert emb @ w0 + b0 == pytest.approx(detector.score([img, img[::-1].copy()]), abs=1e-4)


@pytest.mark.parametrize("rows", [1, 2])
def test_base_head_follows_the_gather_that_outputs_the_logit(tmp_path: Path, rows: int) -> None:
    """A one-row head (cnn-v1's layout) is the logit; of a two-row head, the row a Gather
    (axis 1) outputs as ``logit`` is, whichever index it is."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from fakescope.errors import ModelError
    from fakescope.training.finetune import base_head

    w = np.arange(rows * 4, dtype=np.float32).reshape(rows, 4) - 3.0
    b = np.arange(rows, dtype=np.float32) + 0.5
    nodes = [helper.make_node("Gemm", ["embedding", "w", "b"], ["fc"], transB=1)]
    if rows == 1:
        nodes.append(helper.make_node("Flatten", ["fc"], ["logit"], axis=0))
    else:  # the logit is row 1 here, the family row 0
        index = helper.make_tensor("i", TensorProto.INT64, [], [1])
        nodes.append(helper.make_node("Constant", [], ["idx"], value=index))
        nodes.append(helper.make_node("Gather", ["fc", "idx"], ["logit"], axis=1))
    graph = helper.make_graph(
        nodes,
        "head",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    path = tmp_path / "head.onnx"
    onnx.save(helper.make_model(graph), str(path))
    w0, b0 = base_head(path)
    row = rows - 1
    assert w0.tolist() == w[row].tolist() and b0 == pytest.approx(float(b[row]))
    if rows == 2:  # a Gather whose output is not the logit: no head to read
        graph.node[-1].output[0] = "other"
        onnx.save(helper.make_model(graph), str(path))
        with pytest.raises(ModelError, match="no linear layer"):
            base_head(path)


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
    argv = ["finetune", "cnn-v3", "--fakes", str(fakes), "--reals", str(reals)]
    assert main([*argv, "--shots", "4", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shots"] == 4 and summary["base"] == "cnn-v3"
    assert len(summary["fakes"]) == len(set(summary["fakes"])) == 4
    assert (out.parent / "cnn-new.onnx").is_file()
    weights = json.loads(out.read_text())
    assert weights["name"] == "cnn-v3-ft4" and weights["head"]["base"] == "cnn-v3"
    detector = create_synthesis_detector(str(out))
    assert isinstance(detector, CnnSynthesisDetector)
    img = np.ascontiguousarray(cv2.imread(str(fakes / "sub" / "0.png"))[:, :, ::-1])
    raw = detector.score([img])
    assert raw.shape == (1,) and np.isfinite(raw).all()
    # the head is what scores: a different head gives a different score
    base = create_synthesis_detector("cnn-v3")
    assert raw[0] != pytest.approx(base.score([img])[0])

    # the default pull is the strongest of the grid (forgets least); auto chooses on the shots
    assert summary["l2sp"] == 1.0 == weights["head"]["l2sp"] and summary["l2sp_oof_auc"] == {}
    auto = tmp_path / "auto" / "w.json"
    assert main([*argv, "--shots", "4", "--l2sp", "auto", "--out", str(auto)]) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert sorted(chosen["l2sp_oof_auc"], key=float) == ["0.001", "0.01", "0.1", "1.0"]
    assert chosen["l2sp"] in (1.0, 0.1, 0.01, 0.001)
    for bad in ("-1", "strong"):
        assert main([*argv, "--l2sp", bad, "--out", str(out)]) == 2
        assert "argument --l2sp" in capsys.readouterr().err

    # bad requests are usage errors, not tracebacks
    assert main([*argv, "--shots", "50", "--out", str(out)]) == 2
    assert "found 6 generated" in capsys.readouterr().err
    assert main(["finetune", "freq-v1", *argv[2:], "--shots", "4", "--out", str(out)]) == 2
    assert "unknown synthesis detector 'freq-v1'" in capsys.readouterr().err  # not shipped


def _write_set(
    root: Path,
    rows: list[tuple[str, str]],
    image: Callable[[int, str], npt.NDArray[np.uint8]],
) -> None:
    """A set folder with MANIFEST.tsv: each (file, label) row written as ``image(k, label)``."""
    lines = ["file\tlabel"]
    for k, (name, label) in enumerate(rows):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(root / name, image(k, label), ".png")
        lines.append(f"{name}\t{label}")
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")


def test_transfer_report_pairs_a_fakes_only_set_with_reals_outside_the_old_test_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A diffusion set of portraits only (``--new-reals``): its evaluation reals come from the
    other set, never from the old set's test split (those measure the old generator), and
    its fakes are split by prompt group, so no prompt gives both a shot and an eval image."""
    from fakescope.training import finetune as ft
    from fakescope.training.synthesis_cnn_data import load_manifest, split_by_image

    def make(root: Path, rows: list[tuple[str, str]]) -> None:
        _write_set(root, rows, lambda k, _: np.full((8, 8, 3), k % 250, np.uint8))

    old, new = tmp_path / "old", tmp_path / "new"
    make(
        old,
        [(f"real/r{k}.png", "real") for k in range(20)]
        + [(f"fake/g{k}.png", "fake") for k in range(10)],
    )
    make(new, [(f"fake/p{k // 3},{k}.png", "fake") for k in range(24)])
    seen: list[str] = []
    real_read = ft.read_rgb

    def read(path: Path) -> npt.NDArray[np.uint8]:
        seen.append(str(Path(path).resolve()))
        return real_read(path)

    class Flat:
        def score(self, images: list[npt.NDArray[np.uint8]]) -> np.ndarray:
            return np.asarray([float(i.mean()) for i in images])

    monkeypatch.setattr(ft, "read_rgb", read)
    monkeypatch.setattr(ft, "create_synthesis_detector", lambda name: Flat())
    shot_sets: list[tuple[list[Path], list[Path]]] = []

    def fake_finetune(base, fakes, reals, out, **kw):  # type: ignore[no-untyped-def]
        shot_sets.append((list(fakes), list(reals)))
        return out, {"l2sp": 1.0, "l2sp_oof_auc": {}}

    monkeypatch.setattr(ft, "finetune", fake_finetune)
    report = ft.transfer_report(
        "cnn-v3", new, old, [2], tmp_path / "r.json", new_reals=old, eval_per_class=100
    )
    items = load_manifest(old, "gen")
    split = split_by_image([i.path for i in items], [i.label for i in items], seed=0)
    old_test_reals = {
        str(Path(i.path).resolve())
        for i, s in zip(items, split, strict=True)
        if s == "test" and i.label == 0
    }
    assert len(old_test_reals) == 4
    ev = report["new_eval"]
    assert ev["real"] > 0 and ev["generated"] > 0
    fakes, reals = shot_sets[0]
    assert not {str(p.resolve()) for p in reals} & old_test_reals
    # the new set's evaluation reads: its eval fakes and reals, read before the old test split
    new_reads = seen[: ev["generated"] + ev["real"]]
    assert not set(new_reads) & old_test_reals
    shot_groups = {p.name.split(",")[0] for p in fakes}
    eval_groups = {Path(p).name.split(",")[0] for p in new_reads if "/new/" in p}
    assert shot_groups and eval_groups and not shot_groups & eval_groups


def test_the_fewshot_recipe_runs_through_the_engine_and_ships_a_head_on_request(
    tmp_path: Path,
) -> None:
    """`fakescope train` with `recipe: fewshot`: a real (tiny) transfer run on cnn-v3 writes
    the report and one fine-tuned detector per shot count, recorded in result.json; ship
    copies the asked head with its network into a folder of the user's, and ships nothing
    without `ship.shots`."""
    from fakescope.errors import ConfigError
    from fakescope.training.engine import ship, train

    rng = np.random.default_rng(0)

    def image(_: int, label: str) -> npt.NDArray[np.uint8]:
        img = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
        if label == "fake":  # smoother images: something a head can learn
            img = np.asarray(cv2.GaussianBlur(img, (9, 9), 3), np.uint8)
        return img

    def make(root: Path, rows: list[tuple[str, str]]) -> None:
        _write_set(root, rows, image)

    old, new = tmp_path / "old", tmp_path / "new"
    make(
        old,
        [(f"real/r{k}.png", "real") for k in range(10)]
        + [(f"fake/g{k}.png", "fake") for k in range(5)],
    )
    make(
        new,
        [(f"real/n{k}.png", "real") for k in range(16)]
        + [(f"fake/f{k}.png", "fake") for k in range(16)],
    )
    run = tmp_path / "run"
    config = {
        "recipe": "fewshot",
        "data": {"new": str(new), "old": str(old)},
        "fewshot": {"base": "cnn-v3", "shots": [3], "l2sp": 1.0, "eval_per_class": 4},
        "run": {"out": str(run), "threads": 1},
    }
    result = train(config, progress=lambda _: None)
    report = json.loads((run / "report.json").read_text())
    ev = report["new_eval"]  # half the source groups give shots, the other half is evaluated
    assert (ev["generated"], ev["real"]) == (4, 4) and 3 <= ev["pool_generated"] <= 12
    assert set(report["after"]) == {"3"} and 0.0 <= report["after"]["3"]["new"] <= 1.0
    assert result.outputs["ft3"] == run / "ft3.json"
    assert json.loads((run / "result.json").read_text())["stages"][0]["stage"] == "fit"
    with pytest.raises(ConfigError, match="nothing to ship"):
        ship(run)
    with pytest.raises(ConfigError, match=r"no ft5\.json"):
        ship(run, ["ship.shots=5", f"ship.dest={tmp_path / 'mine'}"])
    shipped = ship(run, ["ship.shots=3", f"ship.dest={tmp_path / 'mine'}"])
    assert shipped == tmp_path / "mine" / "ft3.json" and (tmp_path / "mine" / "ft3.onnx").is_file()
    detector = create_synthesis_detector(str(shipped))
    assert isinstance(detector, CnnSynthesisDetector) and detector.weights.name == "cnn-v3-ft3"
    assert np.isfinite(detector.score([rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)])).all()

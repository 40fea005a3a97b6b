"""tools/make_oneshot_val.py: the inswapper-like development set (issue 29 item 2)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from conftest import load_tool
from fakescope.data import load_dataset
from fakescope.faces import FACE_DETECTORS
from fakescope.io import load_example_face

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_tool("make_oneshot_val")


def _lab(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    return np.asarray(cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2LAB), np.float32)


def test_reinhard_gives_the_source_the_target_lab_statistics(tool: ModuleType) -> None:
    gen = np.random.default_rng(0)
    source = np.clip(gen.normal(90, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
    target = np.clip(gen.normal((170, 120, 100), 30, (64, 64, 3)), 0, 255).astype(np.uint8)
    where = np.zeros((64, 64), bool)
    where[8:56, 8:56] = True
    out = tool.reinhard(source, target, where)
    got, want, before = _lab(out)[where], _lab(target)[where], _lab(source)[where]
    assert np.abs(got.mean(0) - want.mean(0)).max() < 1.0
    assert np.abs(got.std(0) - want.std(0)).max() < 1.5
    assert np.abs(before.mean(0) - want.mean(0)).max() > 10  # there was a gap to close


def test_swap_pastes_the_source_face_inside_the_target_face_only(
    tool: ModuleType, tmp_path: Path
) -> None:
    detector = FACE_DETECTORS.create("hybrid")
    image = load_example_face()
    # another "identity": the face mirrored, tinted and enlarged (so it is down-sampled)
    other = np.ascontiguousarray(image[:, ::-1])
    other = np.clip(other.astype(np.int16) + np.array([40, -10, -30]), 0, 255).astype(np.uint8)
    other = np.asarray(cv2.resize(other, None, fx=1.6, fy=1.6), np.uint8)
    for name, picture in (("target.png", image), ("source.png", other)):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    target = tool.find_face(detector, tmp_path / "target.png", "t", "t:0")
    source = tool.find_face(detector, tmp_path / "source.png", "s", "s:0")
    assert target is not None and source is not None
    fake, info = tool.swap(target, source, np.random.default_rng(0))
    assert fake.shape == image.shape and fake.dtype == np.uint8
    assert info["down_scale"] < 1.0 < info["up_scale"]
    changed = np.any(fake != target.image, axis=2)
    hull = cv2.convexHull(np.round(target.mesh).astype(np.int32))
    face = np.zeros(changed.shape, np.uint8)
    cv2.fillConvexPoly(face, hull, 1)
    assert changed[face == 1].mean() > 0.5
    # nothing beyond the reach of the feathering (3 sigma, sigma <= 5 % of the face)
    reach = cv2.distanceTransform(1 - face, cv2.DIST_L2, 5) > 0.15 * target.size + 2
    assert reach.sum() > 0.3 * reach.size and not changed[reach].any()
    # the tint of the source was matched to the target's colours
    core = cv2.erode(face, np.ones((15, 15), np.uint8)) == 1
    gap = np.abs(_lab(fake)[core].mean(0) - _lab(target.image)[core].mean(0))
    tint = np.abs(_lab(other).mean((0, 1)) - _lab(image).mean((0, 1)))
    assert gap[1:].max() < 0.5 * tint[1:].max()


def test_train_recipe_varies_the_swap_and_dev_recipe_draws_as_before(
    tool: ModuleType, tmp_path: Path
) -> None:
    detector = FACE_DETECTORS.create("hybrid")
    image = load_example_face()
    other = np.clip(image[:, ::-1].astype(np.int16) + np.array([40, -10, -30]), 0, 255)
    for name, picture in (("target.png", image), ("source.png", other.astype(np.uint8))):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    target = tool.find_face(detector, tmp_path / "target.png", "t", "t:0")
    source = tool.find_face(detector, tmp_path / "source.png", "s", "s:0")
    assert target is not None and source is not None
    # the dev recipe draws erosion and blur only, so the dev sets are the ones built before
    rng, twin = np.random.default_rng(3), np.random.default_rng(3)
    _, info = tool.swap(target, source, rng, tool.DEV)
    assert info["crop"] == 128 and info["color_transfer"] and info["above_eyes"] == 0.45
    assert info["erode_face"] == round(float(twin.uniform(0.02, 0.06)), 4)
    assert info["sigma_face"] == round(float(twin.uniform(0.02, 0.05)), 4)
    assert rng.random() == twin.random()
    rng = np.random.default_rng(0)
    infos = [tool.swap(target, source, rng, tool.TRAIN)[1] for _ in range(12)]
    assert {i["crop"] for i in infos} <= set(tool.TRAIN.crops)
    assert len({i["crop"] for i in infos}) > 1
    assert {i["color_transfer"] for i in infos} == {True, False}
    assert all(0.25 <= i["above_eyes"] <= 0.6 and i["erode_face"] <= 0.08 for i in infos)


@pytest.mark.data
def test_built_set_is_read_by_the_loader(
    tool: ModuleType, shared_data: Path, tmp_path: Path
) -> None:
    roots = [shared_data / "dfdc_faces", shared_data / "utkface_real"]
    split_file = REPO / "configs" / "splits" / "faces_v2.json"
    with pytest.raises(SystemExit, match="inside the repository"):
        tool.build(roots, REPO / "oneshot_tmp", split_file, "val", 2, 1)
    out = tmp_path / "oneshot"
    report = tool.build(roots, out, split_file, "val", 3, 1)
    items = load_dataset("auto", out)
    assert sorted(i.label for i in items) == ["fake"] * 3 + ["real"] * 3
    assert all(i.kind == "image" and i.dataset == "oneshot" for i in items)
    for item in items:
        picture = cv2.imread(str(item.path))
        assert picture is not None and picture.shape == (224, 224, 3)
    groups = json.loads(split_file.read_text())["groups"]
    used = [Path(p[k]) for p in report["pairs"] for k in ("target", "source")]
    assert len(used) == 6 and len(set(used)) == 6
    for path in used:  # every picture comes from the val split
        key = f"{path.parent.parent.name}:{path.with_suffix('').name}"
        assert groups.get(key) == "val", key
    assert json.loads((out / "BUILD.json").read_text())["counts"] == {"real": 3, "fake": 3}
    # the dev recipe builds the set it always built (pairs and draws of the tool before
    # --recipe train existed, commit fa5d4d7): the dev sets' figures stay comparable
    built = [(p["file"], p["erode_face"], p["sigma_face"]) for p in report["pairs"]]
    assert built == [
        (
            "fake/utkface_real_20_0_4_20170105161709125_jpg_chip__"
            "utkface_real_39_1_0_20170111182452865_jpg_chip.jpg",
            0.054,
            0.0414,
        ),
        ("fake/dfdc_faces_rrdiwonvyq__dfdc_faces_urxdctqpqx.jpg", 0.0378, 0.0419),
        ("fake/dfdc_faces_nenxtujdkb__dfdc_faces_xikmpejguq.jpg", 0.0333, 0.0296),
    ]


@pytest.mark.data
def test_a_set_of_several_splits_keeps_each_picture_size(
    tool: ModuleType, shared_data: Path, tmp_path: Path
) -> None:
    """``--split calib,test --side 0`` (the swaps on held-out FFHQ portraits): the reals come
    from either split, and every picture keeps its 512 px."""
    split_file = REPO / "configs" / "splits" / "faces_v5.json"
    out = tmp_path / "ffhq"
    report = tool.build([shared_data / "stylegan2_ffhq"], out, split_file, "calib,test", 2, 1, 0)
    assert report["side"] == 0 and report["counts"] == {"real": 2, "fake": 2}
    for item in load_dataset("auto", out):
        picture = cv2.imread(str(item.path))
        assert picture is not None and picture.shape == (512, 512, 3)
    groups = json.loads(split_file.read_text())["groups"]
    used = [Path(p[k]) for p in report["pairs"] for k in ("target", "source")]
    splits = {groups[f"stylegan2_ffhq:{path.stem}"] for path in used}
    assert splits <= {"calib", "test"} and used

"""Face store (sharded, resumable, identity groups), identity splits, balanced sampling and a
store-driven training smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakescope.errors import ConfigError
from fakescope.io import load_example_face, make_clip
from fakescope.training.store import FaceStore, StoreParams, build_store, split_groups

REPO = Path(__file__).resolve().parents[1]


def _write_set(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A MANIFEST.tsv data set (the manifest adapter names it after its folder)."""
    face = load_example_face()
    lines = ["file\tlabel\tgenerator_method"]
    for k, (name, label, generator) in enumerate(rows):
        path = root / label / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".mp4"):
            make_clip(path, width=640, height=480, seconds=1.0, fps=10, face=face)
        else:
            img = np.roll(face, 3 * k, axis=1)  # distinct files, still one clear face
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        lines.append(f"{label}/{name}\t{label}\t{generator}")
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def two_sets(tmp_path: Path) -> list[Path]:
    dfdc = _write_set(
        tmp_path / "setdfdc",
        [
            ("aaa.jpg", "real", "none"),
            ("bbb.jpg", "real", "none"),
            ("xxx.jpg", "fake", "swap (original=aaa.mp4)"),
            ("yyy.jpg", "fake", "swap (original=bbb.mp4)"),
        ],
    )
    ffpp = _write_set(
        tmp_path / "setffpp",
        [
            ("youtube_001.mp4", "real", "FF++ original"),
            ("Deepfakes_001_002.mp4", "fake", "FF++ Deepfakes, c23"),
            ("youtube_003.jpg", "real", "FF++ original"),
        ],
    )
    return [dfdc, ffpp]


def test_store_builds_groups_resumes_and_rebuilds_only_what_changed(
    two_sets: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "store"
    params = StoreParams(size=96, frames_per_video=3, shard_items=2)
    store = build_store(two_sets, out, params)
    rows = store.rows
    assert store.images.shape[1:] == (96, 96, 3) and store.landmarks.shape[1:] == (468, 2)
    assert len(rows) == len(store.images) == len(store.landmarks)
    by_media: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        by_media.setdefault(str(r["media_id"]), []).append(r)
    # a video gives several frames, an image one; every item found its face
    assert len(by_media["setffpp/real/youtube_001"]) == 3
    assert len(by_media["setdfdc/real/aaa"]) == 1 and store.missed == 0
    # identity groups: a DFDC fake joins its source video, an FF++ swap joins both ids
    group = {m: r[0]["group"] for m, r in by_media.items()}
    assert group["setdfdc/fake/xxx"] == group["setdfdc/real/aaa"]
    assert group["setdfdc/fake/yyy"] == group["setdfdc/real/bbb"] != group["setdfdc/real/aaa"]
    assert group["setffpp/fake/Deepfakes_001_002"] == group["setffpp/real/youtube_001"]
    assert group["setffpp/real/youtube_003"] != group["setffpp/real/youtube_001"]
    # the crop is the face (the same pixels the shard holds, memory-mapped)
    assert store.images[0].std() > 20 and store.images.take([0, 1]).shape == (2, 96, 96, 3)
    assert "4 shards (4 built, 0 up to date)" in capsys.readouterr().err

    shards = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    build_store(two_sets, out, params)  # up to date: nothing rebuilt
    assert "(0 built, 4 up to date)" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()} == shards

    # a changed input file rebuilds its shard only
    changed = two_sets[0] / "real" / "bbb.jpg"
    cv2.imwrite(str(changed), cv2.cvtColor(np.roll(load_example_face(), 9, 0), cv2.COLOR_RGB2BGR))
    again = build_store(two_sets, out, params)
    assert "(1 built, 3 up to date)" in capsys.readouterr().err
    assert len(again) == len(store)
    assert FaceStore.open(out).rows == again.rows


def test_store_refuses_the_dev_set(tmp_path: Path) -> None:
    dev = _write_set(tmp_path / "ffpp_c40_videos", [("youtube_001.jpg", "real", "none")])
    with pytest.raises(ConfigError, match="never trained on"):
        build_store([dev], tmp_path / "store")


def test_pinned_manifests_split_every_item_by_its_identity_group(
    two_sets: list[Path], tmp_path: Path
) -> None:
    from fakescope.data import load_dataset
    from fakescope.training.balanced import main, write_pinned_manifests

    pin = tmp_path / "pinned.json"
    groups = {"setffpp:001": "calib", "setffpp:003": "train", "setdfdc:aaa": "val"}
    pin.write_text(json.dumps({"groups": groups}))
    written = write_pinned_manifests(pin, two_sets, tmp_path / "m")
    got = {
        s: sorted(i.media_id.split("/")[-1] for i in load_dataset("auto", p))
        for s, p in written.items()
    }
    # a fake links its two ids (001 and 002 are one group); groups the file does not name
    # (setdfdc:bbb) are in no manifest
    assert got == {
        "calib": ["Deepfakes_001_002", "youtube_001"],
        "train": ["youtube_003"],
        "val": ["aaa", "xxx"],
    }
    main([str(tmp_path / "cli"), *map(str, two_sets), "--split-file", str(pin)])
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == [
        "calib.tsv",
        "train.tsv",
        "val.tsv",
    ]
    dev = _write_set(tmp_path / "ffpp_c40_videos", [("youtube_001.jpg", "real", "none")])
    with pytest.raises(ConfigError, match="development set"):
        write_pinned_manifests(pin, [dev], tmp_path / "dev")


@pytest.mark.data
def test_the_video_calibration_clips_are_the_val_and_calib_groups_of_faces_v2(
    shared_data: Path, tmp_path: Path
) -> None:
    """The clips the video-level calibrators are fitted on (MODEL_CARD.md, "Calibration
    levels"): the ffpp_c23_videos of faces_v2's val and calib identity groups, 24 clips."""
    from fakescope.data import load_dataset
    from fakescope.training.balanced import write_pinned_manifests

    written = write_pinned_manifests(
        REPO / "configs" / "splits" / "faces_v2.json",
        [shared_data / "ffpp_c23_videos"],
        tmp_path,
    )
    items = {s: load_dataset("auto", p) for s, p in written.items()}
    counts = {
        s: (sum(i.label == "real" for i in its), sum(i.label == "fake" for i in its))
        for s, its in items.items()
    }
    assert counts == {"train": (21, 37), "val": (4, 10), "calib": (3, 7)}


def test_split_groups_keeps_groups_whole_and_every_set_in_every_split() -> None:
    rows = []
    for dataset, n_groups in (("a", 60), ("b", 20)):
        for g in range(n_groups):
            for _frame in range(1 + g % 3):
                rows.append({"dataset": dataset, "group": f"{dataset}:{g}", "split": ""})
    rows.append({"dataset": "c", "group": "c:held", "split": "test"})
    assignment = split_groups(rows, (0.7, 0.15, 0.15), seed=3)
    assert assignment["c:held"] == "test"
    for dataset in ("a", "b"):
        crops = [r for r in rows if r["dataset"] == dataset]
        share = {
            s: sum(assignment[r["group"]] == s for r in crops) / len(crops)
            for s in ("train", "val", "calib")
        }
        assert 0.6 < share["train"] < 0.8 and share["val"] > 0.08 and share["calib"] > 0.08
    assert split_groups(rows, (0.7, 0.15, 0.15), seed=3) == assignment  # reproducible
    assert split_groups(rows, (0.7, 0.15, 0.15), seed=4) != assignment
    with pytest.raises(ConfigError):
        split_groups(rows, (1.0, -1.0, 0.5))


def _store_data(labels: list[int], datasets: list[str], splits: list[str]):  # type: ignore[no-untyped-def]
    from fakescope.training.balanced import StoreData

    n = len(labels)
    return StoreData(
        store=None,  # type: ignore[arg-type]  # the sampler reads only the columns
        labels=np.array(labels, np.int64),
        methods=np.array(["x"] * n),
        datasets=np.array(datasets),
        media_ids=np.array([f"m{i}" for i in range(n)]),
        splits=np.array(splits),
    )


def test_balanced_sampler_balances_class_and_set() -> None:
    from fakescope.training.balanced import BalancedSampler, parse_set_weights

    # set "big": 90 reals, 10 fakes; set "reals": 10 reals only; one val item never drawn
    labels = [0] * 90 + [1] * 10 + [0] * 10 + [1]
    datasets = ["big"] * 100 + ["reals"] * 10 + ["big"]
    splits = ["train"] * 110 + ["val"]
    data = _store_data(labels, datasets, splits)
    weights = parse_set_weights(("big=3",), {"big", "reals"})
    assert weights == {"big": 3.0, "reals": 1.0}
    sampler = BalancedSampler(data, weights, pseudo_fraction=0.5)
    draws = sampler.draw(np.random.default_rng(0), 8000)
    idx = np.array([i for i, _ in draws])
    pseudo = np.array([ff for _, ff in draws]) == 1.0
    fake = pseudo | (data.labels[idx] == 1)
    assert 110 not in set(idx.tolist())  # the validation item
    assert abs(fake.mean() - 0.5) < 0.03  # class balance whatever the set's own ratio
    from_big = data.datasets[idx] == "big"
    assert abs(from_big.mean() - 0.75) < 0.03  # set weights
    # in "big" half the fakes are its supervised fakes, half pseudo-fakes of its reals;
    # "reals" has no fakes, so all its fakes are pseudo-fakes
    big_fakes = fake & from_big
    assert abs((data.labels[idx][big_fakes] == 1).mean() - 0.5) < 0.05
    assert (pseudo[fake & ~from_big]).all()
    for bad in (("nope=1",), ("big=x",), ("big=-1",), ("big=0", "reals=0")):
        with pytest.raises(ConfigError):
            parse_set_weights(bad, {"big", "reals"})


def test_balanced_sampler_reals_only_set_gives_reals_and_keeps_the_balance() -> None:
    from fakescope.training.balanced import BalancedSampler

    # "big" has reals and fakes; "studio" (a reals-only set) must never seed a fake
    labels = [0] * 90 + [1] * 10 + [0] * 20
    datasets = ["big"] * 100 + ["studio"] * 20
    data = _store_data(labels, datasets, ["train"] * 120)
    weights = {"big": 0.8, "studio": 0.2}
    plain = BalancedSampler(data, weights, pseudo_fraction=0.5)
    sampler = BalancedSampler(data, weights, pseudo_fraction=0.5, reals_only=["studio"])
    draws = sampler.draw(np.random.default_rng(0), 10000)
    idx = np.array([i for i, _ in draws])
    pseudo = np.array([ff for _, ff in draws]) == 1.0
    fake = pseudo | (data.labels[idx] == 1)
    studio = data.datasets[idx] == "studio"
    assert not fake[studio].any()  # neither pseudo-fakes of its faces nor fakes
    assert abs(studio.mean() - 0.2) < 0.02  # its share of the draws is kept
    assert abs(fake.mean() - 0.5) < 0.02  # the other set makes up the fakes
    assert abs(fake[~studio].mean() - 0.625) < 0.03
    # without the knob the draws are those of the rule before it, bit for bit
    rng, old = np.random.default_rng(1), []
    for _ in range(500):
        name = plain.sets[int(rng.choice(len(plain.sets), p=plain.probs))]
        reals, fakes = plain.reals[name], plain.fakes[name]
        if rng.random() >= 0.5:
            old.append((int(rng.choice(reals)), 0.0))
        elif len(fakes) == 0 or rng.random() < 0.5:
            old.append((int(rng.choice(reals)), 1.0))
        else:
            old.append((int(rng.choice(fakes)), 0.0))
    assert plain.draw(np.random.default_rng(1), 500) == old
    with pytest.raises(ConfigError, match="reals_only"):
        BalancedSampler(data, weights, 0.5, reals_only=["nope"])
    with pytest.raises(ConfigError, match="half"):
        BalancedSampler(data, {"big": 0.4, "studio": 0.6}, 0.5, reals_only=["studio"])


def test_balanced_sampler_supervised_only_set_never_self_blends_its_reals() -> None:
    from fakescope.training.balanced import BalancedSampler

    # "swaps" has reals and supervised fakes; its fakes must be those, never pseudo-fakes
    labels = [0] * 90 + [1] * 10 + [0] * 20 + [1] * 20
    datasets = ["big"] * 100 + ["swaps"] * 40
    data = _store_data(labels, datasets, ["train"] * 140)
    weights = {"big": 0.7, "swaps": 0.3}
    sampler = BalancedSampler(data, weights, pseudo_fraction=0.5, supervised_only=["swaps"])
    draws = sampler.draw(np.random.default_rng(0), 10000)
    idx = np.array([i for i, _ in draws])
    pseudo = np.array([ff for _, ff in draws]) == 1.0
    swaps = data.datasets[idx] == "swaps"
    assert not pseudo[swaps].any()
    assert abs((data.labels[idx][swaps] == 1).mean() - 0.5) < 0.03  # still class-balanced
    big_fake = ~swaps & (pseudo | (data.labels[idx] == 1))
    assert abs(pseudo[big_fake].mean() - 0.5) < 0.05  # other sets still self-blend
    plain = BalancedSampler(data, weights, pseudo_fraction=0.5)
    plain_draws = plain.draw(np.random.default_rng(0), 10000)
    plain_idx = np.array([i for i, _ in plain_draws])
    plain_pseudo = np.array([ff for _, ff in plain_draws]) == 1.0
    assert plain_pseudo[data.datasets[plain_idx] == "swaps"].any()  # the knob is what stops it
    with pytest.raises(ConfigError, match="supervised_only"):
        BalancedSampler(data, weights, 0.5, supervised_only=["big_without_fakes"])


def test_validate_sets_scores_video_sets_by_video() -> None:
    from fakescope.training.balanced import validate_sets

    # set "v": two videos of 3 frames each; frame scores overlap but video means separate
    probs = np.array([0.1, 0.6, 0.2, 0.5, 0.9, 0.3, 0.2, 0.7], np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1], np.int64)
    datasets = np.array(["v"] * 6 + ["i"] * 2)
    media = np.array(["r", "r", "r", "f", "f", "f", "i1", "i2"])
    out = validate_sets(probs, labels, datasets, media)
    assert out["val_sets"]["v"]["video_auc"] == 1.0 and out["val_sets"]["v"]["frame_auc"] < 1.0
    assert "video_auc" not in out["val_sets"]["i"]
    assert out["val_score"] == pytest.approx((1.0 + 1.0) / 2)


def test_store_training_smoke_splits_best_epoch_and_manifests(
    two_sets: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from fakescope.data import load_dataset
    from fakescope.training.balanced import write_split_manifests
    from fakescope.training.engine import train

    def main(argv: list[str]) -> Path:  # fakescope train CONFIG --set KEY=VALUE ...
        return train(argv[0], argv[2:]).run_dir

    store = tmp_path / "store"
    build_store(two_sets, store, StoreParams(size=96, frames_per_video=3))
    out = tmp_path / "run"
    argv = [
        str(REPO / "configs" / "sbi_v2_lite0.yaml"),
        "--set",
        f"data.store={store}",
        "data.set_weights=[]",
        "data.split_ratios=[0.5, 0.5, 0.0]",
        "data.split_seed=1",
        "data.input_size=64",
        "model.pretrained=false",
        "optim.epochs=2",
        "optim.batch=4",
        "run.max_steps_per_epoch=2",
        f"run.out={out}",
    ]
    assert main(argv) == out
    splits = json.loads((out / "splits.json").read_text())
    assert set(splits["groups"].values()) <= {"train", "val"}
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [0, 1]
    assert all("val_sets" in e and "val_score" in e for e in log)
    best = json.loads((out / "best.json").read_text())
    scored = [e for e in log if e["val_score"] is not None]
    if scored:  # the best epoch is the highest validation score, and model.onnx is it
        assert best["val_score"] == max(e["val_score"] for e in scored)
    assert (out / "model.onnx").is_file()
    err = capsys.readouterr().err
    assert "in train" in err

    manifests = write_split_manifests(out, two_sets)
    assert set(manifests) <= {"train", "val"}
    items = {s: load_dataset("auto", p) for s, p in manifests.items()}
    seen = [i.media_id for its in items.values() for i in its]
    assert len(seen) == len(set(seen)) == 7  # every stored item in exactly one split
    group_split = splits["groups"]
    media_groups = dict(json.loads((out / "store.json").read_text())["media_groups"])
    for split, its in items.items():
        assert all(group_split[media_groups[i.media_id]] == split for i in its)

    # a pinned split (data.split_file) is used as written, whatever the seed says; a store
    # group the file does not name is in no split and is counted
    groups = sorted(group_split)
    pinned = {g: ("val" if group_split[g] == "train" else "train") for g in groups[1:]}
    pin_file = tmp_path / "pinned.json"
    pin_file.write_text(json.dumps({"groups": pinned}))
    out2 = tmp_path / "run2"
    pinned_argv = [a for a in argv if not a.startswith(("run.out=", "optim.epochs="))]
    main([*pinned_argv, f"run.out={out2}", "optim.epochs=1", f"data.split_file={pin_file}"])
    got = json.loads((out2 / "splits.json").read_text())["groups"]
    assert got == {**pinned, groups[0]: "unassigned"}
    assert "does not name" in capsys.readouterr().err
    manifests2 = write_split_manifests(out2, two_sets)
    assert "unassigned" not in manifests2
    with pytest.raises(ConfigError, match="split_file"):
        main([*pinned_argv, f"run.out={tmp_path / 'run3'}", f"data.split_file={out2}"])

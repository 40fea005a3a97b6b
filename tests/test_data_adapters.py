"""Dataset adapters on tiny synthetic trees (empty files: adapters never decode media)."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fakescope.data as data
from fakescope.data import (
    DATASETS,
    DatasetWarning,
    MediaItem,
    detect_layout,
    identity_disjoint_split,
    load_dataset,
    read_manifest,
    write_manifest,
)
from fakescope.errors import ConfigError, InputError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def by_id(items: list[MediaItem]) -> dict[str, MediaItem]:
    return {i.media_id: i for i in items}


def item(media_id: str, *ids: str, label: str = "fake") -> MediaItem:
    return MediaItem(
        media_id=media_id,
        path=Path(f"/x/{media_id}.mp4"),
        label=label,
        dataset="t",
        method="real" if label == "real" else "X",
        identities=ids,
        split=None,
        compression=None,
    )


# --- MediaItem ------------------------------------------------------------------------------


def test_media_item_validates_label_and_fields() -> None:
    with pytest.raises(ConfigError, match="label"):
        item("a", "1", label="FAKE")
    with pytest.raises(ConfigError, match="method"):
        MediaItem("a", Path("a"), "real", "t", "Deepfakes", ("1",), None, None)
    with pytest.raises(ConfigError, match="split"):
        MediaItem("a", Path("a"), "fake", "t", "X", ("1",), "training", None)
    with pytest.raises(ConfigError, match="kind"):
        MediaItem("a", Path("a"), "fake", "t", "X", ("1",), None, None, kind="audio")


def test_public_api_all_is_exact() -> None:
    public = {k for k in vars(data) if not k.startswith("_") and k != "annotations"}
    assert set(data.__all__) == public
    assert set(DATASETS.names()) >= {"ffpp", "celebdf", "dfdc", "deepfaketimit", "folder"}
    assert "manifest" in DATASETS


# --- FaceForensics++ ------------------------------------------------------------------------


def make_ffpp(root: Path, splits: bool) -> None:
    touch(
        root,
        "original_sequences/youtube/c23/videos/000.mp4",
        "original_sequences/youtube/c23/videos/003.mp4",
        "original_sequences/youtube/c23/videos/071.mp4",
        "original_sequences/youtube/c40/videos/000.mp4",
        "original_sequences/actors/c23/videos/01__kitchen_pan.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/003_000.mp4",
        "manipulated_sequences/Deepfakes/masks/videos/000_003.mp4",  # 003_000 has no mask
        "manipulated_sequences/FaceSwap/c23/videos/071_054.mp4",
        "manipulated_sequences/FaceSwap/c40/videos/071_054.mp4",
        "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__walking__ABC.mp4",
    )
    if splits:
        (root / "splits").mkdir()
        (root / "splits/train.json").write_text(json.dumps([["000", "003"]]))
        (root / "splits/val.json").write_text(json.dumps([]))
        (root / "splits/test.json").write_text(json.dumps([["054", "071"]]))


def test_ffpp_with_official_splits(tmp_path: Path) -> None:
    make_ffpp(tmp_path, splits=True)
    assert detect_layout(tmp_path) == "ffpp"
    items = by_id(load_dataset("ffpp", tmp_path, compression="c23"))
    assert len(items) == 8  # c23 only
    fake = items["ffpp/Deepfakes/c23/000_003"]
    assert (fake.label, fake.method, fake.compression) == ("fake", "Deepfakes", "c23")
    assert fake.identities == ("000", "003") and fake.split == "train"
    assert fake.mask_path == tmp_path / "manipulated_sequences/Deepfakes/masks/videos/000_003.mp4"
    no_mask = items["ffpp/Deepfakes/c23/003_000"]
    assert no_mask.mask_path is None and no_mask.split == "train"  # pair in either order
    assert items["ffpp/FaceSwap/c23/071_054"].split == "test"
    assert items["ffpp/youtube/c23/071"].split == "test"
    assert items["ffpp/youtube/c23/000"].identities == ("000",)
    assert items["ffpp/youtube/c23/000"].method == "real"
    actor = items["ffpp/actors/c23/01__kitchen_pan"]
    assert actor.identities == ("01",) and actor.split is None
    dfd = items["ffpp/DeepFakeDetection/c23/01_02__walking__ABC"]
    assert dfd.identities == ("01", "02") and dfd.split is None


def test_ffpp_without_split_files_and_compression_options(tmp_path: Path) -> None:
    make_ffpp(tmp_path, splits=False)
    items = load_dataset("ffpp", tmp_path, compression="all")
    assert len(items) == 10
    assert all(i.split is None for i in items)
    c40 = load_dataset("ffpp", tmp_path, compression="c40", methods=["FaceSwap"])
    assert {i.media_id for i in c40} == {"ffpp/youtube/c40/000", "ffpp/FaceSwap/c40/071_054"}
    with pytest.raises(InputError, match="c23, c40"):
        load_dataset("ffpp", tmp_path, compression="raw")
    with pytest.raises(ConfigError, match="unexpected keyword"):
        load_dataset("ffpp", tmp_path, quality="c23")


def test_ffpp_default_loads_every_compression(tmp_path: Path) -> None:
    # What `fakescope eval` gets: load_dataset without options, so both levels for the
    # per-compression breakdown, each item tagged with its own folder.
    touch(
        tmp_path,
        "original_sequences/youtube/c23/videos/000.mp4",
        "original_sequences/youtube/c40/videos/000.mp4",
        "original_sequences/youtube/c40/videos/003.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/000_003.mp4",
        "manipulated_sequences/Deepfakes/c40/videos/000_003.mp4",
    )
    items = load_dataset("ffpp", tmp_path)
    assert {(i.media_id, i.compression) for i in items} == {
        ("ffpp/youtube/c23/000", "c23"),
        ("ffpp/youtube/c40/000", "c40"),
        ("ffpp/youtube/c40/003", "c40"),
        ("ffpp/Deepfakes/c23/000_003", "c23"),
        ("ffpp/Deepfakes/c40/000_003", "c40"),
    }
    assert all(i.path.parent.parent.name == i.compression for i in items)
    c40 = load_dataset("ffpp", tmp_path, compression="c40")
    assert {i.compression for i in c40} == {"c40"} and len(c40) == 3


# --- Celeb-DF ---------------------------------------------------------------------------------


def make_celebdf(root: Path) -> None:
    touch(
        root,
        "Celeb-real/id0_0000.mp4",
        "Celeb-real/id16_0001.mp4",
        "YouTube-real/00170.mp4",
        "Celeb-synthesis/id0_id16_0000.mp4",
        "Celeb-synthesis/id16_id0_0001.mp4",
    )


def test_celebdf_with_testing_list(tmp_path: Path) -> None:
    make_celebdf(tmp_path)
    # Official list: 1 = real, 0 = fake.
    (tmp_path / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id16_0000.mp4\n"
    )
    assert detect_layout(tmp_path) == "celebdf"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # labels agree: no warning
        items = by_id(load_dataset("celebdf", tmp_path))
    assert items["celebdf/Celeb-real/id0_0000"].identities == ("id0",)
    assert items["celebdf/YouTube-real/00170"].identities == ("00170",)
    assert items["celebdf/YouTube-real/00170"].split == "test"
    swap = items["celebdf/Celeb-synthesis/id0_id16_0000"]
    assert (swap.label, swap.method, swap.identities, swap.split) == (
        "fake",
        "Celeb-DF",
        ("id0", "id16"),
        "test",
    )
    assert items["celebdf/Celeb-synthesis/id16_id0_0001"].split == "train"


def test_celebdf_without_testing_list(tmp_path: Path) -> None:
    make_celebdf(tmp_path)
    items = load_dataset("celebdf", tmp_path)
    assert len(items) == 5 and all(i.split is None for i in items)
    assert Counter(i.label for i in items) == {"real": 3, "fake": 2}


# --- DFDC -------------------------------------------------------------------------------------


def test_dfdc_parts_and_missing_files(tmp_path: Path) -> None:
    part = tmp_path / "dfdc_train_part_0"
    touch(part, "aaa.mp4", "bbb.mp4")
    meta = {
        "aaa.mp4": {"label": "REAL", "split": "train", "original": None},
        "bbb.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},
        "ccc.mp4": {"label": "FAKE", "split": "train", "original": "aaa.mp4"},  # missing
    }
    (part / "metadata.json").write_text(json.dumps(meta))
    assert detect_layout(tmp_path) == "dfdc"
    with pytest.warns(DatasetWarning, match=r"1 .*missing.*ccc\.mp4"):
        items = by_id(load_dataset("dfdc", tmp_path))
    assert set(items) == {"dfdc/dfdc_train_part_0/aaa", "dfdc/dfdc_train_part_0/bbb"}
    real, fake = items["dfdc/dfdc_train_part_0/aaa"], items["dfdc/dfdc_train_part_0/bbb"]
    assert real.identities == fake.identities == ("aaa",)
    assert (real.method, fake.method, fake.split) == ("real", "DFDC", "train")


def test_dfdc_single_folder(tmp_path: Path) -> None:
    touch(tmp_path, "x.mp4")
    (tmp_path / "metadata.json").write_text(json.dumps({"x.mp4": {"label": "REAL"}}))
    (item_,) = load_dataset("dfdc", tmp_path)
    assert item_.media_id == "dfdc/x" and item_.split is None


# --- DeepfakeTIMIT ----------------------------------------------------------------------------


def test_deepfaketimit_with_vidtimit(tmp_path: Path) -> None:
    root, real = tmp_path / "DeepfakeTIMIT", tmp_path / "VidTIMIT"
    touch(
        root, "higher_quality/fadg0/sa1-video-fram1.avi", "lower_quality/fadg0/sa1-video-fram1.avi"
    )
    touch(real, "fadg0/video/sa1/001", "fadg0/video/sa2/001", "mcem0/head.avi")
    assert detect_layout(root) == "deepfaketimit"
    assert len(load_dataset("deepfaketimit", root)) == 2
    items = by_id(load_dataset("deepfaketimit", root, real_root=real))
    assert items["deepfaketimit/HQ/fadg0/sa1-video-fram1"].method == "DeepfakeTIMIT-HQ"
    assert items["deepfaketimit/LQ/fadg0/sa1-video-fram1"].identities == ("fadg0",)
    reals = [i for i in items.values() if i.label == "real"]
    assert {i.media_id for i in reals} == {
        "deepfaketimit/real/fadg0/sa1",
        "deepfaketimit/real/fadg0/sa2",
        "deepfaketimit/real/mcem0/head.avi",
    }
    assert all(i.kind == "video" for i in reals)


# --- generic folder ---------------------------------------------------------------------------


def test_folder_layout_nested_methods(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "real/a.mp4",
        "real/sub/b.JPG",
        "real/notes.txt",
        "fake/c.png",
        "fake/FaceSwap/deep/d.mov",
        "fake/Deepfakes/e.webm",
        "fake/.hidden/f.mp4",
    )
    assert detect_layout(tmp_path) == "folder"
    items = by_id(load_dataset("folder", tmp_path))
    assert len(items) == 5
    assert items["folder/real/sub/b.JPG"].kind == "image"
    assert items["folder/fake/c.png"].method == "fake"
    assert items["folder/fake/FaceSwap/deep/d.mov"].method == "FaceSwap"
    assert items["folder/fake/FaceSwap/deep/d.mov"].identities == ("d",)
    assert items["folder/fake/Deepfakes/e.webm"].kind == "video"


# --- manifests ----------------------------------------------------------------------------------


def test_write_read_manifest_round_trip(tmp_path: Path) -> None:
    make_ffpp(tmp_path / "ffpp", splits=True)
    items = load_dataset("ffpp", tmp_path / "ffpp", compression="all")
    outside = MediaItem(
        "x/1", tmp_path.parent / "elsewhere.jpg", "real", "x", "real", (), None, None, kind="image"
    )
    path = write_manifest([*items, outside], tmp_path / "out.tsv")
    text = path.read_text()
    assert text.startswith("media_id\tpath\t")
    assert "\tffpp/manipulated_sequences/Deepfakes/c23/videos/000_003.mp4\t" in text
    assert str(tmp_path.parent / "elsewhere.jpg") in text  # outside the folder: absolute
    assert read_manifest(path) == [*items, outside]
    assert load_dataset("manifest", path) == [*items, outside]
    with pytest.raises(InputError, match="duplicate"):
        write_manifest([outside, outside], tmp_path / "dup.tsv")


def test_manifest_table_adapter(tmp_path: Path) -> None:
    touch(tmp_path, "fake/Deepfakes_183_253.mp4", "real/youtube_183.mp4", "fake/train_x.jpg")
    touch(tmp_path, "real/actors_01__kitchen_pan.mp4")
    rows = [
        "file\tlabel\tkind\tgenerator_method",
        "fake/Deepfakes_183_253.mp4\tfake\tvideo\tFF++ Deepfakes (face-swap), c40; "
        "target_source=183_253",
        "real/youtube_183.mp4\treal\tvideo\tFF++ original youtube, c40",
        "real/actors_01__kitchen_pan.mp4\treal\tvideo\tFF++/DFD original actors, c40",
        "fake/train_x.jpg\tfake\timage\tStyleGAN2 (ffhq), truncation 0.7",
        "fake/gone.mp4\tfake\tvideo\tFF++ FaceSwap (face-swap), c40",
    ]
    (tmp_path / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    assert detect_layout(tmp_path) == "manifest"
    with pytest.warns(DatasetWarning, match="gone.mp4"):
        items = by_id(load_dataset("manifest", tmp_path, dataset="dev"))
    swap = items["dev/fake/Deepfakes_183_253"]
    assert (swap.method, swap.compression, swap.identities) == ("Deepfakes", "c40", ("183", "253"))
    assert items["dev/real/youtube_183"].identities == ("183",)
    assert items["dev/real/actors_01__kitchen_pan"].identities == ("01",)
    other = items["dev/fake/train_x"]
    assert (other.method, other.split, other.kind) == ("StyleGAN2", "train", "image")
    # CSV with a sniffed delimiter
    (tmp_path / "list.txt").write_text("file,label\nreal/youtube_183.mp4,real\n")
    (only,) = load_dataset("manifest", tmp_path / "list.txt")
    assert only.method == "real" and only.identities == ("youtube_183",)


def test_manifest_rows_of_the_c23_clips_and_dfdc_faces(tmp_path: Path) -> None:
    # kinds with a note after the word, the compression in original_path, ids from file names,
    # a DFDC fake's source video as its identity, an unknown kind read from the extension
    touch(tmp_path, "fake/Deepfakes_044_945.mp4", "real/youtube_044.mp4", "fake/ekz.jpg")
    rows = [
        "file\tlabel\toriginal_path\tkind\tgenerator_method",
        "fake/Deepfakes_044_945.mp4\tfake\tDatasets/manipulated_sequences/Deepfakes/c23/videos/"
        "044_945.mp4\tvideo (first 5 s, stream copy)\tDeepfakes",
        "real/youtube_044.mp4\treal\tDatasets/original_sequences/youtube/c23/videos/044.mp4"
        "\tvideo (first 5 s, stream copy)\tnone(youtube)",
        "fake/ekz.jpg\tfake\tfaces_224/ekz.jpg\tface_crop_224\tDFDC face swap "
        "(original=akvcrttvvo.mp4)",
    ]
    (tmp_path / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    items = by_id(load_dataset("manifest", tmp_path, dataset="c23"))
    swap = items["c23/fake/Deepfakes_044_945"]
    assert (swap.kind, swap.method, swap.compression) == ("video", "Deepfakes", "c23")
    assert swap.identities == ("044", "945")
    real = items["c23/real/youtube_044"]
    assert (real.kind, real.identities, real.compression) == ("video", ("044",), "c23")
    dfdc = items["c23/fake/ekz"]
    assert (dfdc.kind, dfdc.identities, dfdc.method) == ("image", ("akvcrttvvo",), "DFDC face swap")


# --- layout detection and errors ----------------------------------------------------------------


def test_detect_layout_and_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="original_sequences"):
        detect_layout(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        load_dataset("folder", tmp_path / "nope")
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("kinetics", tmp_path)
    touch(tmp_path, "real/a.jpg")
    assert [i.media_id for i in load_dataset("auto", tmp_path)] == ["folder/real/a.jpg"]


# --- identity-disjoint split ------------------------------------------------------------------


def check_disjoint(items: list[MediaItem], out: list[MediaItem]) -> None:
    assert [i.media_id for i in out] == [i.media_id for i in items]
    assert [i.path for i in out] == [i.path for i in items]
    where: dict[str, str | None] = {}
    for it in out:
        assert it.split in {"train", "val", "test"}
        for ident in it.identities:
            assert where.setdefault(ident, it.split) == it.split, f"{ident} crosses splits"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 30), min_size=0, max_size=3), min_size=1, max_size=60),
    st.integers(0, 2**32 - 1),
)
def test_identity_disjoint_split_property(id_lists: list[list[int]], seed: int) -> None:
    items = [item(f"m{n}", *(str(i) for i in ids)) for n, ids in enumerate(id_lists)]
    check_disjoint(items, identity_disjoint_split(items, seed=seed))


def test_identity_disjoint_split_seeds_and_ratios() -> None:
    items = [item(f"m{n}", str(n), str(n + 1000)) for n in range(200)]
    items += [item(f"r{n}", str(n), label="real") for n in range(200)]  # reals join their swaps
    a = identity_disjoint_split(items, seed=1)
    assert a == identity_disjoint_split(items, seed=1)
    assert [i.split for i in a] != [i.split for i in identity_disjoint_split(items, seed=2)]
    check_disjoint(items, a)
    counts = Counter(i.split for i in a)
    assert abs(counts["train"] - 0.72 * 400) <= 2 and abs(counts["test"] - 0.14 * 400) <= 2
    only_train = identity_disjoint_split(items, ratios=(1.0, 0.0, 0.0))
    assert {i.split for i in only_train} == {"train"}
    with pytest.raises(ConfigError):
        identity_disjoint_split(items, ratios=(0.5, -0.1, 0.6))


# --- the real shared manifests ------------------------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize(
    "name",
    [
        "ffpp_c40_videos",
        "ffpp_face_crops",
        "utkface_real",
        "ffpp_c23_videos",
        "dfdc_faces",
        "stylegan2_ffhq",
    ],
)
def test_shared_data_manifests_load(name: str) -> None:
    folder = SHARED_DATA / name
    if not (folder / "MANIFEST.tsv").is_file():
        pytest.skip(f"{folder}/MANIFEST.tsv is absent (../shared/data only exists beside CI)")
    assert detect_layout(folder) == "manifest"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # every listed file exists
        items = load_dataset("manifest", folder)
    with (folder / "MANIFEST.tsv").open() as fh:
        assert len(items) == sum(1 for _ in fh) - 1
    counts = Counter((i.label, i.method) for i in items)
    print(f"\n{name}: {len(items)} items {dict(sorted(counts.items()))}")
    assert all(i.path.is_file() for i in items)
    if name == "ffpp_c40_videos":
        assert {i.compression for i in items} == {"c40"}
        assert all(len(i.identities) == 2 for i in items if i.label == "fake")
        check_disjoint(items, identity_disjoint_split(items))
    if name == "ffpp_face_crops":
        assert {i.split for i in items} == {"train", "test"}
        assert {i.method for i in items} == {"real", *data.FFPP_METHODS[:4]}
    if name == "ffpp_c23_videos":
        assert {i.compression for i in items} == {"c23"} and {i.kind for i in items} == {"video"}
        assert all(len(i.identities) == 2 for i in items if i.label == "fake")
        c40 = load_dataset("manifest", SHARED_DATA / "ffpp_c40_videos")
        assert not {x for i in items for x in i.identities} & {x for i in c40 for x in i.identities}
    if name == "dfdc_faces":
        # a fake is grouped with the real video it was made from, not by its own file name
        assert all(i.identities != (i.path.stem,) for i in items if i.label == "fake")

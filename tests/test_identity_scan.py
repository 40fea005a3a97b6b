"""Identity in the scan (issue 13): whose face each track is, tracks of one person joined,
known people named from the gallery."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from fakescope.cli import main
from fakescope.config import ScanConfig
from fakescope.identity import Gallery, IdentityEmbedder
from fakescope.inference import Scanner
from fakescope.io import make_clip

BASE = ScanConfig(synthesis_detector=None, num_frames=8)


@pytest.fixture(scope="module")
def twin_clip(
    tmp_path_factory: pytest.TempPathFactory, example_face: npt.NDArray[np.uint8]
) -> Path:
    """The same face twice, side by side: two face tracks of one person."""
    path = tmp_path_factory.mktemp("twins") / "twins.mp4"
    return make_clip(
        path, width=640, height=360, seconds=2.0, fps=10, face=example_face, face_height=150,
        num_faces=2,
    )  # fmt: skip


def test_tracks_of_one_person_share_a_number(twin_clip: Path) -> None:
    v = Scanner(dataclasses.replace(BASE, identity=True)).scan(twin_clip)
    assert len(v.tracks) == 2
    people = {t.identity.person for t in v.tracks if t.identity is not None}
    assert people == {0}
    assert all(t.identity is not None and t.identity.name is None for t in v.tracks)
    assert v.to_dict()["faces"][0]["identity"]["person"] == 0


def test_gallery_names_a_known_face_and_not_a_stranger(
    tmp_path: Path, face_clip: Path, example_face: npt.NDArray[np.uint8]
) -> None:
    embedder = IdentityEmbedder()
    gallery = Gallery(tmp_path / "people")
    v0 = Scanner(dataclasses.replace(BASE, identity=True)).scan(face_clip)
    assert v0.tracks and v0.tracks[0].identity is not None
    # her reference: the example face read by the scan's own face step
    from fakescope.faces import FACE_DETECTORS

    face = FACE_DETECTORS.create("hybrid").detect(example_face, 0, [], full_scan=True)[0]
    gallery.add("eileen", embedder.embed(example_face, face))
    known = Scanner(dataclasses.replace(BASE, gallery=str(tmp_path / "people"))).scan(face_clip)
    identity = known.tracks[0].identity
    assert identity is not None and identity.name == "eileen"
    assert identity.same_person_probability is not None and identity.same_person_probability > 0.5
    # with only someone else in the gallery, the face stays unknown
    gallery.remove("eileen")
    gallery.add("stranger", np.random.default_rng(0).normal(size=(1, 128)))
    v2 = Scanner(dataclasses.replace(BASE, gallery=str(tmp_path / "people"))).scan(face_clip)
    i2 = v2.tracks[0].identity
    assert i2 is not None and i2.name is None and i2.closest == "stranger"


def test_cli_scan_prints_whose_face(
    face_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(face_clip), "--identity", "--no-synthesis", "--frames", "6"]) == 0
    assert "face 1 is person 1" in capsys.readouterr().out


def test_api_people_needs_a_token_and_deletes(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fakescope.server import ServerSettings, create_app

    folder = tmp_path / "people"
    Gallery(folder).add("eileen", np.random.default_rng(0).normal(size=(2, 128)))
    scan = dataclasses.replace(BASE, gallery=str(folder))
    open_settings = ServerSettings(data_dir=tmp_path / "open", scan=scan)
    with TestClient(create_app(open_settings, start_workers=False)) as client:
        assert client.get("/api/people").status_code == 403  # no token configured: refused
    settings = ServerSettings(data_dir=tmp_path / "data", api_token="s3cret-token", scan=scan)
    auth = {"Authorization": "Bearer s3cret-token"}
    with TestClient(create_app(settings, start_workers=False)) as client:
        assert client.get("/api/people").status_code == 401
        body = client.get("/api/people", headers=auth).json()
        assert body == {"people": [{"name": "eileen", "embeddings": 2}]}
        assert client.get("/api/health").json()["identity"] is True
        assert client.delete("/api/people/nobody", headers=auth).status_code == 404
        assert client.delete("/api/people/eileen", headers=auth).status_code == 204
        assert client.get("/api/people", headers=auth).json() == {"people": []}
    assert Gallery(folder).names() == []


def test_api_adds_a_person_from_an_upload_and_keeps_no_file(
    tmp_path: Path, example_face: npt.NDArray[np.uint8]
) -> None:
    import cv2
    from fastapi.testclient import TestClient

    from fakescope.server import ServerSettings, create_app

    folder = tmp_path / "people"
    scan = dataclasses.replace(BASE, gallery=str(folder))
    settings = ServerSettings(data_dir=tmp_path / "data", api_token="s3cret-token", scan=scan)
    auth = {"Authorization": "Bearer s3cret-token"}
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(example_face, cv2.COLOR_RGB2BGR))
    assert ok
    blank = cv2.imencode(".png", np.full((200, 200, 3), 128, np.uint8))[1]
    with TestClient(create_app(settings, start_workers=False)) as client:
        files = {"file": ("eileen.jpg", jpeg.tobytes(), "image/jpeg")}
        assert client.post("/api/people/eileen", files=files).status_code == 401
        r = client.post("/api/people/eileen", files=files, headers=auth)
        assert r.status_code == 201, r.text
        assert r.json() == {"name": "eileen", "added": 1, "embeddings": 1}
        r = client.post("/api/people/eileen", files=files, headers=auth)
        assert r.json()["embeddings"] == 2
        empty = {"file": ("wall.png", blank.tobytes(), "image/png")}
        r = client.post("/api/people/wall", files=empty, headers=auth)
        assert r.status_code == 400 and "no face" in r.json()["detail"]
    assert Gallery(folder).names() == ["eileen"]
    assert list((tmp_path / "data" / "uploads").iterdir()) == []  # no photo kept


def test_a_running_scanner_forgets_a_removed_person(tmp_path: Path, face_clip: Path) -> None:
    from fakescope.identity import TrackIdentifier

    folder = tmp_path / "people"
    Gallery(folder).add("someone", np.random.default_rng(1).normal(size=(1, 128)))
    identifier = TrackIdentifier(folder)
    assert identifier.gallery is not None and identifier.gallery.names() == ["someone"]
    Gallery(folder).remove("someone")  # another process edits the gallery
    assert identifier.gallery is not None and identifier.gallery.names() == []


# -- the reference check (--reference NAME) -------------------------------------------------


def _reference_gallery(folder: Path, example_face: npt.NDArray[np.uint8]) -> Gallery:
    """A gallery where "eileen" has the example face's references (slightly shifted crops of
    it, so the check has several) and "stranger" has random directions."""
    from fakescope.faces import FACE_DETECTORS

    embedder = IdentityEmbedder()
    detect = FACE_DETECTORS.create("hybrid")
    refs = []
    for shift in (0, 4, 8, 12):
        image = np.ascontiguousarray(np.roll(example_face, shift, axis=1))
        face = detect.detect(image, 0, [], full_scan=True)[0]
        refs.append(embedder.embed(image, face))
    gallery = Gallery(folder)
    gallery.add("eileen", np.stack(refs))
    gallery.add("stranger", np.random.default_rng(1).normal(size=(6, 128)))
    gallery.add("sparse", np.random.default_rng(2).normal(size=(1, 128)))
    return gallery


def test_reference_check_is_a_line_of_evidence(
    tmp_path: Path, face_clip: Path, example_face: npt.NDArray[np.uint8]
) -> None:
    folder = tmp_path / "people"
    _reference_gallery(folder, example_face)

    def check(name: str):  # type: ignore[no-untyped-def]
        cfg = dataclasses.replace(BASE, gallery=str(folder), reference=name)
        v = Scanner(cfg).scan(face_clip)
        assert v.tracks
        found = [e for e in v.tracks[0].evidence if e.name == "reference-v1"]
        assert len(found) == 1
        return v, found[0]

    v, own = check("eileen")
    assert own.fake_probability is not None and own.fake_probability < 0.2
    assert "looks like eileen" in own.summary
    assert own.values["distance"] < 0.35 and own.values["references"] == 4
    other_v, other = check("stranger")
    assert other.fake_probability is not None and other.fake_probability > 0.8
    assert "does not look like stranger" in other.summary
    # the check is evidence: it never changes the face detector's probability or label
    assert other_v.tracks[0].fake_probability == v.tracks[0].fake_probability
    assert other_v.tracks[0].label == v.tracks[0].label
    _, sparse = check("sparse")
    assert sparse.fake_probability is None and "1 reference face" in sparse.summary
    d = v.to_dict()["faces"][0]["evidence"]
    assert any(e["name"] == "reference-v1" and e["fake_probability"] < 0.2 for e in d)


def test_reference_to_an_unknown_person_is_a_clear_error(tmp_path: Path) -> None:
    from fakescope.errors import ConfigError

    Gallery(tmp_path / "people").add("someone", np.random.default_rng(0).normal(size=(4, 128)))
    with pytest.raises(ConfigError, match="nobody"):
        Scanner(dataclasses.replace(BASE, gallery=str(tmp_path / "people"), reference="nobody"))
    with pytest.raises(ConfigError, match="gallery"):
        ScanConfig(reference="someone")


def test_cli_reference_uses_the_default_gallery(
    tmp_path: Path,
    face_clip: Path,
    example_face: npt.NDArray[np.uint8],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    _reference_gallery(tmp_path / "g", example_face)
    monkeypatch.setenv("FAKESCOPE_GALLERY", str(tmp_path / "g"))
    args = ["scan", str(face_clip), "--reference", "stranger", "--no-synthesis", "--frames", "6"]
    assert main([*args, "--json"]) == 0
    face = json.loads(capsys.readouterr().out.splitlines()[0])["faces"][0]
    ref = next(e for e in face["evidence"] if e["name"] == "reference-v1")
    assert ref["fake_probability"] > 0.8
    assert main(args) == 0
    assert "does not look like stranger" in capsys.readouterr().out


def _cut_clip(path: Path, face: npt.NDArray[np.uint8]) -> Path:
    """Two shots of one person: a small face on the left over one background, then a hard
    cut to a bigger face on the right over another."""
    import av
    import cv2

    rng = np.random.default_rng(5)
    backgrounds = [
        cv2.GaussianBlur(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8), (31, 31), 0)
        for _ in range(2)
    ]
    shots = [((40, 60), 150), ((330, 40), 230)]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i in range(40):
            shot = 0 if i < 20 else 1
            image = backgrounds[shot].copy()
            (x, y), h = shots[shot]
            w = round(face.shape[1] * h / face.shape[0])
            image[y : y + h, x : x + w] = cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_tracks_of_one_person_merge_across_a_cut(
    tmp_path: Path, example_face: npt.NDArray[np.uint8]
) -> None:
    clip = _cut_clip(tmp_path / "cut.mp4", example_face)
    v = Scanner(dataclasses.replace(BASE, identity=True, num_frames=16)).scan(clip)
    assert len(v.tracks) == 2, "the cut should end one face track and start another"
    first, second = sorted(v.tracks, key=lambda t: t.frames[0].frame_index)
    assert first.frames[-1].frame_index < second.frames[0].frame_index
    assert first.identity is not None and second.identity is not None
    assert first.identity.person == second.identity.person == 0

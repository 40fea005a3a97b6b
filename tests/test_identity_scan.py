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
from fakescope.inference import Scanner
from fakescope.io import make_clip

pytest.importorskip("dlib", reason="needs the identity extra: pip install 'fakescope[identity]'")

from fakescope.identity import Gallery, IdentityEmbedder

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


def test_a_running_scanner_forgets_a_removed_person(tmp_path: Path, face_clip: Path) -> None:
    from fakescope.identity import TrackIdentifier

    folder = tmp_path / "people"
    Gallery(folder).add("someone", np.random.default_rng(1).normal(size=(1, 128)))
    identifier = TrackIdentifier(folder)
    assert identifier.gallery is not None and identifier.gallery.names() == ["someone"]
    Gallery(folder).remove("someone")  # another process edits the gallery
    assert identifier.gallery is not None and identifier.gallery.names() == []

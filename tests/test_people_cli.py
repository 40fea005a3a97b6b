"""``fakescope people``: the gallery round trip through the command line (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_image
from fakescope.cli import main
from fakescope.identity import Gallery

ASTRONAUT = Path(__file__).parents[1] / "src" / "fakescope" / "assets" / "astronaut.jpg"


def test_add_list_match_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gallery = tmp_path / "people"
    assert main(["people", "--gallery", str(gallery), "add", "eileen", str(ASTRONAUT)]) == 0
    assert "added 1 reference face(s) for eileen" in capsys.readouterr().out
    assert main(["people", "--gallery", str(gallery), "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "eileen", "embeddings": 1}]
    # the same face read again from disk matches her; the stored vector is the embedding only
    reopened = Gallery(gallery)
    match = reopened.match(reopened.embeddings("eileen")[0])
    assert match.name == "eileen" and match.same_person_probability > 0.9
    assert not list(gallery.glob("*.jpg")) and not list(gallery.glob("*.png"))
    assert main(["people", "--gallery", str(gallery), "remove", "eileen"]) == 0
    capsys.readouterr()
    assert Gallery(gallery).names() == []
    assert b"eileen" not in (gallery / "gallery.json").read_bytes()
    with np.load(gallery / "embeddings.npz", allow_pickle=False) as data:
        assert sum(data[k].size for k in data.files) == 0


def test_no_face_and_unknown_person_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gallery = tmp_path / "people"
    blank = write_image(tmp_path / "blank.png", np.full((200, 200, 3), 128, np.uint8), ".png")
    assert main(["people", "--gallery", str(gallery), "add", "nobody", str(blank)]) == 2
    assert "no face found" in capsys.readouterr().err
    assert main(["people", "--gallery", str(gallery), "remove", "nobody"]) == 2
    assert "not in the gallery" in capsys.readouterr().err


def test_gallery_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKESCOPE_GALLERY", str(tmp_path / "env-gallery"))
    assert main(["people", "add", "eileen", str(ASTRONAUT)]) == 0
    assert Gallery(tmp_path / "env-gallery").names() == ["eileen"]

"""One input expansion: ``fakescope scan DIR`` and ``fakescope batch DIR`` take the same files
from a folder or a glob, chosen by name or by content (:func:`fakescope.io.expand_inputs`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from conftest import write_image
from fakescope.batch import collect_items
from fakescope.io import expand_inputs


@pytest.fixture
def mixed(
    tmp_path: Path, face_clip: Path, example_face: npt.NDArray[np.uint8]
) -> tuple[Path, list[str]]:
    """A folder of media, misnamed media and other files; the names a scan of it takes."""
    root = tmp_path / "archive"
    (root / "sub").mkdir(parents=True)
    (root / ".cache").mkdir()
    shutil.copy(face_clip, root / "clip.mp4")  # a video
    write_image(root / "sub" / "photo.png", example_face, ".png")  # a photo
    write_image(root / "camera.dat", example_face)  # a JPEG under another name: by content
    shutil.copy(face_clip, root / "upload")  # a video without any extension
    (root / "notes.mp4").write_text("not a video, whatever its name says\n")  # by name
    (root / "empty.jpg").write_bytes(b"")  # named like media: its verdict says it is empty
    (root / "README.md").write_text("an archive of clips\n")  # neither: left out
    (root / "meta.json").write_text('{"clips": 2}')
    (root / "_SUCCESS").write_bytes(b"")
    (root / "archive.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    (root / ".hidden.mp4").write_bytes(face_clip.read_bytes())  # hidden: skipped
    (root / ".cache" / "frame.jpg").write_bytes(b"\xff\xd8\xff")
    os.mkfifo(root / "pipe")  # not a regular file: kept, never opened (the scan explains)
    taken = ["camera.dat", "clip.mp4", "empty.jpg", "notes.mp4", "pipe", "sub/photo.png", "upload"]
    return root, taken


def _names(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_scan_and_batch_take_the_same_files_from_a_folder(mixed: tuple[Path, list[str]]) -> None:
    root, taken = mixed
    scanned = expand_inputs([str(root)])
    batched = [Path(item.path) for item in collect_items([str(root)])]
    assert _names(root, scanned) == taken
    assert batched == scanned


def test_scan_and_batch_take_the_same_files_from_a_glob(mixed: tuple[Path, list[str]]) -> None:
    root, _ = mixed
    pattern = str(root / "*")
    scanned = expand_inputs([pattern])
    assert _names(root, scanned) == [
        "camera.dat",
        "clip.mp4",
        "empty.jpg",
        "notes.mp4",
        "pipe",
        "sub/photo.png",  # a folder the glob matched is walked
        "upload",
    ]
    assert [Path(item.path) for item in collect_items([pattern])] == scanned


def test_a_named_file_is_always_taken(mixed: tuple[Path, list[str]]) -> None:
    root, _ = mixed
    args = [str(root / "README.md"), str(root / "meta.json")]  # not a list file: .md
    assert expand_inputs(args) == [Path(a) for a in args]
    assert [item.path for item in collect_items(args)] == args


def test_a_folder_of_other_files_is_its_own_verdict(tmp_path: Path) -> None:
    from fakescope.errors import UnsupportedMedia
    from fakescope.io._files import regular_file_stat

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("no media here\n")
    assert expand_inputs([str(tmp_path / "docs")]) == [tmp_path / "docs"]
    with pytest.raises(UnsupportedMedia, match=r"^folder contains no files to scan"):
        regular_file_stat(tmp_path / "docs")

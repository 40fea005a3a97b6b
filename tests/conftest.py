"""Shared fixtures: tiny media made on the fly (session-scoped, so each is built once).

Under ``CI=true`` a skipped test is a failure: CI installs every extra and has
../shared/data, so a skip there means a test that should have run did not (a missing install
step, data that moved). The run then fails with the list of skips and their reasons.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import numpy.typing as npt
import pytest

# Verified model hashes are remembered in a cache folder (fakescope.models.stamp_file): the
# tests keep theirs out of the user's home.
os.environ.setdefault("FAKESCOPE_CACHE_DIR", tempfile.mkdtemp(prefix="fakescope-cache-"))

from fakescope.io import load_example_face, make_clip

CLIP_SIZE = (320, 240)


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` imported as module ``name`` (the tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def png_claiming(width: int, height: int) -> bytes:
    """A PNG signature and a valid IHDR chunk for ``width`` x ``height``, then garbage."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    crc = struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + crc + b"\x00garbage" * 64


def write_store(
    root: Path, images: list, marks: list, rows: list, size: int, frames_per_video: int
) -> Path:
    """A one-shard face store (the layout of :mod:`fakescope.training.store`) at ``root``."""
    import json
    from dataclasses import asdict

    from fakescope.training.store import STORE_VERSION, StoreParams

    params = StoreParams(size=size, frames_per_video=frames_per_video)
    shard = root / "shards" / "k0"
    shard.mkdir(parents=True)
    np.save(shard / "images.npy", np.stack(images))
    np.save(shard / "landmarks.npy", np.stack(marks))
    (shard / "rows.json").write_text(json.dumps({"rows": rows, "missed": 0}))
    index = {"version": STORE_VERSION, "params": asdict(params), "shards": ["k0"]}
    (root / "index.json").write_text(json.dumps(index))
    return root


def write_image(path: Path, rgb: npt.NDArray[np.uint8], ext: str = ".jpg") -> Path:
    """Encode ``rgb`` as ``ext`` (.jpg/.png/.bmp/.webp) and write it to ``path`` whatever
    its suffix."""
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(buf.tobytes())
    return path


@pytest.fixture(scope="session")
def example_face() -> npt.NDArray[np.uint8]:
    return load_example_face()


@pytest.fixture(scope="session")
def long_clip(
    tmp_path_factory: pytest.TempPathFactory, example_face: npt.NDArray[np.uint8]
) -> Path:
    """8 s at 25 fps, 640x360, a face throughout: a scan of several seconds at ``--fps 25``
    (200 frames), long enough to kill a server or a worker in the middle of it."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return make_clip(
        path, width=640, height=360, seconds=8.0, fps=25, face=example_face, face_height=180
    )


@pytest.fixture(scope="session")
def face_clip(
    tmp_path_factory: pytest.TempPathFactory, example_face: npt.NDArray[np.uint8]
) -> Path:
    """320x240, 2 s at 15 fps (30 frames), H.264 mp4 with the astronaut ~150 px tall."""
    path = tmp_path_factory.mktemp("clips") / "face.mp4"
    w, h = CLIP_SIZE
    return make_clip(
        path, width=w, height=h, seconds=2.0, fps=15, face=example_face, face_height=150
    )


@pytest.fixture(scope="session")
def noface_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """320x240, 2 s at 15 fps, H.264 mp4 with only the textured background."""
    path = tmp_path_factory.mktemp("clips") / "noface.mp4"
    w, h = CLIP_SIZE
    return make_clip(path, width=w, height=h, seconds=2.0, fps=15, seed=1)


@pytest.fixture(scope="session")
def face_image(
    tmp_path_factory: pytest.TempPathFactory, example_face: npt.NDArray[np.uint8]
) -> Path:
    """The astronaut head-and-shoulders crop as a JPEG file."""
    return write_image(tmp_path_factory.mktemp("images") / "face.jpg", example_face)


@pytest.fixture(scope="session")
def hostile_dir(
    tmp_path_factory: pytest.TempPathFactory, face_clip: Path, face_image: Path
) -> Path:
    """Inputs a batch must survive: empty.mp4, truncated.mp4 (first 30 % of a real clip),
    text.mp4 (text renamed), huge.png (header claims 100000x100000) and valid.jpg."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "empty.mp4").write_bytes(b"")
    data = face_clip.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: int(len(data) * 0.3)])
    (root / "text.mp4").write_text("this is not a video\njust some text\n" * 20)
    (root / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    (root / "valid.jpg").write_bytes(face_image.read_bytes())
    return root


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def in_ci() -> bool:
    """``CI=true`` in the environment (what ``.ci/run`` is started with)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI, turn a run with skipped tests into a failed run (exit status 1)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if in_ci() and skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    skipped = terminalreporter.stats.get("skipped", [])
    if in_ci() and skipped:
        terminalreporter.section("skips are failures under CI=true", red=True)
        for report in skipped:
            where = report.nodeid or report.location[0]
            terminalreporter.line(f"SKIPPED in CI: {where}: {report.longrepr[-1]}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip with a reason when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"third-party data not present at {SHARED_DATA} (see README: Data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def scanner():  # type: ignore[no-untyped-def]
    """One Scanner (models loaded once) shared by the pipeline and CLI tests."""
    from fakescope import Scanner

    return Scanner()

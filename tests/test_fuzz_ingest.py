"""Property-based fuzzing of the ingest: byte mutations of valid containers and image headers.

Every mutated input must end in frames or in an :class:`InputError` with a specific abstain
status (``unsupported``, ``undecodable``, ``too_large``), within a few seconds, never another
exception. The examples are derandomized (the same on every run) and bounded so that the test
stays within CI's budget; an input that breaks the ingest is saved in ``tests/hostile_found/``
(commit it: the hostile corpus then replays it through ``fakescope scan``).
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakescope.errors import InputError
from fakescope.io import Sampling, open_media
from fakescope.types import Status
from hostile_corpus import FOUND_DIR

_SAMPLING = Sampling(num_frames=3)
_PER_INPUT_S = 20
_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang()


@st.composite
def _mutations(draw: st.DrawFn, size: int, head: int) -> list[tuple[str, int, int]]:
    """A list of edits: flip a bit, set a byte, cut the file, insert or delete a run. Half of
    the positions fall in the first ``head`` bytes (where containers keep their headers)."""
    pos = st.one_of(st.integers(0, max(head - 1, 0)), st.integers(0, size - 1))
    edit = st.tuples(
        st.sampled_from(["flip", "set", "cut", "insert", "delete"]), pos, st.integers(0, 255)
    )
    return draw(st.lists(edit, min_size=1, max_size=8))


def _apply(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, pos, value in edits:
        if not out:
            break
        pos %= len(out)
        if kind == "flip":
            out[pos] ^= 1 << (value % 8)
        elif kind == "set":
            out[pos] = value
        elif kind == "cut":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = bytes([value]) * (1 + value % 16)
        else:
            del out[pos : pos + 1 + value % 64]
    return bytes(out)


def _ingest(path: Path) -> None:
    """Open and decode ``path`` as a scan does; an unexpected outcome raises AssertionError."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(_PER_INPUT_S)
    try:
        info, frames = open_media(path, _SAMPLING)
        decoded = list(frames)
        for frame in decoded:
            assert frame.image.dtype == np.uint8 and frame.image.ndim == 3
            assert frame.image.shape[2] == 3 and min(frame.image.shape[:2]) >= 1
        assert info.width >= 1 and info.height >= 1
    except InputError as exc:
        assert exc.status is not Status.ERROR, f"generic error: {exc}"
        assert str(exc), "an abstain needs a reason"
    except _Hang:
        raise AssertionError(f"no answer within {_PER_INPUT_S} s") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(tmp: Path, data: bytes, suffix: str) -> None:
    path = tmp / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        _ingest(path)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        FOUND_DIR.mkdir(exist_ok=True)
        saved = FOUND_DIR / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
        saved.write_bytes(data)
        raise AssertionError(f"{type(exc).__name__}: {exc} (input saved as {saved})") from exc


@pytest.fixture(scope="module")
def seeds(face_clip: Path, face_image: Path) -> Iterator[dict[str, bytes]]:
    rgb = cv2.imread(str(face_image))
    ok, png = cv2.imencode(".png", cv2.resize(rgb, (96, 96)))
    assert ok
    yield {".mp4": face_clip.read_bytes(), ".jpg": face_image.read_bytes(), ".png": bytes(png)}


@pytest.mark.parametrize("suffix", [".mp4", ".jpg", ".png"])
def test_mutated_media_never_breaks_the_ingest(
    suffix: str, seeds: dict[str, bytes], tmp_path: Path
) -> None:
    data = seeds[suffix]

    @_SETTINGS
    @given(edits=_mutations(len(data), 512))
    def run(edits: list[tuple[str, int, int]]) -> None:
        _check(tmp_path, _apply(data, edits), suffix)

    run()

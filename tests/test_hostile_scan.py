"""Issue 15, "Hostile inputs": scan-side defects, each reproduced with media made on the fly.

Metadata never decides a scan; extreme shapes and deep, huge frames abstain with a clear
reason before they cost memory; special files and empty folders get their own verdict; cut
files say "truncated or corrupt"; odd file names work; stderr stays fakescope's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from conftest import write_image
from fakescope import ScanConfig, Scanner, Status
from fakescope.errors import DecodeError, InputError, TooLarge, UnsupportedMedia
from fakescope.io import Limits, expand_inputs, make_clip, open_media, read_frames_at, sniff
from fakescope.io._sniff import read_head
from fakescope.types import Verdict

README = Path(__file__).resolve().parents[1] / "README.md"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """``fakescope ARGS`` in a subprocess; bytes, so undecodable names come through as-is."""
    return subprocess.run(
        [sys.executable, "-m", "fakescope", *args],
        capture_output=True,
        timeout=300,
        cwd=cwd,
    )


def _lines(proc: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


# -- 1. a title tag that is not UTF-8 -----------------------------------------------------


def _retitle(src: Path, dst: Path, title: bytes) -> Path:
    """``src``'s video stream remuxed (not re-encoded) into ``dst`` with a title tag of raw
    ``title`` bytes (written as Latin-1, as some cameras and old tools do)."""
    with (
        av.open(str(src)) as inp,
        av.open(str(dst), "w", format="mp4", metadata_encoding="latin-1") as out,
    ):
        out.metadata["title"] = title.decode("latin-1")
        source = inp.streams.video[0]
        target = out.add_stream_from_template(source)
        for packet in inp.demux(source):
            if packet.dts is None:
                continue
            packet.stream = target
            out.mux(packet)
    return dst


def test_latin1_title_does_not_decide_the_scan(
    face_clip: Path, tmp_path: Path, scanner: Scanner
) -> None:
    path = _retitle(face_clip, tmp_path / "cafe.mp4", b"caf\xe9")
    assert b"caf\xe9" in path.read_bytes()
    info, frames = open_media(path)
    assert info.kind == "video" and len(list(frames)) > 0
    assert read_frames_at(path, [0.5, 1.0])  # the second, seeking pass opens it too
    verdict = scanner.scan(path)
    assert verdict.status is Status.OK, verdict.reason


# -- 2. extreme aspect ratios -------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "ratio"), [(2000, 1, "2000:1"), (1, 2000, "1:2000"), (65535, 1, "65535:1")]
)
def test_extreme_aspect_ratio_is_unsupported_with_a_reason(
    tmp_path: Path, scanner: Scanner, width: int, height: int, ratio: str
) -> None:
    path = tmp_path / f"strip{width}x{height}.png"
    write_image(path, np.full((height, width, 3), 128, np.uint8), ".png")
    with pytest.raises(UnsupportedMedia, match=f"aspect ratio {ratio} is beyond the 20:1"):
        open_media(path)
    verdict = scanner.scan(path)
    assert verdict.status is Status.UNSUPPORTED
    assert "max_aspect_ratio" in verdict.reason and "internal error" not in verdict.reason


@pytest.mark.parametrize("shape", [(1, 2000), (2000, 1), (12, 30000), (40, 40000), (3, 3)])
def test_face_search_never_resizes_to_a_zero_side(scanner: Scanner, shape: tuple[int, int]) -> None:
    """Past the ingest check (or with ``max_aspect_ratio`` raised), a thin frame finds no
    face instead of failing in cv2.resize."""
    image = np.full((*shape, 3), 90, np.uint8)
    assert scanner.face_detector.detect(image, 0, [], full_scan=True) == []


def test_aspect_ratio_limit_is_configurable(tmp_path: Path) -> None:
    path = write_image(tmp_path / "wide.png", np.full((10, 300, 3), 60, np.uint8), ".png")
    with pytest.raises(UnsupportedMedia, match="30:1"):
        open_media(path)
    info, frames = open_media(path, limits=Limits(max_aspect_ratio=50))
    assert (info.width, info.height) == (300, 10) and len(list(frames)) == 1
    verdict = Scanner(ScanConfig(max_aspect_ratio=50)).scan(path)
    assert verdict.status is Status.NO_FACE, verdict.reason


# -- 3. deep, huge frames -----------------------------------------------------------------


@pytest.fixture(scope="module")
def deep_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2048x2048 H.264 High 4:4:4, 10-bit (yuv444p10le), 4 frames at 5 fps: a few KB that
    decode to 24 MiB a frame (the issue's 8192x8192 file, scaled down)."""
    path = tmp_path_factory.mktemp("deep") / "deep.mp4"
    size, pix_fmt = 2048, "yuv444p10le"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width = stream.height = size
        stream.pix_fmt = pix_fmt
        stream.codec_context.options = {"preset": "ultrafast"}
        rgb = np.zeros((size, size, 3), np.uint8)
        rgb[size // 4 : size // 2, size // 4 : size // 2] = (200, 120, 40)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
        for i in range(4):
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_frame_memory_limit_from_the_header(deep_clip: Path) -> None:
    assert deep_clip.stat().st_size < 200_000
    with pytest.raises(TooLarge, match=r"yuv444p10le, 24 MiB each, over the max_frame_bytes limit"):
        open_media(deep_clip, limits=Limits(max_frame_bytes=16 * 1024**2))


def test_bit_depth_limit(deep_clip: Path) -> None:
    with pytest.raises(
        TooLarge, match=r"10-bit \(yuv444p10le\), over the max_bit_depth limit of 8"
    ):
        open_media(deep_clip, limits=Limits(max_bit_depth=8))


def test_pixel_limit_is_checked_before_decoding(deep_clip: Path) -> None:
    with pytest.raises(TooLarge, match="2048x2048 pixels, over the max_pixels limit"):
        open_media(deep_clip, limits=Limits(max_pixels=2048 * 2047))


def test_frames_are_scaled_down_while_decoding(deep_clip: Path) -> None:
    info, frames = open_media(deep_clip, limits=Limits(decode_max_side=256))
    got = list(frames)
    assert (info.width, info.height) == (2048, 2048)  # the input's own size
    assert info.frame_scale == pytest.approx(0.125)
    assert [f.image.shape for f in got] == [(256, 256, 3)] * 4
    # the orange square, averaged down, is where it was
    assert tuple(got[0].image[96, 96]) == pytest.approx((200, 120, 40), abs=12)
    extra = read_frames_at(deep_clip, [0.4], Limits(decode_max_side=256))
    assert [f.image.shape for f in extra] == [(256, 256, 3)]


def test_scan_abstains_too_large_with_the_limit_in_the_reason(deep_clip: Path) -> None:
    verdict = Scanner(ScanConfig(max_frame_bytes=16 * 1024**2)).scan(deep_clip)
    assert verdict.status is Status.TOO_LARGE
    assert "max_frame_bytes limit of 16 MiB" in verdict.reason


def test_boxes_stay_in_input_pixels_when_frames_are_scaled(
    tmp_path: Path, example_face: npt.NDArray[np.uint8]
) -> None:
    clip = make_clip(
        tmp_path / "big.mp4",
        width=640,
        height=480,
        seconds=1.0,
        fps=10,
        face=example_face,
        face_height=300,
    )
    full = Scanner(ScanConfig(num_frames=3)).scan(clip)
    half = Scanner(ScanConfig(num_frames=3, decode_max_side=320)).scan(clip)
    assert full.status is Status.OK and half.status is Status.OK, half.reason
    assert half.media is not None and half.media.frame_scale == pytest.approx(0.5)
    assert (half.media.width, half.media.height) == (640, 480)
    a, b = full.tracks[0].frames[0], half.tracks[0].frames[0]
    assert a.frame_index == b.frame_index
    assert np.allclose(a.box, b.box, atol=16), (a.box, b.box)


def test_config_validates_the_new_limits() -> None:
    for bad in (
        {"max_aspect_ratio": 0.5},
        {"max_bit_depth": 4},
        {"max_frame_bytes": 0},
        {"decode_max_side": 8},
    ):
        with pytest.raises(ValueError):
            ScanConfig(**bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            Limits(**bad)  # type: ignore[arg-type]


# -- 4. special files and empty folders ---------------------------------------------------


@pytest.fixture
def special_dir(tmp_path: Path, face_image: Path, example_face: npt.NDArray[np.uint8]) -> Path:
    root = tmp_path / "special"
    root.mkdir()
    (root / "a.jpg").write_bytes(face_image.read_bytes())
    write_image(root / "b.png", example_face, ".png")
    os.mkfifo(root / "fifo.mp4")
    os.symlink("/dev/zero", root / "zero.mp4")
    os.symlink(root / "nowhere.mp4", root / "dangling.mp4")
    os.symlink(root / "loop_b", root / "loop_a")
    os.symlink(root / "loop_a", root / "loop_b")
    (root / "empty").mkdir()
    (root / "empty" / ".hidden").write_bytes(b"x")
    return root


def test_special_files_get_their_own_verdict(special_dir: Path) -> None:
    names = ["a.jpg", "fifo.mp4", "zero.mp4", "dangling.mp4", "loop_a", "empty", "b.png"]
    proc = _cli("scan", "--json", "--frames", "2", *(str(special_dir / n) for n in names))
    assert proc.returncode == 0, proc.stderr
    objs = _lines(proc)
    assert [Path(o["path"]).name for o in objs] == names
    got = {Path(o["path"]).name: (o["status"], o["reason"]) for o in objs}
    assert got["a.jpg"][0] == "ok" and got["b.png"][0] == "ok"
    assert got["fifo.mp4"] == ("unsupported", "is a FIFO / named pipe, not a regular file")
    assert got["zero.mp4"][0] == "unsupported"
    assert got["zero.mp4"][1].startswith("is a character device")
    assert got["dangling.mp4"][0] == "unsupported"
    assert got["dangling.mp4"][1].startswith("dangling symbolic link")
    assert got["loop_a"][0] == "unsupported" and "symbolic link loop" in got["loop_a"][1]
    assert got["empty"][0] == "unsupported"
    assert got["empty"][1].startswith("folder contains no files to scan")
    assert proc.stderr == b""


def test_a_folder_walk_reports_special_entries(special_dir: Path) -> None:
    found = {p.name for p in expand_inputs([str(special_dir)])}
    assert {"a.jpg", "b.png", "fifo.mp4", "zero.mp4", "dangling.mp4", "loop_a"} <= found
    assert expand_inputs([str(special_dir / "empty")]) == [special_dir / "empty"]
    with pytest.raises(InputError, match="no such file or directory"):
        expand_inputs([str(special_dir / "missing.mp4")])


def test_reading_a_fifo_never_blocks(special_dir: Path) -> None:
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            read_head(special_dir / "fifo.mp4")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "read_head blocked on a FIFO"
    assert len(outcome) == 1 and isinstance(outcome[0], UnsupportedMedia)
    assert "FIFO" in str(outcome[0])


# -- 5. reasons that say "truncated or corrupt" -------------------------------------------


@pytest.mark.parametrize("data", [b"\x80", b"\x80\x01", b"\x80\x01\xfe", b"\x1a\x45"])
def test_a_few_binary_bytes_are_truncated_not_text(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "tiny.mp4"
    path.write_bytes(data)
    with pytest.raises(DecodeError, match="truncated or corrupt") as info:
        sniff(path)
    assert "text" not in str(info.value)


def _moov_span(data: bytes) -> tuple[int, int]:
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"moov":
            return pos, size
        pos += size
    raise AssertionError("no moov box")


@pytest.fixture(scope="module")
def mov_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mov") / "clip.mov"
    return make_clip(path, width=160, height=120, seconds=2.0, fps=10)


def test_a_mov_cut_short_is_truncated(mov_clip: Path, tmp_path: Path) -> None:
    data = mov_clip.read_bytes()
    start, size = _moov_span(data)
    assert start + size == len(data)  # the header is written last, so a cut hits it
    # (cut in the last few bytes of the header, every frame still decodes: that is a scan)
    inside = [start + k for k in (9, 40, 120, 300, 600, 900) if k < size - 40]
    cuts = [int(len(data) * 0.99), *inside]
    for cut in sorted(set(cuts)):
        path = tmp_path / f"cut{cut}.mov"
        path.write_bytes(data[:cut])
        with pytest.raises(DecodeError) as info:
            list(open_media(path)[1])
        reason = str(info.value)
        assert reason.startswith("truncated or corrupt video"), (cut, reason)
        assert f"ends at byte {cut}" in reason and "has no video stream" not in reason


def test_an_mkv_cut_at_64_bytes_is_truncated(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mkv", width=160, height=120, seconds=1.0, fps=10)
    path = tmp_path / "cut.mkv"
    path.write_bytes(clip.read_bytes()[:64])
    with pytest.raises(DecodeError, match="truncated or corrupt video: the file ends at byte 64"):
        open_media(path)


# -- 6. names that start with a dash ------------------------------------------------------


def test_dash_names_after_double_dash_or_with_their_folder(
    tmp_path: Path, face_image: Path
) -> None:
    for name in ("-h.jpg", "-x.jpg"):
        (tmp_path / name).write_bytes(face_image.read_bytes())
    proc = _cli("scan", "--json", "./-x.jpg", "--", "-h.jpg", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [(o["path"], o["status"]) for o in _lines(proc)] == [("-x.jpg", "ok"), ("-h.jpg", "ok")]
    wrong = _cli("scan", "-h.jpg", cwd=tmp_path)
    assert wrong.returncode == 2
    assert b"fakescope scan -- -h.jpg" in wrong.stderr  # the hint says how
    helped = _cli("scan", "--help")
    assert b"fakescope scan -- -h.jpg" in helped.stdout
    assert "fakescope scan -- " in README.read_text()


# -- 7. file names that are not UTF-8 -----------------------------------------------------


def test_non_utf8_names_give_valid_utf8_json(tmp_path: Path, face_image: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.jpg"
    try:
        with open(raw, "wb") as fh:
            fh.write(face_image.read_bytes())
    except OSError as exc:  # pragma: no cover - a file system that refuses such names
        pytest.skip(f"cannot create a non-UTF-8 file name here: {exc}")
    proc = _cli("scan", "--json", os.fsdecode(raw))
    assert proc.returncode == 0, proc.stderr
    (obj,) = _lines(proc)
    json.dumps(obj, ensure_ascii=False).encode("utf-8")  # strict: no lone surrogates
    assert obj["path"].encode("utf-8").endswith("caf\ufffd.jpg".encode())
    assert bytes.fromhex(obj["path_bytes_hex"]) == raw
    assert obj["status"] == "ok"
    table = _cli("scan", os.fsdecode(raw))
    assert table.returncode == 0 and "caf\ufffd.jpg".encode() in table.stdout


def test_utf8_names_have_no_bytes_field() -> None:
    obj = Verdict("été/clip.mp4", Status.NO_FACE, "no face").to_dict()
    assert obj["path"] == "été/clip.mp4" and "path_bytes_hex" not in obj


# -- 8. stderr stays fakescope's own ------------------------------------------------------


def test_library_noise_stays_off_stderr(tmp_path: Path, face_clip: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for ext in (".png", ".jpg"):
        ok, buf = cv2.imencode(ext, image)
        assert ok
        data = buf.tobytes()
        (tmp_path / f"half{ext}").write_bytes(data[: len(data) // 2])
        if ext == ".jpg":  # decodes, with a libjpeg warning about the extra bytes
            (tmp_path / "extra.jpg").write_bytes(data[:-2] + b"\x00\x11\x22" + data[-2:])
    clip = face_clip.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(clip[: len(clip) // 2])
    names = ["half.png", "half.jpg", "extra.jpg", "cut.mp4"]
    proc = _cli("scan", "--json", "--frames", "2", *(str(tmp_path / n) for n in names))
    assert proc.returncode == 0
    statuses = [o["status"] for o in _lines(proc)]
    assert statuses[:2] == ["undecodable", "undecodable"] and len(statuses) == 4
    err = proc.stderr.decode("utf-8", "replace")
    for noise in ("libpng", "JPEG", "imdecode", "[ERROR", "WARN", "@ 0x"):
        assert noise not in err, err
    assert err == ""

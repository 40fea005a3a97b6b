"""Tests of the ingest stage, fakescope.io (tiny media made on the fly)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from conftest import CLIP_SIZE, png_claiming, write_image
from fakescope.errors import (
    ConfigError,
    DecodeError,
    FakescopeError,
    InputError,
    TooLarge,
    UnsupportedMedia,
)
from fakescope.io import Limits, Sampling, expand_inputs, make_clip, open_media, sniff
from fakescope.io._image import image_dimensions
from fakescope.io._video import _sample_by_count, plan_indices, quarter_turns, rotate_upright


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny clip per container/codec, each under a misleading ``.dat`` name."""
    root = tmp_path_factory.mktemp("zoo")
    specs = {
        "mp4": ("x.mp4", "libx264"),
        "mov": ("x.mov", "libx264"),
        "mkv": ("x.mkv", "libx264"),
        "webm": ("x.webm", "libvpx-vp9"),
        "avi": ("x.avi", "mpeg4"),
        "hevc": ("h.mp4", "libx265"),
    }
    out = {}
    for key, (name, codec) in specs.items():
        clip = make_clip(root / name, width=160, height=120, seconds=1.0, fps=10, codec=codec)
        out[key] = clip.rename(root / f"{key}.dat")
    return out


@pytest.fixture(scope="module")
def clip60(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames: 2 s at 30 fps."""
    path = tmp_path_factory.mktemp("c60") / "c60.mp4"
    return make_clip(path, width=160, height=120, seconds=2.0, fps=30)


def _rgb(h: int = 40, w: int = 60) -> npt.NDArray[np.uint8]:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = 255  # pure red, to check the channel order
    return img


# -- sniff -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "fmt"), [(".jpg", "jpeg"), (".png", "png"), (".webp", "webp"), (".bmp", "bmp")]
)
def test_sniff_images_ignore_extension(tmp_path: Path, ext: str, fmt: str) -> None:
    path = write_image(tmp_path / "misnamed.mp4", _rgb(), ext)
    assert sniff(path) == ("image", fmt)


@pytest.mark.parametrize("fmt", ["mp4", "mov", "mkv", "webm", "avi"])
def test_sniff_videos_ignore_extension(zoo: dict[str, Path], fmt: str) -> None:
    assert sniff(zoo[fmt]) == ("video", fmt)


def test_sniff_jpeg_named_mp4(face_image: Path, tmp_path: Path) -> None:
    path = tmp_path / "photo.mp4"
    path.write_bytes(face_image.read_bytes())
    assert sniff(path) == ("image", "jpeg")


def test_text_renamed_mp4_is_unsupported(hostile_dir: Path) -> None:
    with pytest.raises(UnsupportedMedia, match="looks like text"):
        sniff(hostile_dir / "text.mp4")
    with pytest.raises(UnsupportedMedia):
        open_media(hostile_dir / "text.mp4")


@pytest.mark.parametrize(
    "head",
    [b"GIF89a\x01\x00", b"%PDF-1.7\n", b"\x00\x01\x02\x03\xff\xfe\xfd" * 4, b"BM not a bitmap"],
)
def test_sniff_other_content_is_unsupported(tmp_path: Path, head: bytes) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(head)
    with pytest.raises(UnsupportedMedia, match="content is not a video or image"):
        sniff(path)


def test_empty_file_is_decode_error(hostile_dir: Path) -> None:
    with pytest.raises(DecodeError, match="empty file"):
        sniff(hostile_dir / "empty.mp4")
    with pytest.raises(DecodeError, match="empty file"):
        open_media(hostile_dir / "empty.mp4")


# -- limits and errors -------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_media(tmp_path / "nope.mp4")


def test_truncated_mp4_is_decode_error_or_short(hostile_dir: Path) -> None:
    try:
        _, frames = open_media(hostile_dir / "truncated.mp4", Sampling(num_frames=30))
        got = list(frames)
    except DecodeError:
        return
    assert len(got) < 30


def test_png_claiming_huge_size_is_too_large(hostile_dir: Path) -> None:
    assert image_dimensions(hostile_dir / "huge.png", "png") == (100_000, 100_000)
    with pytest.raises(TooLarge, match="max_pixels"):
        open_media(hostile_dir / "huge.png")


def test_png_just_over_default_pixel_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(png_claiming(8193, 8192))
    with pytest.raises(TooLarge, match="8193x8192"):
        open_media(path)


def test_hostile_dir_only_raises_fakescope_errors(hostile_dir: Path) -> None:
    outcomes: dict[str, tuple[str, str | int]] = {}
    for path in expand_inputs([str(hostile_dir)]):
        try:
            info, frames = open_media(path)
            outcomes[path.name] = (info.kind, len(list(frames)))
        except FakescopeError as exc:
            outcomes[path.name] = (type(exc).__name__, exc.status.value)
    assert outcomes["valid.jpg"] == ("image", 1)
    assert outcomes["empty.mp4"] == ("DecodeError", "undecodable")
    assert outcomes["text.mp4"] == ("UnsupportedMedia", "unsupported")
    assert outcomes["huge.png"] == ("TooLarge", "too_large")


def test_limits(face_clip: Path, face_image: Path) -> None:
    with pytest.raises(TooLarge, match="max_bytes"):
        open_media(face_clip, limits=Limits(max_bytes=100))
    with pytest.raises(TooLarge, match="max_duration_s"):
        open_media(face_clip, limits=Limits(max_duration_s=1.0))
    with pytest.raises(TooLarge, match="max_pixels"):
        open_media(face_clip, limits=Limits(max_pixels=320 * 239))
    with pytest.raises(TooLarge, match="max_pixels"):
        open_media(face_image, limits=Limits(max_pixels=100))


@pytest.mark.parametrize(
    "kwargs", [{"num_frames": 0}, {"num_frames": -3}, {"fps": 0.0}, {"fps": -1.0}]
)
def test_sampling_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Sampling(**kwargs)


def test_limits_validation() -> None:
    with pytest.raises(ConfigError):
        Limits(max_pixels=0)


# -- images ------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp"])
def test_image_header_dimensions_and_decode(tmp_path: Path, ext: str) -> None:
    path = write_image(tmp_path / "img.bin", _rgb(37, 53), ext)
    fmt = sniff(path)[1]
    assert image_dimensions(path, fmt) == (53, 37)
    info, frames = open_media(path)
    (frame,) = list(frames)
    assert (info.kind, info.width, info.height) == ("image", 53, 37)
    assert (frame.index, frame.time_s, frame.image.shape) == (0, 0.0, (37, 53, 3))
    assert frame.image.dtype == np.uint8
    assert frame.image[..., 0].mean() > 200 and frame.image[..., 2].mean() < 50  # RGB order


def test_lossy_webp_header(tmp_path: Path) -> None:
    import cv2

    ok, buf = cv2.imencode(".webp", _rgb(37, 53), [cv2.IMWRITE_WEBP_QUALITY, 80])
    assert ok
    path = tmp_path / "lossy.webp"
    path.write_bytes(buf.tobytes())
    assert path.read_bytes()[12:16] == b"VP8 "
    assert image_dimensions(path, "webp") == (53, 37)


def test_face_image(face_image: Path, example_face: npt.NDArray[np.uint8]) -> None:
    info, frames = open_media(face_image)
    (frame,) = list(frames)
    assert frame.image.shape == example_face.shape
    assert (info.width, info.height) == (example_face.shape[1], example_face.shape[0])


# -- videos ------------------------------------------------------------------------------


def test_face_clip_info(face_clip: Path) -> None:
    info, frames = open_media(face_clip)
    got = list(frames)
    assert (info.kind, info.format, info.codec) == ("video", "mp4", "h264")
    assert (info.width, info.height) == CLIP_SIZE
    assert info.frame_count == 30 and info.fps == pytest.approx(15.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert info.rotation == 0
    assert [f.index for f in got] == list(range(30))  # fewer frames than asked: all of them
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in got)
    assert got[3].time_s == pytest.approx(3 / 15)


def test_clip_has_motion(face_clip: Path) -> None:
    _, frames = open_media(face_clip, Sampling(num_frames=2))
    first, last = list(frames)
    assert np.abs(first.image.astype(int) - last.image.astype(int)).mean() > 5


def test_num_frames_spread_over_clip(clip60: Path) -> None:
    _, frames = open_media(clip60, Sampling(num_frames=8))
    indices = [f.index for f in frames]
    assert len(indices) == 8
    assert all(a < b for a, b in itertools.pairwise(indices))
    assert indices[0] < 8 and indices[-1] > 50


def test_fps_sampling(face_clip: Path) -> None:
    _, frames = open_media(face_clip, Sampling(fps=5.0))
    got = list(frames)
    assert 9 <= len(got) <= 11  # 2 s x 5 fps
    gaps = np.diff([f.time_s for f in got])
    assert np.allclose(gaps, 0.2, atol=0.07)


@pytest.mark.parametrize(("key", "codec"), [("webm", "vp9"), ("hevc", "hevc"), ("avi", "mpeg4")])
def test_other_codecs_decode(zoo: dict[str, Path], key: str, codec: str) -> None:
    info, frames = open_media(zoo[key], Sampling(num_frames=4))
    got = list(frames)
    assert info.codec == codec
    assert len(got) == 4
    assert got[0].image.shape == (120, 160, 3)


def test_frames_iterator_is_lazy_and_closable(clip60: Path) -> None:
    _, frames = open_media(clip60, Sampling(num_frames=8))
    assert isinstance(frames, Iterator)
    assert next(frames).index == 0
    frames.close()  # type: ignore[attr-defined]


def _write_raw_clip(
    path: Path, pts_ms: list[int], *, rotation: int = 0, size: tuple[int, int] = (64, 48)
) -> Path:
    """An H.264 mp4 whose frames carry ``pts_ms`` (ms); a white bar marks the left edge."""
    w, h = size
    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        img = np.zeros((h, w, 3), np.uint8)
        img[:, :8] = 255
        for pts in pts_ms:
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = pts
            frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_variable_frame_rate_times_from_pts(tmp_path: Path) -> None:
    pts = [0, 20, 50, 200, 210, 600, 650, 1000, 1500, 1510]
    path = _write_raw_clip(tmp_path / "vfr.mp4", pts)
    _, frames = open_media(path, Sampling(num_frames=32))
    got = list(frames)
    assert [f.index for f in got] == list(range(len(pts)))
    assert [f.time_s for f in got] == pytest.approx([p / 1000 for p in pts], abs=1e-3)
    _, frames = open_media(path, Sampling(fps=2.0))  # ticks at 0, 0.5, 1.0, 1.5 s
    assert [f.index for f in frames] == [0, 5, 7, 8]


def test_rotation_metadata_gives_upright_frames(tmp_path: Path) -> None:
    # Display matrix: rotate 90 degrees counter-clockwise (PyAV's convention), so the
    # white bar on the coded frame's left edge ends up along the bottom.
    path = _write_raw_clip(tmp_path / "rot.mp4", [0, 33, 66], rotation=90)
    info, frames = open_media(path)
    (first, *_) = list(frames)
    assert info.rotation == 270  # recorded as clockwise degrees, like the legacy rotate tag
    assert (info.width, info.height) == (48, 64)
    assert first.image.shape == (64, 48, 3)
    assert first.image[-4:].mean() > 200  # bottom rows white
    assert first.image[:8].mean() < 50


def test_rotation_helpers() -> None:
    assert [quarter_turns(r) for r in (0, 90, -90, 180, -180, 89.6)] == [0, 1, 3, 2, 2, 1]
    img = np.arange(6, dtype=np.uint8).reshape(2, 3, 1).repeat(3, axis=2)
    assert rotate_upright(img, 0) is img
    turned = rotate_upright(img, 1)
    assert turned.shape == (3, 2, 3) and turned.flags["C_CONTIGUOUS"]
    assert turned[0, :, 0].tolist() == [2, 5]  # right column becomes the top row


def test_plan_indices() -> None:
    assert plan_indices(5, 8) == [0, 1, 2, 3, 4]
    assert plan_indices(60, 1) == [0]
    picked = plan_indices(1000, 32)
    assert len(picked) == 32 and picked[0] == 0 and picked[-1] == 999


@pytest.mark.parametrize(("actual", "estimate"), [(50, 60), (40, 20), (60, 60), (3, 60)])
def test_sample_by_count_survives_wrong_estimates(actual: int, estimate: int) -> None:
    source = ((i, object()) for i in range(actual))
    kept = [i for i, _ in _sample_by_count(source, 8, estimate)]
    assert len(kept) == min(8, actual)
    assert kept == sorted(set(kept)) and kept[0] == 0


def _ramp_level(index: int) -> int:
    return 2 + 4 * index


def _ramp_index(image: npt.NDArray[np.uint8]) -> int:
    """The index a frame of :func:`_write_ramp_clip` encodes in its grey level."""
    return round((float(image.mean()) - 2) / 4)


def _write_ramp_clip(
    path: Path,
    count: int,
    fmt: str,
    *,
    options: dict[str, str] | None = None,
    first_pts: int = 0,
) -> Path:
    """``count`` flat grey H.264 frames at 30 fps (pts ``first_pts + i``, time base 1/30)
    whose grey level is ``2 + 4 * index``, so a decoded frame tells which one it is."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream: Any = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(count):
            img = np.full((48, 64, 3), _ramp_level(i), np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = first_pts + i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _unknown_length_mkv(path: Path, count: int) -> Path:
    """A live-mode Matroska file: no frame count and no duration anywhere."""
    _write_ramp_clip(path, count, "matroska", options={"live": "1"})
    with av.open(str(path)) as container:  # the premise of the tests that use it
        stream = container.streams.video[0]
        assert not stream.frames and stream.duration is None and container.duration is None
    return path


def test_unknown_length_frames_spread_by_packet_count(tmp_path: Path) -> None:
    path = _unknown_length_mkv(tmp_path / "live.mkv", 60)
    info, frames = open_media(path, Sampling(num_frames=8))
    assert info.frame_count is None and info.duration_s is None
    got = list(frames)
    assert [f.index for f in got] == plan_indices(60, 8)
    assert [_ramp_index(f.image) for f in got] == plan_indices(60, 8)
    assert [f.time_s for f in got] == pytest.approx([i / 30 for i in plan_indices(60, 8)], abs=1e-3)


def test_unknown_length_with_corrupt_tail(tmp_path: Path) -> None:
    path = _unknown_length_mkv(tmp_path / "live.mkv", 60)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)] + b"\xde\xad" * 300)
    _, frames = open_media(path, Sampling(num_frames=1000))
    decodable = len(list(frames))  # the frames before the damage
    assert decodable > 12
    _, frames = open_media(path, Sampling(num_frames=8))
    got = list(frames)
    assert [f.index for f in got] == plan_indices(decodable, 8)  # spread, not the first 8
    # (the last decodable frame may be damaged, so only the others are checked by content)
    assert [_ramp_index(f.image) for f in got[:-1]] == plan_indices(decodable, 8)[:-1]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_unknown_length_closes_every_handle(tmp_path: Path) -> None:
    path = _unknown_length_mkv(tmp_path / "live.mkv", 60)

    def handles() -> int:
        fds = Path("/proc/self/fd")
        targets = []
        for fd in fds.iterdir():
            try:
                targets.append(os.readlink(fd))
            except OSError:
                continue
        return targets.count(str(path))

    _, frames = open_media(path, Sampling(num_frames=8))
    assert handles() == 1  # the decoding handle; the counting pass has closed its own
    assert len(list(frames)) == 8
    assert handles() == 0
    _, frames = open_media(path, Sampling(num_frames=8))
    next(frames)
    frames.close()  # type: ignore[attr-defined]
    assert handles() == 0


@pytest.mark.parametrize(
    ("name", "fmt", "options"),
    [("late.mp4", "mp4", None), ("late.mkv", "matroska", {"live": "1"})],
)
def test_times_count_from_stream_start(
    tmp_path: Path, name: str, fmt: str, options: dict[str, str] | None
) -> None:
    # The stream starts at 5 s (like ffmpeg -output_ts_offset 5, or MPEG-TS at ~1.4 s).
    path = _write_ramp_clip(tmp_path / name, 30, fmt, options=options, first_pts=150)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert float(stream.start_time * stream.time_base) == pytest.approx(5.0)
    _, frames = open_media(path, Sampling(num_frames=32))
    got = list(frames)
    assert [f.index for f in got] == list(range(30))
    assert [f.time_s for f in got] == pytest.approx([i / 30 for i in range(30)], abs=1e-3)
    _, frames = open_media(path, Sampling(fps=10.0))
    got = list(frames)
    assert [f.index for f in got] == list(range(0, 30, 3))
    assert [f.time_s for f in got] == pytest.approx([i / 10 for i in range(10)], abs=1e-3)


# -- expand_inputs -----------------------------------------------------------------------


def test_expand_inputs(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / ".hidden_dir").mkdir()
    for name in ["d/b.mp4", "d/a.txt", "d/sub/c.jpg", "d/.hidden", "d/.hidden_dir/x.mp4"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "top.mp4").write_bytes(b"x")
    d = tmp_path / "d"
    got = expand_inputs([str(d), str(tmp_path / "*.mp4"), str(d / "b.mp4")])
    # a.txt is text under a text name: a folder scan leaves it out (named, it is scanned)
    assert got == [d / "b.mp4", d / "sub" / "c.jpg", tmp_path / "top.mp4"]
    assert expand_inputs([str(d / "a.txt")]) == [d / "a.txt"]
    recursive = expand_inputs([str(tmp_path / "**" / "*.jpg")])
    assert recursive == [d / "sub" / "c.jpg"]
    with pytest.raises(InputError, match="no such file or directory"):
        expand_inputs([str(tmp_path / "missing.mp4")])
    with pytest.raises(InputError, match="no such file or directory"):
        expand_inputs([str(tmp_path / "*.nothing")])


def test_expand_inputs_dedupes_relative_and_absolute(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"x")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert expand_inputs(["a.mp4", str(tmp_path / "a.mp4"), "./a.mp4"]) == [Path("a.mp4")]
    finally:
        os.chdir(cwd)


def test_make_clip_validates(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make_clip(tmp_path / "x.gif", width=64, height=48, seconds=0.1)
    with pytest.raises(ConfigError):
        make_clip(tmp_path / "x.mp4", width=65, height=48, seconds=0.1)
    with pytest.raises(ConfigError):
        make_clip(tmp_path / "x.webm", width=64, height=48, seconds=0.1, codec="libx264")

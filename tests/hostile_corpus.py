"""Test helper: a corpus of hostile and odd inputs, built on the fly from small valid media.

``build_corpus(root, clip, image)`` writes every case under ``root`` and returns them. Each
case is one path that ``fakescope scan`` must answer with exactly one verdict: never a
traceback, never the generic ``error`` status, and no score unless the input was usable.
Cases come in families (truncated, byte-flipped, polyglot, bombs, odd containers and codecs,
odd images, odd names, special files); ``SEEDS`` saves inputs that once broke the ingest (the
fuzz test in ``test_fuzz_ingest.py`` appends there when it finds one).
"""

from __future__ import annotations

import os
import random
import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

# Inputs the fuzz test found breaking the ingest are saved here (commit them); each is a case.
FOUND_DIR = Path(__file__).resolve().parent / "hostile_found"

# Inputs that once crashed or mis-reported (hex of the bytes, suffix); replayed by the corpus.
SEEDS: list[tuple[str, str]] = [
    ("00", ".jpg"),  # 1 binary byte: once reported as "looks like text"
    ("ffd8ff", ".jpg"),  # a JPEG signature and nothing else
    ("89504e470d0a1a0a", ".png"),  # a PNG signature and nothing else
    ("1a45dfa3", ".mkv"),  # an EBML (Matroska) signature and nothing else
]


@dataclass(frozen=True)
class Case:
    """One hostile input: ``arg`` is what goes on the command line (relative paths start
    with ``./`` so a name with a leading dash is not read as an option)."""

    family: str
    path: Path

    @property
    def arg(self) -> str:
        return str(self.path)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return struct.pack(">I", len(data)) + kind + data + crc


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG of ``width`` x ``height`` black grey pixels whose IDAT is tiny (a
    decompression bomb: a few KB on disk, ``width * height`` bytes decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * width
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def _encode(ext: str, rgb: npt.NDArray[np.uint8], params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params or [])
    assert ok, ext
    return bytes(buf.tobytes())


def _write_video(
    path: Path,
    frames: list[npt.NDArray[np.uint8]],
    *,
    fmt: str,
    codec: str,
    pix_fmt: str = "yuv420p",
    fps: int = 10,
    options: dict[str, str] | None = None,
) -> Path:
    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if options:
            stream.codec_context.options = options
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = np.zeros((1, 1024), np.float32)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _flip(data: bytes, rng: random.Random, count: int, start: int = 0) -> bytes:
    out = bytearray(data)
    for _ in range(count):
        i = rng.randrange(start, len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def build_corpus(root: Path, clip: Path, image: Path) -> list[Case]:
    """Write every hostile case under ``root`` (made fresh) and return them in a fixed order.

    ``clip`` is a small valid H.264 mp4 with a face, ``image`` a valid JPEG with a face.
    """
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    rng = random.Random(0)
    video = clip.read_bytes()
    jpeg = image.read_bytes()
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), 4)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    png = _encode(".png", rgb)

    def add(family: str, name: str, data: bytes) -> None:
        path = root / name
        path.write_bytes(data)
        cases.append(Case(family, path))

    # truncated: at several fractions of each valid file, and at a few bytes
    for frac in (0.01, 0.1, 0.5, 0.9, 0.99):
        add("truncated", f"cut{int(frac * 100):02d}.mp4", video[: int(len(video) * frac)])
        add("truncated", f"cut{int(frac * 100):02d}.jpg", jpeg[: int(len(jpeg) * frac)])
        add("truncated", f"cut{int(frac * 100):02d}.png", png[: int(len(png) * frac)])
    for n in (1, 2, 3, 16, 64):
        add("truncated", f"head{n}.mp4", video[:n])
    # byte-flipped: in the header, and spread over the whole file
    for k in range(4):
        add("flipped", f"hdrflip{k}.mp4", _flip(video[:64], rng, 2) + video[64:])
        add("flipped", f"flip{k}.mp4", _flip(video, rng, 64))
        add("flipped", f"flip{k}.jpg", _flip(jpeg, rng, 16))
        add("flipped", f"flip{k}.png", _flip(png, rng, 16))
    # polyglots and mislabelled content
    add("polyglot", "jpg_then_zip.jpg", jpeg + b"PK\x03\x04" + os.urandom(256))
    add("polyglot", "png_then_mp4.png", png + video)
    add("polyglot", "mp4_named.jpg", video)
    add("polyglot", "jpg_named.mp4", jpeg)
    add("polyglot", "html.jpg", b"<!doctype html><html><body>hi</body></html>\n" * 10)
    add("polyglot", "zeros.mp4", b"\x00" * 4096)
    add("polyglot", "random.mov", random.Random(1).randbytes(8192))
    add("polyglot", "pdf.png", b"%PDF-1.4\n" + random.Random(2).randbytes(512))
    # bombs: small files that claim or decode to huge images
    add("bomb", "bomb_20k.png", png_bomb(20_000, 20_000))
    add("bomb", "bomb_wide.png", png_bomb(65_535, 1))
    add("bomb", "bomb_tall.png", png_bomb(1, 20_000))
    # odd images
    add("image", "tiny_1x1.png", _encode(".png", np.zeros((1, 1, 3), np.uint8)))
    add("image", "wide_2000x1.png", _encode(".png", np.zeros((1, 2000, 3), np.uint8)))
    add("image", "tall_1x2000.png", _encode(".png", np.zeros((2000, 1, 3), np.uint8)))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    _, buf = cv2.imencode(".png", gray)
    add("image", "gray.png", bytes(buf.tobytes()))
    _, buf = cv2.imencode(".png", (rgb.astype(np.uint16) * 257)[..., ::-1].copy())
    add("image", "deep16.png", bytes(buf.tobytes()))
    rgba = np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 128, np.uint8)])
    _, buf = cv2.imencode(".png", rgba)
    add("image", "alpha.png", bytes(buf.tobytes()))
    add("image", "q1.jpg", _encode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 1]))
    add("image", "progressive.jpg", _encode(".jpg", rgb, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]))
    add("image", "face.webp", _encode(".webp", rgb))
    add("image", "face.bmp", _encode(".bmp", rgb))
    # odd containers and codecs
    small = [cv2.resize(rgb, (160, 120)) for _ in range(10)]
    for name, fmt, codec, pix in (
        ("vp8.webm", "webm", "libvpx", "yuv420p"),
        ("mjpeg.avi", "avi", "mjpeg", "yuvj420p"),
        ("mpeg4.mkv", "matroska", "mpeg4", "yuv420p"),
        ("h265.mp4", "mp4", "libx265", "yuv420p"),
        ("ffv1.mkv", "matroska", "ffv1", "yuv420p"),
        ("anim.gif", "gif", "gif", "rgb8"),
        ("one_frame.mov", "mov", "libx264", "yuv420p"),
        ("yuv444p10.mp4", "mp4", "libx264", "yuv444p10le"),
    ):
        frames = small[:1] if name.startswith("one_frame") else small
        path = root / name
        quiet = {"x265-params": "log-level=none"} if codec == "libx265" else None
        _write_video(path, frames, fmt=fmt, codec=codec, pix_fmt=pix, options=quiet)
        cases.append(Case("container", path))
    # a huge frame in a tiny file: 8192x8192 10-bit 4:4:4, 2 black frames
    black = [np.zeros((8192, 8192, 3), np.uint8)] * 2
    path = root / "huge_444p10.mp4"
    _write_video(
        path,
        black,
        fmt="mp4",
        codec="libx264",
        pix_fmt="yuv444p10le",
        options={"preset": "ultrafast"},
    )
    cases.append(Case("container", path))
    # a valid clip whose title tag is Latin-1, not UTF-8
    tagged = root / "latin1_title.mp4"
    with av.open(str(clip)) as src, av.open(str(tagged), "w", format="mp4") as dst:
        dst.metadata["title"] = "cafX"
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    data = tagged.read_bytes()
    assert data.count(b"cafX") == 1
    tagged.write_bytes(data.replace(b"cafX", b"caf\xe9"))
    cases.append(Case("container", tagged))
    cases.append(Case("container", _audio_only(root / "audio_only.mp4")))
    # odd names (the content is the valid clip or photo)
    for name in (
        "-h.jpg",
        "--json.jpg",
        "sp ace.jpg",
        "new\nline.jpg",
        "ünï €.jpg",
        "a;rm -rf x.jpg",
    ):
        add("name", name, jpeg)
    raw = os.fsencode(root) + b"/caf\xe9.jpg"
    with open(raw, "wb") as f:
        f.write(jpeg)
    cases.append(Case("name", Path(os.fsdecode(raw))))
    # special files: never opened for reading before their type is checked
    fifo = root / "fifo.mp4"
    os.mkfifo(fifo)
    cases.append(Case("special", fifo))
    for name, target in (
        ("zero.mp4", "/dev/zero"),
        ("dangling.jpg", str(root / "does-not-exist.jpg")),
        ("loop.mp4", str(root / "loop.mp4")),
    ):
        (root / name).symlink_to(target)
        cases.append(Case("special", root / name))
    # once-broken inputs
    for i, (hexdata, suffix) in enumerate(SEEDS):
        add("seed", f"seed{i}{suffix}", bytes.fromhex(hexdata))
    for found in sorted(FOUND_DIR.glob("*")) if FOUND_DIR.is_dir() else []:
        if found.is_file() and found.name != "README.md":
            add("seed", f"found_{found.name}", found.read_bytes())
    return cases

"""C2PA content credentials: read_provenance on unsigned, signed, tampered and bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from c2pa_signing import CLAIM_GENERATOR, TestCredentials, make_test_credentials, sign_file
from conftest import write_image
from fakescope.io import Limits
from fakescope.provenance import (
    TRUST_ANCHORS_ENV,
    Provenance,
    ProvenanceStatus,
    read_provenance,
)

c2pa = pytest.importorskip("c2pa")

EXAMPLE_MP4 = Path(__file__).resolve().parents[1] / "examples" / "astronaut.mp4"
NEVER_RAISE = {ProvenanceStatus.ERROR, ProvenanceStatus.ABSENT, ProvenanceStatus.INVALID}


@pytest.fixture(autouse=True)
def _no_env_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRUST_ANCHORS_ENV, raising=False)


@pytest.fixture(scope="module")
def creds() -> TestCredentials:
    return make_test_credentials(organization="Test Org", common_name="fakescope test signer")


@pytest.fixture
def unsigned_jpeg(tmp_path: Path, example_face: npt.NDArray[np.uint8]) -> Path:
    return write_image(tmp_path / "face.jpg", example_face)


@pytest.fixture
def signed_jpeg(tmp_path: Path, unsigned_jpeg: Path, creds: TestCredentials) -> Path:
    return sign_file(unsigned_jpeg, tmp_path / "signed.jpg", creds, title="Signed face")


def _json_roundtrip(prov: Provenance) -> dict[str, object]:
    data = prov.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["status"] == str(prov.status)
    assert prov.reason and prov.reason[0].isupper() and prov.reason.endswith(".")
    return data


def _flip(data: bytes, start: int, stop: int, step: int = 17) -> bytes:
    out = bytearray(data)
    for i in range(start, stop, step):
        out[i] ^= 0x5A
    return bytes(out)


def test_unsigned_jpeg_is_absent(unsigned_jpeg: Path) -> None:
    prov = read_provenance(unsigned_jpeg)
    assert prov.status is ProvenanceStatus.ABSENT
    assert prov.media_type == "image/jpeg"
    assert prov.trusted is None and prov.signer is None and prov.actions == ()
    assert "No C2PA" in _json_roundtrip(prov)["reason"]  # type: ignore[operator]


def test_signed_jpeg_is_valid_and_read_back(signed_jpeg: Path) -> None:
    prov = read_provenance(str(signed_jpeg))
    data = _json_roundtrip(prov)
    assert prov.status is ProvenanceStatus.VALID, prov.reason
    assert prov.signer == "Test Org"
    assert prov.signer_common_name == "fakescope test signer"
    assert prov.claim_generator == CLAIM_GENERATOR
    assert prov.title == "Signed face"
    assert prov.actions == ("c2pa.created",)
    assert prov.digital_source_types == ("digitalCapture",)
    assert not prov.declares_generative_ai
    assert prov.validation_errors == ()
    assert prov.validation_state == "Valid"
    # A self-made certificate validates but is on no trust list.
    assert prov.trusted is False
    assert prov.signed_at is None  # no time-stamp authority offline
    assert data["reason"] == (
        "Signed by Test Org (fakescope test signer) with fakescope-test/1.0; "
        "signature valid; signer not on a trust list (none configured)."
    )


def test_trust_anchors_make_the_signer_trusted(
    signed_jpeg: Path, creds: TestCredentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prov = read_provenance(signed_jpeg, trust_anchors=creds.root_pem)
    assert (prov.status, prov.trusted, prov.validation_state) == (
        ProvenanceStatus.VALID,
        True,
        "Trusted",
    )
    assert "on the configured trust list" in prov.reason

    other = make_test_credentials(organization="Other Org")
    prov = read_provenance(signed_jpeg, trust_anchors=other.root_pem)
    assert (prov.status, prov.trusted) == (ProvenanceStatus.VALID, False)
    assert "not on the configured trust list" in prov.reason

    anchors = tmp_path / "anchors.pem"
    anchors.write_text(creds.root_pem + other.root_pem)
    assert read_provenance(signed_jpeg, trust_anchors=anchors).trusted is True
    monkeypatch.setenv(TRUST_ANCHORS_ENV, str(anchors))
    assert read_provenance(signed_jpeg).trusted is True

    monkeypatch.setenv(TRUST_ANCHORS_ENV, str(tmp_path / "missing.pem"))
    prov = read_provenance(signed_jpeg)
    assert prov.status is ProvenanceStatus.ERROR and "trust anchors" in prov.reason
    bad = "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"
    assert read_provenance(signed_jpeg, trust_anchors=bad).status is ProvenanceStatus.ERROR


def test_flipped_image_bytes_are_invalid(signed_jpeg: Path, tmp_path: Path) -> None:
    data = signed_jpeg.read_bytes()
    tampered = tmp_path / "tampered.jpg"
    # The entropy-coded image data ends just before the EOI marker.
    tampered.write_bytes(_flip(data, len(data) - 1500, len(data) - 500))
    prov = read_provenance(tampered)
    _json_roundtrip(prov)
    assert prov.status is ProvenanceStatus.INVALID, prov.reason
    codes = [e.code for e in prov.validation_errors]
    assert "assertion.dataHash.mismatch" in codes
    assert all(e.explanation for e in prov.validation_errors)
    assert prov.signer == "Test Org"  # still says who claimed it
    assert "validation fails" in prov.reason and "assertion.dataHash.mismatch" in prov.reason


@pytest.mark.parametrize("offset", [40, 100, 200])
def test_damaged_manifest_is_invalid(signed_jpeg: Path, tmp_path: Path, offset: int) -> None:
    data = signed_jpeg.read_bytes()
    at = data.index(b"c2pa.signature") + offset
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(_flip(data, at, at + 1))
    prov = read_provenance(damaged)
    _json_roundtrip(prov)
    assert prov.status is ProvenanceStatus.INVALID, prov.reason
    assert prov.validation_errors


def test_declared_generative_ai(
    unsigned_jpeg: Path, tmp_path: Path, creds: TestCredentials
) -> None:
    signed = sign_file(
        unsigned_jpeg, tmp_path / "ai.jpg", creds, source_type="trainedAlgorithmicMedia"
    )
    prov = read_provenance(signed)
    assert prov.status is ProvenanceStatus.VALID
    assert prov.digital_source_types == ("trainedAlgorithmicMedia",)
    assert prov.declares_generative_ai and _json_roundtrip(prov)["declares_generative_ai"]
    assert "generative-AI" in prov.reason


@pytest.fixture
def signed_mp4(tmp_path: Path, creds: TestCredentials) -> Path:
    if "video/mp4" not in c2pa.Builder.get_supported_mime_types():
        pytest.skip("this c2pa build cannot sign MP4")
    return sign_file(EXAMPLE_MP4, tmp_path / "signed.mp4", creds)


def test_mp4_unsigned_signed_and_tampered(signed_mp4: Path, tmp_path: Path) -> None:
    assert read_provenance(EXAMPLE_MP4).status is ProvenanceStatus.ABSENT

    prov = read_provenance(signed_mp4)
    assert prov.status is ProvenanceStatus.VALID, prov.reason
    assert (prov.media_type, prov.signer, prov.claim_generator) == (
        "video/mp4",
        "Test Org",
        CLAIM_GENERATOR,
    )
    assert prov.actions == ("c2pa.created",) and prov.title == "astronaut.mp4"

    data = signed_mp4.read_bytes()
    mdat = data.index(b"mdat")
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(_flip(data, mdat + 5000, mdat + 6000))
    prov = read_provenance(tampered)
    assert prov.status is ProvenanceStatus.INVALID, prov.reason
    assert any(e.code.endswith("Hash.mismatch") for e in prov.validation_errors)


def _garbage(signed: Path, tmp_path: Path) -> list[Path]:
    data = signed.read_bytes()
    rng = np.random.default_rng(0)
    items = {
        "empty.jpg": b"",
        "jpeg_magic.jpg": b"\xff\xd8\xff" + rng.bytes(4000),
        "truncated_head.jpg": data[:5000],
        "truncated_tail.jpg": data[: len(data) - 3000],
        "tiny.jpg": data[:3],
        "mp4_magic.mp4": b"\x00\x00\x00\x18ftypisom" + rng.bytes(2000),
        "png_magic.png": b"\x89PNG\r\n\x1a\n" + rng.bytes(500),
        "random.bin": rng.bytes(3000),
    }
    paths = []
    for name, content in items.items():
        (tmp_path / name).write_bytes(content)
        paths.append(tmp_path / name)
    return paths


def test_garbage_and_truncated_never_raise(signed_jpeg: Path, tmp_path: Path) -> None:
    for path in _garbage(signed_jpeg, tmp_path):
        prov = read_provenance(path)
        _json_roundtrip(prov)
        allowed = NEVER_RAISE | {ProvenanceStatus.UNAVAILABLE}
        assert prov.status in allowed, (path.name, prov)
    assert read_provenance(tmp_path / "empty.jpg").status is ProvenanceStatus.ERROR
    assert read_provenance(tmp_path / "random.bin").status is ProvenanceStatus.UNAVAILABLE


def test_truncated_signed_mp4_never_raises(signed_mp4: Path, tmp_path: Path) -> None:
    data = signed_mp4.read_bytes()
    for size in (100, 3000, len(data) // 2):
        path = tmp_path / f"cut{size}.mp4"
        path.write_bytes(data[:size])
        prov = read_provenance(path)
        _json_roundtrip(prov)
        assert prov.status in NEVER_RAISE, (size, prov)


def test_unsupported_formats_are_unavailable(
    tmp_path: Path, example_face: npt.NDArray[np.uint8]
) -> None:
    bmp = write_image(tmp_path / "face.bmp", example_face, ext=".bmp")
    prov = read_provenance(bmp)
    assert prov.status is ProvenanceStatus.UNAVAILABLE and "BMP" in prov.reason
    mkv = tmp_path / "clip.mkv"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(60))
    assert read_provenance(mkv).status is ProvenanceStatus.UNAVAILABLE
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all\n")
    prov = read_provenance(text)
    assert prov.status is ProvenanceStatus.UNAVAILABLE and "text" in prov.reason
    # Formats fakescope does not scan but c2pa reads: checked, not refused.
    gif = tmp_path / "anim.gif"
    gif.write_bytes(b"GIF89a" + bytes(100))
    prov = read_provenance(gif)
    assert prov.media_type == "image/gif" and prov.status in NEVER_RAISE
    for prov in (read_provenance(bmp), read_provenance(mkv), read_provenance(text)):
        _json_roundtrip(prov)


def test_missing_directory_and_too_large(signed_jpeg: Path, tmp_path: Path) -> None:
    assert read_provenance(tmp_path / "missing.jpg").status is ProvenanceStatus.ERROR
    assert read_provenance(tmp_path).status is ProvenanceStatus.ERROR
    prov = read_provenance(signed_jpeg, limits=Limits(max_bytes=1000))
    assert prov.status is ProvenanceStatus.UNAVAILABLE and "max_bytes" in prov.reason


def test_without_c2pa_library(signed_jpeg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "c2pa", None)  # makes `import c2pa` fail
    prov = read_provenance(signed_jpeg)
    assert prov.status is ProvenanceStatus.UNAVAILABLE and "c2pa" in prov.reason


def test_import_is_light() -> None:
    code = (
        "import sys, fakescope, fakescope.provenance; "
        "assert 'c2pa' not in sys.modules, 'c2pa imported'; "
        "assert 'cryptography' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

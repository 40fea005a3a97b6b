"""Shipped model files: where they are and their sha256, checked once per process.

The files live in ``fakescope/models/assets``; this module sits outside every subpackage
because several read them (faces, models, synthesis, identity): none of them has to import
another for its model files. ``fakescope.models`` re-exports these names (its public API)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from importlib import resources
from pathlib import Path

from fakescope.errors import ModelError

__all__ = [
    "ASSET_SHA256",
    "asset_path",
    "sha256_file",
    "shipped",
    "stamp_file",
    "verified_path",
]

ASSET_SHA256: dict[str, str] = {
    "blazeface_short.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    "blazeface_full.tflite": "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    "face_landmark.tflite": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    "mtcnn_pnet.onnx": "97b988559e2b681d321e392a31e6779ff3fcf3a6a4fafb5ff483118f47359c31",
    "mtcnn_rnet.onnx": "b7547b2c0b25cbb158f3a2957a2db487068f244cf1feadbe903940fdb180af65",
    "mtcnn_onet.onnx": "842f6b13f4b9919de8b8d19646c7b5a49666cdd8204b570a6c0c825d44aba302",
    # whole-image synthesis: the weight configs carry their ONNX's sha256. cnn-v3 (issue 28:
    # GAN and diffusion, generator family; EfficientNet-Lite2) and its int8 network, the default
    # (fakescope train configs/synth_cnn_v3.yaml; fakescope train --ship runs/synth_cnn_v3;
    # python3 -m fakescope.training.half_weights .../synth_cnn_v3.json; MODEL_CARD)
    "synth_cnn_v3.json": "e1b22210d6732173a577d0e6d6e25ffcf7e5cfe3bc4317652f02c66322bca1aa",
    "synth_cnn_v3_int8.json": "ad5896434d1a14824fd9aee9fbfdf6006569b5b1bbc57d2b0ec0488e4743c2a7",
    # method-attribution head attrib-v1 over effnet-lite0-v3's embedding (fakescope.models;
    # effnet-lite0-v3 ships for it)
    "attrib_v1.json": "6396d87067017416276fce59d46125f7c8e0f337a36f0a2fc7d1ecaa9964fd65",
    # handcrafted cues + RBF SVM cues-svm-v1 (fakescope.cues; plain JSON)
    "cues_svm_v1.json": "dd6c23a017c9a89cda985ebc8552388f808f0fe594df2ea0d9a5ea4e52800817",
    # identity embeddings: dlib's CC0 face-recognition ResNet as ONNX (fakescope.identity;
    # python3 tools/export_identity_onnx.py --out src/fakescope/models/assets/dlib_resnet_v1.onnx)
    # the reference check reference-v1 (fakescope.identity.ReferenceCheck; plain JSON;
    # OMP_NUM_THREADS=1 PYTHONPATH=src python3 tools/identity_eval.py --write-reference ...)
    "reference_v1.json": "28282b9afe244ae8566d3cd6c6ce6b1cf56f87667fe40e5577d2c67a95f8e992",
    "dlib_resnet_v1.onnx": "28e8ed149bcb39c839436eb682de574f16a951b20a1a5101fa1f18ee2973b6b7",
}


def asset_path(name: str) -> Path:
    """Path of a file in ``fakescope/models/assets`` (not checked)."""
    # through the top package, so that finding a face model does not import fakescope.models
    return Path(str(resources.files("fakescope") / "models" / "assets" / name))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_path(path: Path, sha256: str) -> Path:
    """Return ``path`` after checking it exists and matches ``sha256``.

    The check is cached per process, and across processes in :func:`stamp_file` (hashing the
    shipped models takes about 45 ms of every start), for an unchanged file: same resolved
    path, size, modification time and inode. Any change to the file hashes it again."""
    try:
        stat = path.stat()
    except OSError:
        raise ModelError(f"model file is missing: {path}") from None
    if not path.is_file():
        raise ModelError(f"model file is missing: {path}")
    return _verified(path, sha256, stat.st_size, stat.st_mtime_ns, stat.st_ino)


def stamp_file() -> Path | None:
    """Where verified hashes are remembered: ``$FAKESCOPE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/fakescope``, else ``~/.cache/fakescope`` (``sha256-stamps.json``); None
    when ``FAKESCOPE_CACHE_DIR`` is empty (no cache)."""
    folder = os.environ.get("FAKESCOPE_CACHE_DIR")
    if folder == "":
        return None
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder = str(Path(base) / "fakescope")
    return Path(folder) / "sha256-stamps.json"


def _read_stamps(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


@functools.cache
def _verified(path: Path, sha256: str, size: int, mtime_ns: int, inode: int) -> Path:
    stamps = stamp_file()
    key = f"{path.resolve()}|{size}|{mtime_ns}|{inode}"
    if stamps is not None and _read_stamps(stamps).get(key) == sha256:
        return path
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelError(f"model file {path.name} fails its sha256 check ({actual} != {sha256})")
    if stamps is not None:  # best effort: a read-only home only costs the hashing next time
        with contextlib.suppress(OSError):
            known = {
                k: v for k, v in _read_stamps(stamps).items() if Path(k.split("|")[0]).exists()
            }
            known[key] = actual
            stamps.parent.mkdir(parents=True, exist_ok=True)
            tmp = stamps.with_name(f"{stamps.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=0), encoding="utf-8")
            os.replace(tmp, stamps)
    return path


def shipped(name: str) -> Path:
    """A shipped model asset by file name, sha256-checked."""
    try:
        expected = ASSET_SHA256[name]
    except KeyError:
        raise ModelError(f"unknown asset {name!r}") from None
    return verified_path(asset_path(name), expected)

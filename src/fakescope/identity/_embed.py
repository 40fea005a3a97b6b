"""Face-recognition embeddings (dlib's public-domain ResNet, 128-d) from fakescope's landmarks.

The model is ``dlib_face_recognition_resnet_model_v1.dat`` from the ``face_recognition_models``
package (CC0), shipped converted to ONNX (:data:`ONNX_FILE`) and run in onnxruntime. It expects a
150x150 RGB chip aligned the way ``dlib.get_face_chip`` aligns one
from dlib's 5-point landmarks (outer and inner eye corners, nose base) with padding 0.25. Those
five points come here from fakescope's own 468-point FaceMesh (:data:`MESH_DLIB5`); dlib's
68-point shape predictor (non-commercial licence) is never loaded. A face without a mesh is
aligned from its 5 ArcFace-order landmarks to :data:`ARCFACE5_IN_DLIB_CHIP`, where those
points fall in mesh-aligned chips.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.errors import AlignmentError, ModelError
from fakescope.types import FaceBox

__all__ = [
    "ARCFACE5_IN_DLIB_CHIP",
    "CHIP_PADDING",
    "CHIP_SIZE",
    "DLIB5_TEMPLATE",
    "EMBEDDING_DIM",
    "INSTALL_HINT",
    "MESH_DLIB5",
    "MODEL_FILE",
    "MODEL_SHA256",
    "ONNX_FILE",
    "IdentityEmbedder",
    "chip_matrix",
    "face_chip",
    "find_model",
    "pool",
]

EMBEDDING_DIM = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
MODEL_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
"""sha256 of :data:`MODEL_FILE` as shipped in face_recognition_models 0.3.0: the network the
gallery's embeddings come from (recorded in every gallery)."""
ONNX_FILE = "dlib_resnet_v1.onnx"
"""The shipped conversion of :data:`MODEL_FILE` that scans run (sha256 in
``fakescope.models.ASSET_SHA256``)."""
INSTALL_HINT = "pip install face-recognition-models==0.3.0"

DLIB5_TEMPLATE = np.array(
    [
        [0.8596, 0.2141],  # image-right eye, outer corner
        [0.6736, 0.2329],  # image-right eye, inner corner
        [0.1154, 0.2142],  # image-left eye, outer corner
        [0.3015, 0.2329],  # image-left eye, inner corner
        [0.4877, 0.5864],  # nose base
    ],
    dtype=np.float64,
)
"""dlib's 5-point mean face in unit chip coordinates before padding, in dlib's part order.
Measured from ``dlib.get_face_chip`` itself (coordinate images warped through it, iterated to
a fixed point); tests check our chip against dlib's."""

MESH_DLIB5 = (263, 362, 33, 133, 2)
"""FaceMesh indices of dlib's 5 parts: image-right eye outer/inner corner, image-left eye
outer/inner corner, nose base (subnasale)."""

ARCFACE5_IN_DLIB_CHIP = np.array(
    [
        [0.3226, 0.3118],
        [0.6774, 0.3118],
        [0.5000, 0.5301],
        [0.3605, 0.6915],
        [0.6395, 0.6915],
    ],
    dtype=np.float64,
)
"""Where fakescope's 5 ArcFace-order landmarks (eye centres, nose tip, mouth corners) fall in
a mesh-aligned 150x150 dlib chip, in units of the chip (padding included); the fallback
template for faces without a mesh. Measured by ``python3 tools/identity_eval.py`` (mean over
the evaluation faces, left/right symmetrised)."""

_MIN_EYE_DISTANCE = 1.0


def _padded(unit: npt.NDArray[np.float64], size: int, padding: float) -> npt.NDArray[np.float64]:
    return (unit + padding) / (1.0 + 2.0 * padding) * size


def _similarity(
    src: npt.NDArray[np.float64], dst: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Least-squares similarity transform (Umeyama, no reflection) mapping ``src`` to ``dst``,
    as a 2x3 matrix; what dlib's ``find_similarity_transform`` computes."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    var = float((s**2).sum()) / len(src)
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    if not var > 1e-12:
        raise AlignmentError("landmarks are degenerate (zero spread); cannot align the face")
    scale = float(np.trace(np.diag(sig) @ sign)) / var
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
    return matrix


def chip_matrix(
    face: FaceBox, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> npt.NDArray[np.float64]:
    """The 2x3 similarity transform from frame pixels to dlib's face chip for ``face``.

    Uses the FaceMesh's eye corners and nose base when ``face.mesh`` is set (dlib's own 5-point
    alignment), else the 5 ArcFace-order landmarks. Raises
    :class:`~fakescope.errors.AlignmentError` for points that are not finite or degenerate.
    """
    if face.mesh is not None and np.asarray(face.mesh).shape[0] > max(MESH_DLIB5):
        src = np.asarray(face.mesh, dtype=np.float64)[list(MESH_DLIB5), :2]
        dst = _padded(DLIB5_TEMPLATE, size, padding)
        eyes = (src[0] + src[1]) / 2, (src[2] + src[3]) / 2
    else:
        src = np.asarray(face.landmarks, dtype=np.float64)
        if src.shape != (5, 2):
            raise AlignmentError("landmarks are not five points; the face cannot be aligned")
        dst = ARCFACE5_IN_DLIB_CHIP * size
        eyes = src[0], src[1]
    if not np.isfinite(src).all():
        raise AlignmentError("landmarks are not finite; the face cannot be aligned")
    if float(np.linalg.norm(eyes[0] - eyes[1])) < _MIN_EYE_DISTANCE:
        raise AlignmentError("landmarks are degenerate (eyes coincide); cannot align the face")
    matrix = _similarity(src, dst)
    if not np.isfinite(matrix).all():
        raise AlignmentError("landmarks are degenerate; the face cannot be aligned")
    return matrix


def face_chip(
    image: npt.NDArray[np.uint8],
    face: FaceBox,
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
) -> npt.NDArray[np.uint8]:
    """The ``size`` x ``size`` RGB chip of ``face`` aligned like ``dlib.get_face_chip``
    (bilinear; pixels outside the frame are black, as in dlib)."""
    matrix = chip_matrix(face, size, padding)
    chip = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return np.ascontiguousarray(chip, dtype=np.uint8)


def find_model() -> Path:
    """The path of dlib's original :data:`MODEL_FILE` inside an installed face_recognition_models
    package: only for re-converting the network (``tools/export_identity_onnx.py``) and for
    checking the shipped ONNX against dlib; scanning never needs it.

    Found without importing the package (its ``__init__`` needs ``pkg_resources``, gone from
    recent setuptools). Raises :class:`~fakescope.errors.ModelError` naming the install
    command when the package or the file is missing.
    """
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "models" / MODEL_FILE
        if path.is_file():
            return path
    raise ModelError(f"the face-recognition model {MODEL_FILE} is not installed: {INSTALL_HINT}")


class IdentityEmbedder:
    """128-d L2-normalised face-recognition embeddings of fakescope faces.

    Runs :data:`ONNX_FILE`, dlib's ResNet converted once to ONNX
    (``tools/export_identity_onnx.py``; float16-stored weights, embeddings within 1e-3 of
    dlib's), in onnxruntime: about 7 ms per chip on one core here where dlib's own CPU code
    takes 170 ms. ``model_path`` overrides the shipped file (its sha256 must still match
    :data:`ONNX_SHA256`); ``threads`` is onnxruntime's intra-op thread count (0: every core).
    """

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        from fakescope._runtime import onnx_session
        from fakescope.models import ASSET_SHA256, asset_path, verified_path

        path = verified_path(
            Path(model_path) if model_path is not None else asset_path(ONNX_FILE),
            ASSET_SHA256[ONNX_FILE],
        )
        self._session = onnx_session(path, threads)
        self.model_path = path

    def embed_chips(self, chips: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Embeddings (N, 128) float32, L2-normalised, of already aligned 150x150 RGB chips."""
        if len(chips) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        for chip in chips:
            if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3) or chip.dtype != np.uint8:
                raise ValueError(
                    f"a chip must be {CHIP_SIZE}x{CHIP_SIZE}x3 uint8, got {chip.shape} {chip.dtype}"
                )
        raw = np.asarray(
            self._session.run(None, {"chips": np.ascontiguousarray(np.stack(chips))})[0],
            dtype=np.float64,
        )
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return np.asarray(raw / np.maximum(norms, 1e-12), dtype=np.float32)

    def embed(self, image: npt.NDArray[np.uint8], face: FaceBox) -> npt.NDArray[np.float32]:
        """The (128,) float32 L2-normalised embedding of ``face`` in the RGB frame ``image``.
        Raises :class:`~fakescope.errors.AlignmentError` for a face that cannot be aligned."""
        return np.asarray(self.embed_chips([face_chip(image, face)])[0], dtype=np.float32)

    def embed_many(
        self, items: Sequence[tuple[npt.NDArray[np.uint8], FaceBox]]
    ) -> npt.NDArray[np.float32]:
        """Embeddings (N, 128) of ``(frame image, face)`` pairs, run as one batch."""
        return self.embed_chips([face_chip(image, face) for image, face in items])


def pool(embeddings: npt.ArrayLike, trim: float = 0.25) -> npt.NDArray[np.float32]:
    """One (128,) L2-normalised embedding for a track: the mean of its frames' embeddings
    after dropping the ``trim`` fraction (at least one, when there are 3 or more) furthest
    from their element-wise median, re-normalised. Raises ``ValueError`` when empty."""
    data = np.asarray(embeddings, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError("pool needs at least one embedding, shaped (N, D)")
    if not np.isfinite(data).all():
        raise ValueError("pool got non-finite embeddings")
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    data = data / np.maximum(norms, 1e-12)
    n = data.shape[0]
    if n >= 3:
        drop = max(1, int(np.floor(trim * n)))
        dist = np.linalg.norm(data - np.median(data, axis=0), axis=1)
        data = data[np.argsort(dist, kind="stable")[: n - drop]]
    mean = data.mean(axis=0)
    return np.asarray(mean / max(float(np.linalg.norm(mean)), 1e-12), dtype=np.float32)

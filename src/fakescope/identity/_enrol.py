"""Reference embeddings of a person from their photos and videos (``fakescope people add``,
``POST /api/people/NAME``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.identity._embed import EMBEDDING_DIM, IdentityEmbedder

__all__ = ["FRAMES_PER_VIDEO", "reference_embeddings"]

FRAMES_PER_VIDEO = 16
"""Frames sampled from each reference video (the largest face of each is embedded)."""


def reference_embeddings(
    files: Sequence[Path],
    frames: int = FRAMES_PER_VIDEO,
    embedder: IdentityEmbedder | None = None,
    detector: Any = None,
) -> tuple[npt.NDArray[np.float32], list[str]]:
    """Embeddings (N, 128) of the largest face in each sampled frame of ``files`` (a photo is
    one frame), and a note per file that gave none (undecodable, unsupported, no face). Faces
    are found and filtered exactly as a scan finds them (``detector``: a face detector to
    reuse, else the scan's default is built)."""
    from fakescope.config import ScanConfig
    from fakescope.errors import FakescopeError
    from fakescope.faces import FACE_DETECTORS, filter_faces
    from fakescope.io import Sampling, open_media

    embedder = embedder or IdentityEmbedder()
    cfg = ScanConfig()
    if detector is None:
        detector = FACE_DETECTORS.create(cfg.face_detector, min_face_px=cfg.min_face_px)
    found: list[npt.NDArray[np.float32]] = []
    notes: list[str] = []
    for path in files:
        before = len(found)
        try:
            _, stream = open_media(path, Sampling(num_frames=frames))
            for frame in stream:
                found_here = detector.detect(frame.image, frame.index, [], full_scan=True)
                # the scan's own rule: too small or unconfirmed faces are detection errors
                faces = filter_faces(found_here, cfg.min_face_px, cfg.confirm_presence)
                if faces:
                    face = max(faces, key=lambda f: f.width * f.height)
                    found.append(embedder.embed(frame.image, face))
        except FakescopeError as exc:
            notes.append(f"{path.name}: {exc}")
            continue
        if len(found) == before:
            notes.append(f"{path.name}: no face found")
    if not found:
        return np.zeros((0, EMBEDDING_DIM), np.float32), notes
    return np.stack(found).astype(np.float32), notes

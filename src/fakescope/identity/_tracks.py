"""Identity in the scan: each face track's pooled embedding, tracks of one person joined
across cuts, and the gallery's best match per person."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fakescope.errors import AlignmentError
from fakescope.identity._embed import IdentityEmbedder, face_chip, pool
from fakescope.identity._gallery import SAME_PERSON_THRESHOLD, Gallery
from fakescope.identity._merge import merge_tracks
from fakescope.types import FaceBox, Identity

__all__ = ["CHIPS_PER_TRACK", "TrackIdentifier"]

CHIPS_PER_TRACK = 4
"""At most this many evenly spread faces of a track are embedded (about 190 ms each)."""


class TrackIdentifier:
    """Keeps a small aligned chip of every face while frames stream past (:meth:`observe`),
    then embeds a few per track, joins tracks of the same person and names them from the
    gallery (:meth:`identify`)."""

    def __init__(
        self,
        gallery: Path | str | None = None,
        threshold: float = SAME_PERSON_THRESHOLD,
        embedder: IdentityEmbedder | None = None,
    ) -> None:
        self.embedder = embedder or IdentityEmbedder()
        self._folder = None if gallery is None else Path(gallery)
        self._stamp: tuple[int, int] | None = None
        self._gallery: Gallery | None = None
        self.threshold = threshold

    @property
    def gallery(self) -> Gallery | None:
        """The gallery as it is on disk now: reread when another process (``fakescope
        people``, the server's ``/api/people``) changed it, so a removed person is never
        matched again."""
        if self._folder is None:
            return None
        try:
            st = (self._folder / "gallery.json").stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, 0)
        if self._gallery is None or stamp != self._stamp:
            self._gallery, self._stamp = Gallery(self._folder), stamp
        return self._gallery

    def observe(self, image: npt.NDArray[np.uint8], face: FaceBox) -> npt.NDArray[np.uint8] | None:
        """The face's 150 px dlib chip (None when it cannot be aligned)."""
        try:
            return face_chip(image, face)
        except AlignmentError:
            return None

    def identify(
        self, chips: Sequence[Sequence[npt.NDArray[np.uint8] | None]]
    ) -> list[Identity | None]:
        """One :class:`Identity` per track (``chips[k]``: its faces' chips in frame order; None
        for a track without any)."""
        pooled: list[npt.NDArray[np.float32]] = []
        owners: list[int] = []
        for k, track in enumerate(chips):
            kept = [c for c in track if c is not None]
            if not kept:
                continue
            pick = np.unique(np.linspace(0, len(kept) - 1, min(CHIPS_PER_TRACK, len(kept))))
            pooled.append(pool(self.embedder.embed_chips([kept[int(i)] for i in pick.round()])))
            owners.append(k)
        people = merge_tracks(pooled, self.threshold) if pooled else []
        by_person: dict[int, list[npt.NDArray[np.float32]]] = {}
        for person, emb in zip(people, pooled, strict=True):
            by_person.setdefault(person, []).append(emb)
        gallery = self.gallery
        matches = {
            person: (None if gallery is None else gallery.match(pool(np.stack(embs))))
            for person, embs in by_person.items()
        }
        out: list[Identity | None] = [None] * len(chips)
        for k, person in zip(owners, people, strict=True):
            match = matches[person]
            out[k] = Identity(
                person=person,
                name=None if match is None else match.name,
                closest=None if match is None else match.closest,
                distance=None if match is None else float(match.distance),
                same_person_probability=(
                    None if match is None else float(match.same_person_probability)
                ),
            )
        return out

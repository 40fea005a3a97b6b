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
from fakescope.identity._reference import ReferenceCheck
from fakescope.types import Evidence, FaceBox, Identity

__all__ = ["CHIPS_PER_TRACK", "TrackIdentifier"]

CHIPS_PER_TRACK = 8
"""At most this many evenly spread faces of a track are embedded (about 7 ms each)."""


class TrackIdentifier:
    """Keeps a small aligned chip of every face while frames stream past (:meth:`observe`),
    then embeds a few per track, joins tracks of the same person and names them from the
    gallery (:meth:`identify`); with a ``reference`` person, also checks every track against
    that person's references (:meth:`check_reference`)."""

    def __init__(
        self,
        gallery: Path | str | None = None,
        threshold: float = SAME_PERSON_THRESHOLD,
        embedder: IdentityEmbedder | None = None,
        reference: str | None = None,
    ) -> None:
        self.embedder = embedder or IdentityEmbedder()
        self.reference = reference
        self._check = ReferenceCheck.shipped() if reference is not None else None
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

    def embed_tracks(
        self, chips: Sequence[Sequence[npt.NDArray[np.uint8] | None]]
    ) -> list[npt.NDArray[np.float32] | None]:
        """Per track (``chips[k]``: its faces' chips in frame order, None where a face could
        not be aligned) the embeddings (n, 128) of up to :data:`CHIPS_PER_TRACK` evenly
        spread faces, or None for a track without any chip; one batch for the whole scan."""
        picked: list[list[npt.NDArray[np.uint8]]] = []
        for track in chips:
            kept = [c for c in track if c is not None]
            n = min(CHIPS_PER_TRACK, len(kept))
            pick = np.unique(np.linspace(0, len(kept) - 1, n).round()) if n else np.zeros(0)
            picked.append([kept[int(i)] for i in pick])
        flat = self.embedder.embed_chips([c for p in picked for c in p])
        out: list[npt.NDArray[np.float32] | None] = []
        start = 0
        for p in picked:
            out.append(flat[start : start + len(p)] if p else None)
            start += len(p)
        return out

    def identify(
        self, chips: Sequence[Sequence[npt.NDArray[np.uint8] | None]]
    ) -> list[Identity | None]:
        """One :class:`Identity` per track (``chips[k]``: its faces' chips in frame order; None
        for a track without any)."""
        return self.identify_embedded(self.embed_tracks(chips))

    def identify_embedded(
        self, embedded: Sequence[npt.NDArray[np.float32] | None]
    ) -> list[Identity | None]:
        """:meth:`identify` from :meth:`embed_tracks`' output."""
        pooled: list[npt.NDArray[np.float32]] = []
        owners: list[int] = []
        for k, embs in enumerate(embedded):
            if embs is not None and len(embs):
                pooled.append(pool(embs))
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
        out: list[Identity | None] = [None] * len(embedded)
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

    def check_reference(
        self, embedded: Sequence[npt.NDArray[np.float32] | None]
    ) -> list[Evidence | None]:
        """The reference check of every track with embeddings against :attr:`reference`
        (None for a track without; an empty list when no reference was asked for). A person
        removed from the gallery gives evidence without a probability that says so."""
        if self._check is None or self.reference is None:
            return []
        check, info = self._check
        gallery = self.gallery
        known = gallery is not None and self.reference in gallery.names()
        out: list[Evidence | None] = []
        for embs in embedded:
            if embs is None or not len(embs):
                out.append(None)
            elif not known or gallery is None:
                out.append(
                    Evidence(
                        info.name,
                        None,
                        f"cannot check against {self.reference}: not in the gallery",
                        model=info,
                    )
                )
            else:
                refs = gallery.embeddings(self.reference)
                out.append(check.assess(embs, refs, self.reference, info))
        return out

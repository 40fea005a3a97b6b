"""Stage 6b: what else is said about each face track, after its verdict: the manipulation
family of a fake track (an :class:`~fakescope.models.Attributor`) and the lines of evidence of
track evidence models (:data:`~fakescope.models.EVIDENCE_MODELS`). Neither changes a label."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fakescope.config import ScanConfig
from fakescope.errors import ConfigError, CropMismatch
from fakescope.models import (
    Attributor,
    TrackEvidenceModel,
    WeightConfig,
    create_attributor,
    create_evidence_model,
)
from fakescope.types import Evidence, FaceCrop, Label, Track, TrackVerdict

if TYPE_CHECKING:
    from fakescope.identity import TrackIdentifier

__all__ = [
    "IDENTITY_SLOT",
    "attribute_tracks",
    "evidence_models",
    "identify_tracks",
    "track_evidence",
    "track_identifier",
]

IDENTITY_SLOT = -1
"""The observation slot (in place of an evidence model's index) of the identity chips."""


def attribute_tracks(
    attributor: Attributor,
    tracks: Sequence[Track],
    verdicts: Sequence[TrackVerdict],
    crops: Mapping[int, FaceCrop],
) -> tuple[TrackVerdict, ...]:
    """``verdicts`` with the attribution of every track labelled ``fake`` (from its aligned
    crops, ``crops`` by ``id(FaceBox)``); other tracks are returned unchanged."""
    by_id = {t.track_id: t for t in tracks}
    out: list[TrackVerdict] = []
    for verdict in verdicts:
        track = by_id.get(verdict.track_id)
        if verdict.label is not Label.FAKE or track is None:
            out.append(verdict)
            continue
        images = [crops[id(f)].image for f in track.faces if id(f) in crops]
        if not images:
            out.append(verdict)
            continue
        found = attributor.attribute(np.stack(images))
        out.append(dataclasses.replace(verdict, attribution=found))
    return tuple(out)


def track_evidence(
    models: Sequence[TrackEvidenceModel],
    tracks: Sequence[Track],
    verdicts: Sequence[TrackVerdict],
    observations: Mapping[tuple[int, int], Any],
    times: Mapping[int, float],
) -> tuple[TrackVerdict, ...]:
    """``verdicts`` with each model's :class:`Evidence` per track, from the observations the
    model took of the track's faces (``observations[(model index, id(FaceBox))]``) and their
    frame times. A model that fails on a track gives evidence without a probability and the
    reason, never a crash."""
    by_id = {t.track_id: t for t in tracks}
    out: list[TrackVerdict] = []
    for verdict in verdicts:
        track = by_id.get(verdict.track_id)
        if track is None or not models:
            out.append(verdict)
            continue
        found: list[Evidence] = []
        for k, model in enumerate(models):
            faces = [f for f in track.faces if (k, id(f)) in observations]
            seen = [observations[(k, id(f))] for f in faces]
            when = [times.get(f.frame_index, 0.0) for f in faces]
            try:
                found.append(model.assess(seen, when))
            except (ValueError, ArithmeticError) as exc:
                found.append(
                    Evidence(model.info.name, None, f"could not judge: {exc}", model=model.info)
                )
        out.append(dataclasses.replace(verdict, evidence=tuple(found)))
    return tuple(out)


def evidence_models(
    config: ScanConfig, wcfg: WeightConfig
) -> tuple[Attributor | None, list[TrackEvidenceModel]]:
    """The scan's attribution head (its embedder must crop faces as the detector does: it
    reads the same crops) and its track evidence models."""
    attributor = None
    if config.attribution is not None:
        attributor = create_attributor(config.attribution, config.threads)
        ecfg = attributor.embedder.config
        if (ecfg.input_size, ecfg.margin, ecfg.alignment) != (
            wcfg.input_size,
            wcfg.margin,
            wcfg.alignment,
        ):
            raise CropMismatch(
                f"attribution {config.attribution!r} reads {ecfg.input_size} px "
                f"{ecfg.alignment} crops (margin {ecfg.margin}); detector {wcfg.name!r} makes "
                f"{wcfg.input_size} px {wcfg.alignment} crops (margin {wcfg.margin})"
            )
    return attributor, [create_evidence_model(n, config.threads) for n in config.evidence]


def track_identifier(config: ScanConfig) -> TrackIdentifier | None:
    """The scan's identity stage (``config.identity`` or a ``config.gallery``), else None."""
    if not (config.identity or config.gallery):
        return None
    from fakescope.identity import TrackIdentifier

    identifier = TrackIdentifier(config.gallery, reference=config.reference)
    gallery = identifier.gallery
    if config.reference is not None and (
        gallery is None or config.reference not in gallery.names()
    ):
        raise ConfigError(f"{config.reference!r} is not in the gallery at {config.gallery}")
    return identifier


def identify_tracks(
    identifier: TrackIdentifier,
    tracks: Sequence[Track],
    verdicts: Sequence[TrackVerdict],
    observations: Mapping[tuple[int, int], Any],
) -> tuple[TrackVerdict, ...]:
    """``verdicts`` with each track's :class:`~fakescope.types.Identity` (from the chips kept
    in ``observations[(IDENTITY_SLOT, id(FaceBox))]``) and, when the identifier has a
    reference person, the reference check as one more line of evidence."""
    chips = [[observations.get((IDENTITY_SLOT, id(f))) for f in t.faces] for t in tracks]
    embedded = identifier.embed_tracks(chips)
    ids = [t.track_id for t in tracks]
    found = dict(zip(ids, identifier.identify_embedded(embedded), strict=True))
    checks = dict(zip(ids, identifier.check_reference(embedded), strict=False))
    out = []
    for v in verdicts:
        check = checks.get(v.track_id)
        extra = () if check is None else (check,)
        out.append(
            dataclasses.replace(v, identity=found.get(v.track_id), evidence=v.evidence + extra)
        )
    return tuple(out)

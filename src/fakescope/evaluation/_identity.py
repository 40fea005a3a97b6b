"""Identity in ``fakescope eval --identity``: who is who among a dataset's real videos, and the
reference check of its fakes against the person they claim to show.

Each item's faces are read as a scan reads them (sampled frames, the scan's face detector and
rules, the largest face per frame) and embedded (:class:`fakescope.identity.IdentityEmbedder`).
The first half of each real video's embedded frames goes into a gallery (one entry per
identity); the second half is that video's probe:

- **rank-1**: the share of real probes whose closest gallery entry is their own identity;
- **reference check**: every real probe (claiming its own identity) and every fake (claiming
  its target, ``MediaItem.identities[0]``: a FF++ ``A_B`` fake shows B's face on A's video)
  is checked against the claimed person's references (:class:`fakescope.identity.ReferenceCheck`);
  reported per method as the AUC of fakes against the real probes, with bootstrap intervals,
  and the share flagged at ``p(fake) >= 0.5``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fakescope.evaluation._metrics import bootstrap_ci, roc_auc

if TYPE_CHECKING:
    from fakescope.data import MediaItem
    from fakescope.identity import IdentityEmbedder, ReferenceCheck

__all__ = ["IDENTITY_SWAPS", "IdentityProbe", "evaluate_identity", "identity_markdown"]

IDENTITY_SWAPS = ("Deepfakes", "FaceSwap", "FaceShifter", "DeepFakeDetection")
"""Methods that put another person's face on the video: the reference check's target. The
reenactment methods (Face2Face, NeuralTextures) keep the identity and are reported apart."""


@dataclass(frozen=True)
class IdentityProbe:
    """One probe of the reference check: a real video's second half or a whole fake."""

    media_id: str
    method: str
    label: int
    claimed: str
    distance: float
    fake_probability: float


def item_embeddings(
    item: MediaItem, embedder: IdentityEmbedder, frames: int, detector: Any
) -> npt.NDArray[np.float32]:
    """Embeddings (n, 128) of the largest face in each of ``frames`` sampled frames."""
    from fakescope.identity import reference_embeddings

    embeddings, _ = reference_embeddings([item.path], frames, embedder, detector)
    return embeddings


def evaluate_identity(
    items: Sequence[MediaItem],
    *,
    frames: int = 8,
    check: ReferenceCheck | None = None,
    n_boot: int = 1000,
    on_item: Callable[[MediaItem], None] | None = None,
) -> dict[str, Any]:
    """Rank-1 identification among the real items and the reference check of every item
    whose claimed person has enough references (see the module docstring). Items without a
    face are counted, never guessed."""
    from fakescope.config import ScanConfig
    from fakescope.faces import FACE_DETECTORS
    from fakescope.identity import IdentityEmbedder, ReferenceCheck, pool, reference_distances

    if check is None:
        check, _ = ReferenceCheck.shipped()
    embedder = IdentityEmbedder()
    cfg = ScanConfig()
    detector = FACE_DETECTORS.create(cfg.face_detector, min_face_px=cfg.min_face_px)
    embedded: dict[str, npt.NDArray[np.float32]] = {}
    for item in items:
        embedded[item.media_id] = item_embeddings(item, embedder, frames, detector)
        if on_item is not None:
            on_item(item)
    no_face = [i.media_id for i in items if len(embedded[i.media_id]) == 0]

    refs: dict[str, list[npt.NDArray[np.float32]]] = defaultdict(list)
    real_probes: list[tuple[MediaItem, npt.NDArray[np.float32]]] = []
    for item in items:
        emb = embedded[item.media_id]
        if item.label == "real" and len(emb) >= 2 and item.identities:
            refs[item.identities[0]].extend(emb[: len(emb) // 2])
            real_probes.append((item, emb[len(emb) // 2 :]))
    names = sorted(refs)
    centroids = np.stack([pool(np.stack(refs[n])) for n in names]) if names else None
    correct = 0
    for item, probe in real_probes:
        assert centroids is not None
        dist = np.linalg.norm(centroids - pool(probe), axis=1)
        correct += names[int(np.argmin(dist))] == item.identities[0]

    probes: list[IdentityProbe] = []
    checked = list(real_probes)
    checked += [
        (i, embedded[i.media_id])
        for i in items
        if i.label == "fake" and i.identities and len(embedded[i.media_id])
    ]
    for item, emb in checked:
        claimed = item.identities[0]
        if len(refs.get(claimed, [])) < check.min_faces:
            continue
        d = reference_distances(emb, np.stack(refs[claimed]))["distance"]
        p_fake = float(check.predict_proba([d])[0, 1])
        label = 0 if item.label == "real" else 1
        probes.append(IdentityProbe(item.media_id, item.method, label, claimed, d, p_fake))

    reals = [p for p in probes if p.label == 0]
    groups: dict[str, list[IdentityProbe]] = defaultdict(list)
    for one in probes:
        if one.label == 1:
            groups[one.method].append(one)
            groups["all fakes"].append(one)
            if one.method in IDENTITY_SWAPS:
                groups["face swaps"].append(one)
    rows: dict[str, dict[str, Any]] = {
        "real": {
            "n": len(reals),
            "flagged": float(np.mean([p.fake_probability >= 0.5 for p in reals]))
            if reals
            else None,
            "mean_distance": float(np.mean([p.distance for p in reals])) if reals else None,
        }
    }
    for name, group in groups.items():
        row: dict[str, Any] = {
            "n": len(group),
            "flagged": float(np.mean([p.fake_probability >= 0.5 for p in group])),
            "mean_distance": float(np.mean([p.distance for p in group])),
            "auc": None,
        }
        if reals:
            y = np.r_[np.zeros(len(reals)), np.ones(len(group))]
            s = np.array([p.distance for p in reals + group])
            point, low, high = bootstrap_ci(roc_auc, y, s, n_boot=n_boot)
            row["auc"] = {"value": point, "low": low, "high": high}
        rows[name] = row
    return {
        "frames_per_item": frames,
        "items": len(items),
        "no_face": no_face,
        "people": len(names),
        "rank1": {
            "value": correct / len(real_probes) if real_probes else None,
            "correct": correct,
            "n": len(real_probes),
        },
        "reference_check": {
            "half_distance": check.half_distance,
            "min_references": check.min_faces,
            "rows": rows,
        },
        "probes": [p.__dict__ for p in probes],
    }


def identity_markdown(result: dict[str, Any]) -> str:
    """The identity summary as a Markdown table (rank-1, then the reference check)."""
    r1 = result["rank1"]
    value = "n/a" if r1["value"] is None else f"{r1['value']:.3f}"
    lines = [
        f"Rank-1 identification among the real videos: {value} ({r1['correct']}/{r1['n']}, "
        f"{result['people']} people; {len(result['no_face'])} item(s) without a face)",
        "",
        "| reference check | n | mean distance | AUC vs reals [95% CI] | flagged at p >= 0.5 |",
        "|---|---|---|---|---|",
    ]
    for name, row in result["reference_check"]["rows"].items():
        auc = row.get("auc")
        cell = "" if not auc else f"{auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}]"
        flagged = "" if row["flagged"] is None else f"{row['flagged']:.2f}"
        dist = "" if row["mean_distance"] is None else f"{row['mean_distance']:.3f}"
        lines.append(f"| {name} | {row['n']} | {dist} | {cell} | {flagged} |")
    return "\n".join(lines)

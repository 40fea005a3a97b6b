"""How well method attribution names the manipulation of the fakes a scan called fake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fakescope.types import Attribution, Label, Verdict

__all__ = ["FFPP_METHODS", "AttributionRecord", "attribution_markdown", "attribution_summary"]

FFPP_METHODS = ("Deepfakes", "FaceSwap", "Face2Face", "NeuralTextures")


@dataclass(frozen=True)
class AttributionRecord:
    """One fake item: its true method, the verdict's label and the attribution of its most
    fake attributed face (None when no face was attributed)."""

    method: str
    label: Label
    attribution: Attribution | None

    @classmethod
    def of(cls, method: str, verdict: Verdict) -> AttributionRecord:
        tracks = [t for t in verdict.tracks if t.attribution is not None]
        best = max(tracks, key=lambda t: t.fake_probability) if tracks else None
        return cls(method, verdict.label, None if best is None else best.attribution)


def _restricted(a: Attribution, methods: Sequence[str]) -> str:
    """The most likely of ``methods`` (those the attribution knows) by its probabilities."""
    known = [m for m in methods if m in a.probabilities]
    return max(known, key=lambda m: a.probabilities[m]) if known else a.method


def attribution_summary(
    records: Sequence[AttributionRecord], families: Mapping[str, str]
) -> dict[str, Any]:
    """Accuracy and confusion of method attribution over fake items whose true method the
    attribution head knows (``families``: its methods and their families): ``n_fakes``,
    ``n_attributed`` (called fake and attributed), ``method_accuracy``, ``family_accuracy``,
    ``ffpp_4method_accuracy`` (FF++ fakes, the most likely FF++ method) and ``confusion``
    (true method -> predicted method -> count)."""
    known = set(families)
    scope = [r for r in records if r.method in known]
    done = [r for r in scope if r.attribution is not None]
    confusion: dict[str, dict[str, int]] = {}
    right = family_right = ff_right = ff_n = 0
    for r in done:
        a = r.attribution
        assert a is not None
        row = confusion.setdefault(r.method, {})
        row[a.method] = row.get(a.method, 0) + 1
        right += a.method == r.method
        family_right += families.get(r.method, "?") == a.family
        if r.method in FFPP_METHODS:
            ff_n += 1
            ff_right += _restricted(a, FFPP_METHODS) == r.method

    def share(k: int, n: int) -> float | None:
        return round(k / n, 4) if n else None

    return {
        "n_fakes": len(scope),
        "n_attributed": len(done),
        "method_accuracy": share(right, len(done)),
        "family_accuracy": share(family_right, len(done)),
        "ffpp_n": ff_n,
        "ffpp_4method_accuracy": share(ff_right, ff_n),
        "confusion": confusion,
    }


def attribution_markdown(summaries: dict[str, dict[str, Any]]) -> str:
    """One line per detector: how many fakes were attributed and how well."""
    lines = [
        "| detector | fakes | attributed | method acc. | family acc. | FF++ 4-method acc. |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        lines.append(
            f"| {name} | {s['n_fakes']} | {s['n_attributed']} | {fmt(s['method_accuracy'])} | "
            f"{fmt(s['family_accuracy'])} | {fmt(s['ffpp_4method_accuracy'])} (n={s['ffpp_n']}) |"
        )
    return "\n".join(lines)

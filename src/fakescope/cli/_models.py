"""``fakescope models``: the catalogue of every registered model, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_models_parser", "catalogue", "run_models"]


def add_models_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "models", help="list every registered detector with its version, sha256 and data"
    )
    p.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    return p


ROLES = (
    "default",
    "member of the default",
    "float twin of the default",
    "float twin of a member",
    "alternative",
    "opt-in",
    "baseline",
    "embedder",
)
"""Each catalogue entry's ``role``: the default of its family, a member of that default (an
ensemble's networks), the float network a scan runs in place of the default or a member where
int8 is not exact, another registered choice (``alternative``; ``opt-in`` in a family that is
off by default), a ``baseline`` kept to compare against, or an ``embedder``: a network shipped
because another model reads its embedding (the entry's ``embedder_of`` lists them). Earlier
generations are not shipped (CHANGELOG.md)."""


def _role(name: str, default: str, members: list[str], registry: Any) -> str:
    declared = registry.declared_role(name) if registry is not None else None
    twin_of = (
        {registry.float_twin(n): n for n in [default, *members] if registry.float_twin(n)}
        if registry is not None
        else {}
    )
    if name == default:
        return "default"
    if name in members:
        return "member of the default"
    if name in twin_of:
        return "float twin of the default" if twin_of[name] == default else "float twin of a member"
    if declared in ("baseline", "embedder"):
        return str(declared)
    return "alternative" if default else "opt-in"


def _entry(
    family: str,
    name: str,
    default: str,
    description: str,
    model: Any,
    registry: Any = None,
    members: list[str] | None = None,
    used_by: list[str] | None = None,
) -> dict[str, Any]:
    info = getattr(model, "info", None)
    config = getattr(model, "config", None) or getattr(model, "weights", None)
    runs_as, resolution = registry.resolve(name) if registry is not None else (name, None)
    role = _role(name, default, members or [], registry)
    return {
        "name": name,
        "family": family,
        "default": name == default,
        "role": role,
        "embedder_of": list(used_by or []),
        "version": getattr(info, "version", "") or "",
        "sha256": getattr(info, "sha256", "") or "",
        "architecture": getattr(config, "architecture", "") or "",
        "trained_on": getattr(config, "trained_on", "") or getattr(model, "trained_on", "") or "",
        "looks_for": description.replace("``", ""),
        "float_twin": registry.float_twin(name) if registry is not None else None,
        "runs_as": runs_as,
        "resolution": resolution,
    }


def catalogue() -> list[dict[str, Any]]:
    """One entry per registered model of each family (face manipulation detectors, whole-image
    synthesis detectors, face detectors, method attribution heads, track evidence models):
    name, family, default, ``role`` (one of :data:`ROLES`; ``embedder_of`` lists the attribution
    heads that read an embedder), version, sha256, architecture, training data and what it
    looks for (its registration's docstring). Each model is loaded once, so the sha256 shown is
    the one checked. An int8 weight names its ``float_twin``; ``runs_as`` is the weight a scan
    asking for it runs on this CPU (the twin where the int8 network would not be exact, or under
    ``FAKESCOPE_INT8=never``) and ``resolution`` says why (None when it is itself)."""
    from fakescope.config import ScanConfig
    from fakescope.faces import FACE_DETECTORS
    from fakescope.models import ATTRIBUTORS, DETECTORS, EVIDENCE_MODELS
    from fakescope.registry import Registry
    from fakescope.synthesis import SYNTHESIS_DETECTORS

    defaults = ScanConfig()
    families: tuple[tuple[str, Registry[Any], str], ...] = (
        ("face manipulation", DETECTORS, defaults.detector),
        ("whole-image synthesis", SYNTHESIS_DETECTORS, defaults.synthesis_detector or ""),
        ("face detector", FACE_DETECTORS, defaults.face_detector),
        ("method attribution", ATTRIBUTORS, defaults.attribution or ""),
        ("track evidence", EVIDENCE_MODELS, ""),
    )
    entries: dict[str, list[dict[str, Any]]] = {}
    embedder_of: dict[str, list[str]] = {}  # detector name -> the attribution heads using it
    # attribution heads first (each model is built once): their embedders' roles need them
    for family, registry, default in sorted(families, key=lambda f: f[0] != "method attribution"):
        members: list[str] = []
        if default:
            fused = registry.create(default)
            # the names the ensemble lists, also where its int8 members run as their twins
            members = [m.info.resolved_from or m.info.name for m in getattr(fused, "members", [])]
        rows = entries.setdefault(family, [])
        for name in registry.names():
            model = registry.create(name)
            if family == "method attribution":
                used = model.embedder.info.resolved_from or model.embedder.info.name
                embedder_of.setdefault(used, []).append(name)
            description = registry.describe(name)
            used_by = embedder_of.get(name) if family == "face manipulation" else None
            rows.append(
                _entry(family, name, default, description, model, registry, members, used_by)
            )
    out = [e for family, *_ in families for e in entries[family]]
    return out + _identity_entries()


def _identity_entries() -> list[dict[str, Any]]:
    """The identity embedding and the reference check (``--identity``, ``--reference``)."""
    from fakescope.identity import ONNX_FILE, REFERENCE_FILE, ReferenceCheck
    from fakescope.models import ASSET_SHA256, shipped

    shipped(ONNX_FILE)  # the sha256 shown is the one checked
    check, data = ReferenceCheck.load(shipped(REFERENCE_FILE))
    common = {
        "default": False,
        "role": "opt-in",
        "embedder_of": [],
        "float_twin": None,
        "resolution": None,
    }
    return [
        {
            **common,
            "name": "dlib-resnet-v1",
            "runs_as": "dlib-resnet-v1",
            "family": "identity embedding",
            "version": "1",
            "sha256": ASSET_SHA256[ONNX_FILE],
            "architecture": "dlib face-recognition ResNet-29 (CC0), converted to ONNX",
            "trained_on": "dlib's own face-recognition training set (about 3M faces)",
            "looks_for": "whose face it is: 128-d embeddings of aligned 150 px face chips",
        },
        {
            **common,
            "name": str(data["name"]),
            "runs_as": str(data["name"]),
            "family": "reference check",
            "version": str(data["version"]),
            "sha256": ASSET_SHA256[REFERENCE_FILE],
            "architecture": f"logistic regression on the distance to a person's references "
            f"(p = 0.5 at {check.half_distance:.3f})",
            "trained_on": str(data.get("trained_on", "")),
            "looks_for": "a face that is not the claimed person's (face swaps); reenactment "
            "keeps the identity and is not seen",
        },
    ]


def run_models(args: argparse.Namespace) -> int:
    from rich.table import Table

    from fakescope.cli._common import stdout_console

    entries = catalogue()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    table = Table(title="fakescope models", show_lines=True)
    for column in ("name", "family", "role", "version", "sha256", "what it looks for"):
        table.add_column(column, overflow="fold")
    for e in entries:
        name = f"{e['name']} (default)" if e["default"] else e["name"]
        if e["runs_as"] != e["name"]:
            name += f" (runs as {e['runs_as']} here)"
        role = e["role"]
        if e["embedder_of"]:  # an embedder says whose; another role keeps its own first
            uses = f"embedder of {', '.join(e['embedder_of'])}"
            role = uses if role == "embedder" else f"{role}; {uses}"
        table.add_row(name, e["family"], role, e["version"], e["sha256"][:12], e["looks_for"])
    stdout_console().print(table)
    return 0

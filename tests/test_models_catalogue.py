"""`fakescope models`: every registered model, once, with what it looks for."""

from __future__ import annotations

import json

import pytest

from fakescope.cli import main
from fakescope.config import ScanConfig
from fakescope.faces import FACE_DETECTORS
from fakescope.models import ATTRIBUTORS, DETECTORS, EVIDENCE_MODELS, create_detector
from fakescope.registry import Registry
from fakescope.synthesis import SYNTHESIS_DETECTORS


def test_catalogue_lists_every_registered_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    by_family: dict[str, list[str]] = {}
    for e in entries:
        by_family.setdefault(e["family"], []).append(e["name"])
        assert e["looks_for"], f"{e['name']}: its registration needs a docstring"
        assert "``" not in e["looks_for"]
    assert by_family == {
        "face manipulation": DETECTORS.names(),
        "whole-image synthesis": SYNTHESIS_DETECTORS.names(),
        "face detector": FACE_DETECTORS.names(),
        "method attribution": ATTRIBUTORS.names(),
        "track evidence": EVIDENCE_MODELS.names(),
        "identity embedding": ["dlib-resnet-v1"],
        "reference check": ["reference-v1"],
    }
    defaults = {e["family"]: e["name"] for e in entries if e["default"]}
    config = ScanConfig()
    assert defaults == {
        "face manipulation": config.detector,
        "whole-image synthesis": config.synthesis_detector,
        "face detector": config.face_detector,
    }
    for e in entries:
        if e["family"] in (
            "face manipulation",
            "method attribution",
            "track evidence",
            "identity embedding",
            "reference check",
        ):
            if e["family"] == "face manipulation":  # the weight's own, whatever runs here
                assert e["sha256"] == DETECTORS.create(e["name"]).info.sha256
                assert e["runs_as"] == create_detector(e["name"]).info.name
            assert e["version"] and e["trained_on"]
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    for e in entries:
        assert e["name"] in table


def test_describe_takes_the_first_paragraph() -> None:
    reg: Registry[int] = Registry("thing")

    @reg.register("a")
    def _a() -> int:
        """First line
        continues here.

        Details not shown."""
        return 1

    reg.register("b")(lambda: 2)
    assert reg.describe("a") == "First line continues here."
    assert reg.describe("b") == ""
    with pytest.raises(Exception, match="unknown thing"):
        reg.describe("c")


def test_each_model_states_its_role(capsys: pytest.CaptureFixture[str]) -> None:
    from fakescope.cli._models import ROLES

    assert main(["models", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert all(e["role"] in ROLES for e in entries.values())
    default = ScanConfig().detector
    assert entries[default]["role"] == "default"
    # only one default per family, and it is the one flagged default
    for e in entries.values():
        assert (e["role"] == "default") == e["default"], e["name"]
    members = DETECTORS.create(default).members  # type: ignore[attr-defined]
    for member in members:
        name = member.info.resolved_from or member.info.name
        assert entries[name]["role"] == "member of the default"
        twin = DETECTORS.float_twin(name)
        if twin is not None:
            assert entries[twin]["role"] == "float twin of a member"
    twin = DETECTORS.float_twin(default)
    if twin is not None:
        assert entries[twin]["role"] == "float twin of the default"
    assert entries["oneclass-vae-v1"]["role"] == "baseline"
    assert entries["sbi-realsonly-v1"]["role"] == "alternative"
    assert entries["sbi-realsonly-v3"]["role"] == "alternative"
    assert entries["cnn-v3"]["role"] == "float twin of the default"
    # a network shipped only for another model's sake says whose
    embedders = {n: e["embedder_of"] for n, e in entries.items() if e["role"] == "embedder"}
    assert embedders == {"effnet-lite0-v3": ["attrib-v1"]}
    for head in ATTRIBUTORS.names():
        used = ATTRIBUTORS.create(head).embedder.info
        assert head in entries[used.resolved_from or used.name]["embedder_of"]
    # earlier generations are not in the catalogue (CHANGELOG.md); no line calls itself the
    # default but the default's
    for old in ("effnet-lite0-ffpp", "effnet-lite0-v2", "fused-v3-int8", "cnn-v1", "freq-v1"):
        assert old not in entries
    for e in entries.values():
        if e["role"] != "default":
            assert not e["looks_for"].lower().startswith("the default"), e["name"]
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "member of the default" in table and "embedder of attrib-v1" in table


def test_a_declared_role_must_be_known() -> None:
    reg: Registry[int] = Registry("thing")
    with pytest.raises(ValueError, match="role"):
        reg.register("x", role="favourite")
    with pytest.raises(ValueError, match="role"):
        reg.register("z", role="previous")  # earlier generations leave the package instead
    reg.register("y", role="baseline")(lambda: 1)
    assert reg.declared_role("y") == "baseline" and reg.declared_role("x") is None

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

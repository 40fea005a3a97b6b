"""Track evidence models in the scan (issue 12 item 2): the registry contract, the shipped
cues + SVM model on a real clip, and failure isolation."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fakescope.cli import main
from fakescope.config import ScanConfig
from fakescope.errors import ConfigError
from fakescope.inference import Scanner
from fakescope.inference._evidence import track_evidence
from fakescope.models import EVIDENCE_MODELS, create_evidence_model
from fakescope.types import Evidence, FaceBox, Label, ModelInfo, Track, TrackVerdict

BASE = ScanConfig(synthesis_detector=None, num_frames=12)


@pytest.mark.parametrize("name", EVIDENCE_MODELS.names())
def test_every_evidence_model_honours_the_contract(name: str, face_clip: Path) -> None:
    model = create_evidence_model(name)
    assert model.info.name == name and model.info.sha256
    assert EVIDENCE_MODELS.describe(name)
    verdict = Scanner(dataclasses.replace(BASE, evidence=(name,))).scan(face_clip)
    assert verdict.tracks
    for track in verdict.tracks:
        (ev,) = track.evidence
        assert ev.name == name and ev.model == model.info
        assert ev.fake_probability is not None and 0.0 <= ev.fake_probability <= 1.0
        assert ev.summary and all(isinstance(f, str) and f for f in ev.findings)
        assert all(np.isfinite(v) for v in ev.values.values())
    assert verdict.timings_ms["evidence"] > 0.0
    faces = verdict.to_dict()["faces"]
    assert faces[0]["evidence"][0]["name"] == name


def test_evidence_does_not_change_the_face_verdict(face_clip: Path) -> None:
    plain = Scanner(BASE).scan(face_clip)
    with_cues = Scanner(dataclasses.replace(BASE, evidence=("cues-svm-v1",))).scan(face_clip)
    assert with_cues.fake_probability == plain.fake_probability
    assert with_cues.label is plain.label
    assert all(t.evidence == () for t in plain.tracks)


def test_cues_read_the_blinks_and_name_unusual_ones(face_clip: Path) -> None:
    v = Scanner(dataclasses.replace(BASE, evidence=("cues-svm-v1",))).scan(face_clip)
    values = v.tracks[0].evidence[0].values
    assert {"blinks_per_10s", "jitter", "blur_log_ratio"} <= set(values)
    # the clip moves one still photo: its eyes never close, and that is what stands out
    assert values["blinks_per_10s"] == 0.0
    findings = v.tracks[0].evidence[0].findings
    assert any(f.startswith("eye opening barely changes") for f in findings), findings


class _Broken:
    info = ModelInfo("broken", "0" * 64)

    def observe(self, image: Any, face: FaceBox) -> Any:
        return 1

    def assess(self, observations: Sequence[Any], times_s: Sequence[float]) -> Evidence:
        raise ValueError("nothing to read")


def test_a_failing_model_gives_evidence_without_a_score() -> None:
    face = FaceBox(0, (0.0, 0.0, 10.0, 10.0), 0.9, np.zeros((5, 2), np.float32))
    track = Track(0, (face,))
    verdict = TrackVerdict(0, 0.7, Label.FAKE, (), 0.8)
    (out,) = track_evidence([_Broken()], [track], [verdict], {(0, id(face)): 1}, {0: 0.0})
    (ev,) = out.evidence
    assert ev.fake_probability is None and "nothing to read" in ev.summary
    assert out.fake_probability == 0.7 and out.label is Label.FAKE


def test_unknown_evidence_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown evidence model"):
        Scanner(dataclasses.replace(BASE, evidence=("nope",)))
    with pytest.raises(ConfigError):
        ScanConfig(evidence="cues-svm-v1")  # type: ignore[arg-type]


def test_cli_scan_shows_evidence_and_eval_reports_it(
    face_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(face_clip), "--evidence", "cues-svm-v1", "--no-synthesis", "--frames", "12"]
    assert main(["scan", *args, "--json"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["faces"][0]["evidence"][0]["name"] == "cues-svm-v1"
    assert main(["scan", *args]) == 0
    assert "cues-svm-v1" in capsys.readouterr().out

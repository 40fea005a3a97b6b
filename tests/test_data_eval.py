"""Data test: ``fakescope eval`` on ../shared/data (skips when absent). Prints the report's
headline table; pins no figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakescope.cli import main
from fakescope.models import DEFAULT_DETECTOR

pytestmark = pytest.mark.data


def test_eval_ffpp_videos_and_crop_test_split(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(
        [
            "eval",
            str(shared_data / "ffpp_c40_videos"),
            str(shared_data / "ffpp_face_crops"),
            "--split",
            "test",
            "--bootstrap",
            "300",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    payload = json.loads((out / "metrics.json").read_text())
    per_dataset = payload["metrics"][DEFAULT_DETECTOR]
    assert len(per_dataset) == 2
    for entry in per_dataset.values():
        auc = entry["video"]["auc"]
        assert auc["low"] <= auc["value"] <= auc["high"]
    assert (out / "scores.csv").stat().st_size > 0
    assert (out / "index.html").read_text().count("<img") >= 4
    headline = (out / "report.md").read_text().split("## Headline")[1].split("##")[0]
    with capsys.disabled():
        print("\n" + headline.strip())
    assert DEFAULT_DETECTOR in printed

"""ScoreTable I/O, abstain policy, report writing and ``fakescope eval`` on a tiny folder."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from fakescope.cli import main
from fakescope.errors import ConfigError, InputError
from fakescope.evaluation import (
    MEDIA_LEVEL,
    ScoreRow,
    ScoreTable,
    compute_metrics,
    curve_displays,
    item_scores,
    write_report,
)


def _table(seed: int = 0, n: int = 40) -> ScoreTable:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        method = "real" if label == 0 else ("Deepfakes" if i % 4 == 1 else "FaceSwap")
        media = f"m{i}"
        frame_scores = np.clip(rng.normal(0.35 + 0.3 * label, 0.15, 4), 0, 1)
        for k, sc in enumerate(frame_scores):
            rows.append(ScoreRow(media, 0, k, "det-a", float(sc), label, method, "toy"))
        rows.append(
            ScoreRow(
                media,
                MEDIA_LEVEL,
                MEDIA_LEVEL,
                "det-a",
                float(frame_scores.mean()),
                label,
                method,
                "toy",
            )
        )
    rows.append(
        ScoreRow(
            "bad", MEDIA_LEVEL, MEDIA_LEVEL, "det-a", float("nan"), 1, "FaceSwap", "toy", "no_face"
        )
    )
    return ScoreTable(rows)


def test_score_table_round_trip(tmp_path: Path) -> None:
    table = _table()
    loaded = ScoreTable.load(table.save(tmp_path / "s.csv"))
    assert len(loaded) == len(table)
    for a, b in zip(table.rows, loaded.rows, strict=True):
        assert a.media_id == b.media_id and a.label == b.label and a.status == b.status
        assert (math.isnan(a.score) and math.isnan(b.score)) or a.score == pytest.approx(b.score)
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a score table"):
        ScoreTable.load(tmp_path / "junk.csv")


def test_frame_scores_take_the_worst_face_per_frame() -> None:
    rows = [
        ScoreRow("v", 0, 3, "d", 0.2, 1, "x", "t"),
        ScoreRow("v", 1, 3, "d", 0.9, 1, "x", "t"),
        ScoreRow("v", 0, 4, "d", 0.1, 1, "x", "t"),
    ]
    y, s, groups, _ = ScoreTable(rows).frame_scores()
    assert s.tolist() == [0.9, 0.1] and groups == ["v", "v"] and y.tolist() == [1, 1]


def test_abstain_policy_counts_against_the_detector() -> None:
    rows = _table().media_rows()
    y, s, _, _, abstained = item_scores(rows, "worst")
    assert abstained == 1 and len(y) == 41
    assert s[-1] == 0.0 and y[-1] == 1  # an abstained fake counts as missed
    y2, _, _, _, abstained2 = item_scores(rows, "exclude")
    assert abstained2 == 1 and len(y2) == 40
    with pytest.raises(ConfigError):
        item_scores(rows, "ignore")


def test_metrics_and_report(tmp_path: Path) -> None:
    table = _table()
    metrics = compute_metrics(table, n_boot=50)
    entry = metrics["det-a"]["toy"]
    assert entry["items"] == 41 and entry["abstained"] == 1
    auc = entry["video"]["auc"]
    assert 0.5 < auc["value"] <= 1.0 and auc["low"] <= auc["value"] <= auc["high"]
    assert set(entry["per_method"]) == {"Deepfakes", "FaceSwap"}
    assert "auc" in entry["frame"]
    paths = write_report(tmp_path / "r", table, [], metrics)
    saved = json.loads(paths["metrics"].read_text())
    assert saved["abstain_policy"] == "worst"
    assert "| det-a | toy | 41 | 1 |" in paths["report"].read_text()
    html = paths["index"].read_text()
    for fig in ("roc__toy.png", "det__toy.png", "hist__toy__det-a.png"):
        assert (tmp_path / "r" / "figures" / fig).read_bytes()[:4] == b"\x89PNG"
        assert fig in html


def test_eval_cli_on_a_generic_folder(
    tmp_path: Path,
    face_clip: Path,
    face_image: Path,
    hostile_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "data"
    (root / "real").mkdir(parents=True)
    (root / "fake" / "Toy").mkdir(parents=True)
    shutil.copy(face_clip, root / "real" / "a.mp4")
    shutil.copy(face_image, root / "real" / "b.jpg")
    shutil.copy(face_image, root / "fake" / "Toy" / "c.jpg")
    shutil.copy(hostile_dir / "text.mp4", root / "fake" / "Toy" / "d.mp4")
    out = tmp_path / "report"
    code = main(
        [
            "eval",
            str(root),
            "--dataset",
            "folder",
            "--out",
            str(out),
            "--bootstrap",
            "20",
            "--frames",
            "4",
            "--no-figures",
        ]
    )
    assert code == 0
    payload = json.loads((out / "metrics.json").read_text())
    from fakescope.models import DEFAULT_DETECTOR

    (entry,) = payload["metrics"][DEFAULT_DETECTOR].values()
    assert entry["items"] == 4 and entry["abstained"] == 1
    faces = [f for f in payload["failures"] if f["detector"] == DEFAULT_DETECTOR]
    assert [f["status"] for f in faces] == ["unsupported"]
    # the whole-image synthesis detector is reported beside it, and could not read d.mp4 either
    synth = [f for f in payload["failures"] if f["detector"].startswith("synthesis:")]
    assert [(f["media_id"], f["status"]) for f in synth] == [(faces[0]["media_id"], "unsupported")]
    # recompute from the saved scores without running any model
    again = tmp_path / "again"
    assert (
        main(
            [
                "eval",
                "--from-scores",
                str(out / "scores.csv"),
                "--out",
                str(again),
                "--bootstrap",
                "20",
                "--no-figures",
            ]
        )
        == 0
    )
    assert json.loads((again / "metrics.json").read_text())["metrics"] == payload["metrics"]
    capsys.readouterr()


def test_per_compression_breakdown_when_levels_differ() -> None:
    rows = []
    rng = np.random.default_rng(1)
    for i in range(40):
        label = i % 2
        level = "c23" if i < 20 else "c40"
        rows.append(
            ScoreRow(
                f"m{i}",
                MEDIA_LEVEL,
                MEDIA_LEVEL,
                "d",
                float(rng.random()),
                label,
                "real" if label == 0 else "X",
                "toy",
                "ok",
                level,
            )
        )
    entry = compute_metrics(ScoreTable(rows), n_boot=20)["d"]["toy"]
    assert set(entry["per_compression"]) == {"c23", "c40"}
    assert compute_metrics(_table(), n_boot=20)["det-a"]["toy"]["per_compression"] == {}


def test_side_by_side_curves_show_each_detector() -> None:
    rows = list(_table(0).rows)
    rows += [dataclasses.replace(r, detector="det-b", score=1.0 - r.score) for r in rows]
    roc, det = curve_displays(ScoreTable(rows), "toy")
    for display in (roc, det):
        curves = [ln for ln in display.ax_.get_lines() if str(ln.get_label()).startswith("det-")]
        assert len(curves) == 2, [ln.get_label() for ln in display.ax_.get_lines()]
        a, b = (np.asarray(ln.get_xydata()) for ln in curves)
        assert a.shape != b.shape or not np.allclose(a, b)


def _low_score_table() -> ScoreTable:
    """Five reals and five fakes, every score in (0.2, 0.45); one face per item and frame."""
    reals = [0.22, 0.25, 0.28, 0.32, 0.35]
    fakes = [0.27, 0.33, 0.38, 0.41, 0.44]
    rows = []
    for i, (label, score) in enumerate([(0, s) for s in reals] + [(1, s) for s in fakes]):
        method = "real" if label == 0 else "X"
        rows.append(ScoreRow(f"m{i}", 0, 0, "d", score, label, method, "toy"))
        rows.append(ScoreRow(f"m{i}", MEDIA_LEVEL, MEDIA_LEVEL, "d", score, label, method, "toy"))
    return ScoreTable(rows)


def test_metrics_use_each_detectors_decision_threshold_and_costs() -> None:
    from fakescope.evaluation import min_dcf

    table = _low_score_table()
    decision = {
        "threshold": 0.3,
        "cost_miss": 2.0,
        "cost_false_alarm": 1.0,
        "prior_fake": 0.5,
        "rule": "fixed threshold from the weight config",
        "calibrated": False,
    }
    entry = compute_metrics(table, n_boot=0, decisions={"d": decision})["d"]["toy"]
    # at 0.3: reals 0.32, 0.35 are false alarms (P_fa 2/5); fake 0.27 is missed (P_miss 1/5)
    # cost 2*0.5*0.2 + 1*0.5*0.4 = 0.4, normalised by min(2*0.5, 1*0.5) = 0.5 -> 0.8
    for level in ("video", "frame"):
        assert entry[level]["act_dcf"]["value"] == pytest.approx(0.8)
        assert entry[level]["accuracy"]["value"] == pytest.approx(0.7)
    y, s, _, _, _ = item_scores(table.media_rows())
    assert entry["video"]["min_dcf"]["value"] == pytest.approx(min_dcf(y, s, 2.0, 1.0, 0.5)[0])
    assert entry["decision"] == decision  # recorded whole, extra fields included
    # at 0.5 everything is called real: every fake missed -> 2*0.5*1/0.5 = 2.0, accuracy 0.5
    at_half = compute_metrics(table, n_boot=0, decisions={"d": {**decision, "threshold": 0.5}})
    assert at_half["d"]["toy"]["video"]["act_dcf"]["value"] == pytest.approx(2.0)
    assert at_half["d"]["toy"]["video"]["accuracy"]["value"] == pytest.approx(0.5)
    # the keyword fallback for callers without decisions: same numbers, recorded too
    plain = compute_metrics(table, n_boot=0, threshold=0.3, c_miss=2.0)["d"]["toy"]
    assert plain["video"]["act_dcf"]["value"] == pytest.approx(0.8)
    assert plain["decision"]["threshold"] == 0.3 and plain["decision"]["cost_miss"] == 2.0
    with pytest.raises(ValueError, match="no decision for detector 'd'"):
        compute_metrics(table, n_boot=0, decisions={"other": decision})
    with pytest.raises(ValueError, match="either decisions or"):
        compute_metrics(table, n_boot=0, decisions={"d": decision}, threshold=0.3)


def test_eval_costs_set_the_scan_decision_and_from_scores_reuses_it(
    tmp_path: Path, face_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakescope.decision import bayes_threshold
    from fakescope.evaluation import dcf
    from fakescope.models import DEFAULT_DETECTOR

    root = tmp_path / "data"
    (root / "real").mkdir(parents=True)
    (root / "fake" / "Toy").mkdir(parents=True)
    shutil.copy(face_image, root / "real" / "a.jpg")
    shutil.copy(face_image, root / "fake" / "Toy" / "b.jpg")
    out = tmp_path / "report"
    common = ["--bootstrap", "0", "--no-figures"]
    argv = ["eval", str(root), "--dataset", "folder", "--out", str(out), "--cost-miss", "9"]
    assert main([*argv, *common]) == 0
    payload = json.loads((out / "metrics.json").read_text())
    decision = payload["decisions"][DEFAULT_DETECTOR]
    assert decision["threshold"] == pytest.approx(bayes_threshold(9.0, 1.0, 0.5)) == 0.1
    assert decision["cost_miss"] == 9.0 and decision["calibrated"] is True
    assert "cost" in decision["rule"] and payload["config"]["scan"]["cost_miss"] == 9.0
    (entry,) = payload["metrics"][DEFAULT_DETECTOR].values()
    assert entry["decision"] == decision
    table = ScoreTable.load(out / "scores.csv")
    y, s, _, _, _ = item_scores(table.select(detector=DEFAULT_DETECTOR).media_rows())
    assert entry["video"]["act_dcf"]["value"] == pytest.approx(dcf(y, s, 0.1, 9.0, 1.0, 0.5))
    report = (out / "report.md").read_text()
    assert "at threshold 0.100" in report and "miss 9" in report and "scanners" in report
    assert "at threshold 0.100" in (out / "index.html").read_text()

    # --from-scores takes the decisions saved beside scores.csv (default costs would give 0.5)
    again = tmp_path / "again"
    scores = str(out / "scores.csv")
    assert main(["eval", "--from-scores", scores, "--out", str(again), *common]) == 0
    reused = json.loads((again / "metrics.json").read_text())
    assert reused["decisions"] == payload["decisions"]
    assert reused["metrics"] == payload["metrics"]
    assert "saved" in reused["decision_source"]
    assert "at threshold 0.100" in (again / "report.md").read_text()

    # without a metrics.json beside it, the decision is rebuilt from the detector (no scan)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(out / "scores.csv", bare / "scores.csv")
    rebuilt_out = tmp_path / "rebuilt"
    argv = ["eval", "--from-scores", str(bare / "scores.csv"), "--out", str(rebuilt_out)]
    assert main([*argv, *common]) == 0
    rebuilt = json.loads((rebuilt_out / "metrics.json").read_text())
    assert rebuilt["decisions"][DEFAULT_DETECTOR]["threshold"] == pytest.approx(0.5)
    assert "rebuilt" in rebuilt["decision_source"]
    # explicit flags win over the saved decisions: --threshold shows up as the decision
    forced = tmp_path / "forced"
    argv = ["eval", "--from-scores", scores, "--out", str(forced), "--threshold", "0.3"]
    assert main([*argv, *common]) == 0
    decision = json.loads((forced / "metrics.json").read_text())["decisions"][DEFAULT_DETECTOR]
    assert decision["threshold"] == pytest.approx(0.3) and "--threshold" in decision["rule"]
    capsys.readouterr()


def test_eval_from_scores_without_a_decision_for_an_unknown_detector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = _low_score_table().save(tmp_path / "scores.csv")
    argv = ["eval", "--from-scores", str(scores), "--out", str(tmp_path / "r"), "--no-figures"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no saved decision for detector 'd'" in err[0]


def test_verdict_rows_keep_raw_scores_and_the_compression_level() -> None:
    from fakescope.data import MediaItem
    from fakescope.evaluation import verdict_rows
    from fakescope.types import CropScore, Label, Status, TrackVerdict, Verdict

    item = MediaItem("ffpp/Deepfakes/c40/000_003", Path("x.mp4"), "fake", "ffpp", "Deepfakes",
                     ("000", "003"), None, "c40")  # fmt: skip
    frames = (CropScore(0, 3, 0.1, (0, 0, 1, 1), 0.7, 0.4),)
    track = TrackVerdict(0, 0.8, Label.FAKE, frames, 0.4)
    verdict = Verdict("x.mp4", Status.OK, "ok", 0.8, Label.FAKE, (track,), raw_score=0.4)
    media, crop = verdict_rows(item, "d", verdict)
    assert (media.score, media.raw_score, media.compression) == (0.8, 0.4, "c40")
    assert (crop.score, crop.raw_score, crop.compression) == (0.7, 0.4, "c40")

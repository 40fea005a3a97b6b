"""Calibrators follow the scikit-learn estimator contract and round-trip through JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from fakescope.calibration import IsotonicCalibrator, LogitCalibrator, calibrator_from_dict
from fakescope.evaluation import expected_calibration_error


def _overconfident(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    true_logit = rng.normal(0, 1, n) + (2 * y - 1) * 0.8
    p = 1 / (1 + np.exp(-3.0 * true_logit))  # three times too sharp
    return p, y


@pytest.mark.parametrize("cls", [LogitCalibrator, IsotonicCalibrator])
def test_calibration_reduces_ece_and_round_trips(cls: type) -> None:
    p, y = _overconfident()
    p_test, y_test = _overconfident(seed=1)
    cal = cls().fit(p, y)
    before = expected_calibration_error(y_test, p_test)
    after = expected_calibration_error(y_test, cal.predict_proba(p_test)[:, 1])
    assert after < before / 2
    again = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_allclose(again.predict_proba(p_test), cal.predict_proba(p_test))
    assert clone(cal).get_params() == cal.get_params()


def test_logit_calibrator_learns_the_temperature() -> None:
    p, y = _overconfident(20000)
    cal = LogitCalibrator().fit(p, y)
    # classes are N(+-0.8, 1) in z, so the true log-odds are 1.6 z while logit(p) = 3 z
    assert cal.a_ == pytest.approx(1.6 / 3, abs=0.05)
    assert cal.b_ == pytest.approx(0.0, abs=0.1)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="both classes"):
        LogitCalibrator().fit([0.2, 0.3], [1, 1])
    with pytest.raises(ValueError, match="probabilities"):
        IsotonicCalibrator().fit([0.2, 1.3], [0, 1])


def test_balanced_calibration_removes_the_calibration_set_prior() -> None:
    """Same class-conditional scores, 4x more fakes: the balanced fit gives the equal-prior
    posterior (0.5 where both classes are equally likely); the unbalanced one adds the set's
    prior (about 0.8 there)."""
    from scipy.special import expit

    from fakescope.calibration import IsotonicCalibrator, LogitCalibrator

    rng = np.random.default_rng(0)
    real = expit(rng.normal(-1.0, 1.0, 2000))
    fake = expit(rng.normal(1.0, 1.0, 8000))
    X, y = np.concatenate([real, fake]), np.r_[np.zeros(2000), np.ones(8000)].astype(int)
    midpoint = np.array([0.5])  # logit 0: equal likelihood under both classes
    assert LogitCalibrator().fit(X, y).predict_proba(midpoint)[0, 1] == pytest.approx(0.5, abs=0.03)
    unbalanced = LogitCalibrator(balanced=False).fit(X, y).predict_proba(midpoint)[0, 1]
    assert unbalanced == pytest.approx(0.8, abs=0.03)
    iso = IsotonicCalibrator().fit(X, y).predict_proba(midpoint)[0, 1]
    assert iso == pytest.approx(0.5, abs=0.08)


def test_temperature_calibrator_has_no_bias_and_stores_as_logit() -> None:
    from fakescope.calibration import TemperatureCalibrator

    p, y = _overconfident(20000)
    cal = TemperatureCalibrator().fit(p, y)
    assert cal.b_ == 0.0
    assert cal.a_ == pytest.approx(1.6 / 3, abs=0.05)  # as LogitCalibrator's slope here
    assert cal.predict_proba([0.5])[0, 1] == pytest.approx(0.5)  # no bias: 0.5 stays 0.5
    stored = cal.to_dict()
    assert stored == {"kind": "logit", "a": cal.a_, "b": 0.0}
    again = calibrator_from_dict(stored)
    np.testing.assert_allclose(again.predict_proba(p), cal.predict_proba(p))
    with pytest.raises(ValueError, match="do not rise"):
        TemperatureCalibrator().fit(1 - p, y)


def test_identity_calibrator_fits_nothing() -> None:
    from fakescope.calibration import IdentityCalibrator

    p, y = _overconfident(200)
    cal = IdentityCalibrator().fit(p, y)
    assert cal.to_dict() == {"kind": "logit", "a": 1.0, "b": 0.0}
    np.testing.assert_allclose(cal.predict_proba(p)[:, 1], p, atol=1e-9)
    with pytest.raises(ValueError, match="both classes"):
        IdentityCalibrator().fit([0.2, 0.3], [1, 1])


def test_a_stored_calibrator_may_say_what_it_was_fitted_on_and_nothing_else() -> None:
    from fakescope.errors import ConfigError

    logit = {"kind": "logit", "a": 1.2, "b": -0.3}
    seen = {"data": "24 clips", "videos": 24, "real": 7, "fake": 17}
    cal = calibrator_from_dict({**logit, "fitted_on": seen})
    assert cal.predict_proba([0.5])[0, 1] == pytest.approx(1 / (1 + np.exp(0.3)))
    iso = {"kind": "isotonic", "x": [0.0, 1.0], "y": [0.1, 0.9], "fitted_on": seen}
    assert calibrator_from_dict(iso).predict_proba([0.5])[0, 1] == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="unknown keys in a logit calibrator: c"):
        calibrator_from_dict({**logit, "c": 1.0})
    with pytest.raises(ConfigError, match="fitted_on"):
        calibrator_from_dict({**logit, "fitted_on": "24 clips"})


def _video_table(tmp_path: Path, n_real: int = 12, n_fake: int = 24) -> tuple[Path, Path]:
    """A scores.csv of one detector: ``n_real + n_fake`` videos (4 crops each, raw video
    aggregates over-confident: 4x the true log-odds), two photos (one crop), and a manifest
    whose identities put the videos in 6 identity groups."""
    from fakescope.data import MediaItem, write_manifest
    from fakescope.evaluation import MEDIA_LEVEL, ScoreRow, ScoreTable

    rng = np.random.default_rng(0)
    rows, items = [], []
    for i in range(n_real + n_fake):
        label = int(i >= n_real)
        z = rng.normal(0, 1) + (2 * label - 1) * 0.5
        raw = float(1 / (1 + np.exp(-4.0 * z)))
        media = f"v{i:02d}"
        rows.append(
            ScoreRow(media, MEDIA_LEVEL, MEDIA_LEVEL, "d", 0.5, label, "x", "t", raw_score=raw)
        )
        for k in range(4):
            crop = float(np.clip(raw + rng.normal(0, 0.05), 0.001, 0.999))
            rows.append(ScoreRow(media, 0, k, "d", 0.5, label, "x", "t", raw_score=crop))
        tag = "fake" if label else "real"
        method = "swap" if label else "real"
        items.append(
            MediaItem(media, tmp_path / media, tag, "t", method, (f"p{i % 6}",), None, None)
        )
    for j in range(2):  # photos: an item-level row and a single crop
        rows.append(
            ScoreRow(f"ph{j}", MEDIA_LEVEL, MEDIA_LEVEL, "d", 0.5, j, "x", "t", raw_score=0.5)
        )
        rows.append(ScoreRow(f"ph{j}", 0, 0, "d", 0.5, j, "x", "t", raw_score=0.5))
    scores = ScoreTable(rows).save(tmp_path / "scores.csv")
    return scores, write_manifest(items, tmp_path / "items.tsv")


def test_calibrate_chooses_the_map_by_cross_validation_and_records_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakescope.cli import main
    from fakescope.models import WeightConfig, asset_path

    scores, manifest = _video_table(tmp_path)
    weights = tmp_path / "w.json"
    weights.write_text(asset_path("effnet_lite0_sbi.json").read_text())
    crop_before = json.loads(weights.read_text())["calibration"]["crop"]
    out = tmp_path / "cal.json"
    argv = [
        "calibrate",
        str(scores),
        "--level",
        "video",
        "--kind",
        "logit",
        "--kind",
        "temperature",
        "--kind",
        "identity",
        "--folds",
        "3",
        "--identity-groups",
        str(manifest),
        "--bootstrap",
        "100",
        "--fitted-on",
        "toy videos",
        "--out",
        str(out),
        "--weights",
        str(weights),
    ]
    assert main(argv) == 0
    payload = json.loads(out.read_text())
    report = payload["report"]["video"]
    # 38 item-level rows: the 36 videos are fitted on, the 2 photos left out (they go through
    # the crop level); the folds never split an identity group
    assert (report["items"], report["videos"], report["real"], report["fake"]) == (36, 36, 12, 24)
    assert report["photos_left_out"] == 2
    assert report["cv_groups"] == 6 and report["cv_grouped_by"] == "identity group"
    losses = {k: c["balanced_log_loss_3fold_cv"] for k, c in report["candidates"].items()}
    assert report["kind"] == min(losses, key=lambda k: losses[k])
    # over-confident raw scores: a fitted map beats none (identity) out of fold
    assert report["kind"] != "identity" and report["candidates"]["identity"]["a"] == 1.0
    assert report["ece_3fold_cv"] < report["ece_raw"]
    boot = report["bootstrap"]
    assert boot["resamples"] == 100
    assert set(boot["parameters"]) == {"logit", "temperature"}  # identity fits nothing
    assert set(boot["parameters"]["temperature"]) == {"a"}
    low, high = boot["parameters"][report["kind"]]["a"]
    assert low < report["a"] < high
    assert boot["ece_cv"][0] <= report["ece_3fold_cv"] <= boot["ece_cv"][1]
    assert 0 < boot["ece_if_calibrated"][0] < boot["ece_if_calibrated"][1]
    video = payload["calibration"]["video"]
    seen = video["fitted_on"]
    assert seen["data"] == "toy videos" and seen["videos"] == 36
    assert (seen["real"], seen["fake"]) == (12, 24)
    assert seen["map"].startswith(report["kind"])
    assert seen["chosen_by"].endswith(
        "(folds grouped by identity group) among logit, temperature, identity"
    )
    assert seen["command"].startswith(f"fakescope calibrate {scores} --level video --kind logit")
    # --weights writes the fitted level only; the crop level and every other key are kept
    stored = WeightConfig.from_json(weights)
    assert stored.calibration == {"video": video, "crop": crop_before}
    assert video["a"] < 1  # the raw aggregates were over-confident
    capsys.readouterr()
    # too few videos for the video level: refused, nothing written
    assert (
        main(
            [*argv[:2], "--level", "video", "--min-videos", "40", "--out", str(tmp_path / "x.json")]
        )
        == 2
    )
    assert "36 videos" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_calibrate_refuses_the_development_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakescope.cli import main
    from fakescope.evaluation import ScoreTable

    scores, _ = _video_table(tmp_path)
    table = ScoreTable.load(scores)
    dev = [
        dataclasses.replace(r, dataset="ffpp_c40_videos") if r.media_id == "v03" else r
        for r in table.rows
    ]
    ScoreTable(dev).save(scores)
    out = tmp_path / "cal.json"
    assert main(["calibrate", str(scores), "--folds", "3", "--out", str(out)]) == 2
    assert "ffpp_c40_videos is a development set" in capsys.readouterr().err
    assert not out.exists()
    # the other items alone (--dataset) are fine
    assert (
        main(["calibrate", str(scores), "--dataset", "t", "--folds", "3", "--out", str(out)]) == 0
    )


def test_constant_calibrator_answers_the_same_for_every_score() -> None:
    from fakescope.calibration import ConstantCalibrator
    from fakescope.errors import ConfigError

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300, dtype=int), np.ones(100, dtype=int)]
    p = rng.random(400)  # no information
    cal = ConstantCalibrator().fit(p, y)
    assert cal.p_ == pytest.approx(0.5)  # class-balanced: equal priors
    assert ConstantCalibrator(balanced=False).fit(p, y).p_ == pytest.approx(0.25)
    np.testing.assert_allclose(cal.predict_proba([0.01, 0.99])[:, 1], [0.5, 0.5])
    again = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.to_dict() == {"kind": "constant", "p": cal.p_}
    assert clone(cal).get_params() == cal.get_params()
    with pytest.raises(ConfigError, match="0 < p < 1"):
        calibrator_from_dict({"kind": "constant", "p": 1.0})
    with pytest.raises(ConfigError, match="unknown keys in a constant calibrator: a"):
        calibrator_from_dict({"kind": "constant", "p": 0.5, "a": 1.0})


def test_calibrate_refuses_a_map_that_would_invert_the_detector(tmp_path: Path) -> None:
    """Scores that fall with the fake label: Platt and temperature are refused (with why),
    the constant map is kept; asked alone, the inverting kind is an error."""
    from fakescope.cli import main
    from fakescope.evaluation import MEDIA_LEVEL, ScoreRow, ScoreTable

    rng = np.random.default_rng(1)
    rows = []
    for i in range(60):
        label = i % 2
        raw = float(np.clip(0.6 - 0.2 * label + rng.normal(0, 0.15), 0.01, 0.99))
        rows.append(
            ScoreRow(f"p{i}", MEDIA_LEVEL, MEDIA_LEVEL, "d", 0.5, label, "x", "t", raw_score=raw)
        )
        rows.append(ScoreRow(f"p{i}", 0, 0, "d", 0.5, label, "x", "t", raw_score=raw))
    scores = ScoreTable(rows).save(tmp_path / "scores.csv")
    out = tmp_path / "cal.json"
    base = ["calibrate", str(scores), "--level", "crop", "--folds", "3", "--out", str(out)]
    assert main([*base, "--kind", "logit", "--kind", "temperature", "--kind", "constant"]) == 0
    payload = json.loads(out.read_text())
    report = payload["report"]["crop"]
    assert report["kind"] == "constant" and set(report["refused"]) == {"logit", "temperature"}
    assert "invert" in report["refused"]["logit"]
    assert payload["calibration"]["crop"]["p"] == pytest.approx(0.5)
    assert "refused: logit, temperature" in payload["calibration"]["crop"]["fitted_on"]["chosen_by"]
    assert main([*base, "--kind", "logit"]) == 2

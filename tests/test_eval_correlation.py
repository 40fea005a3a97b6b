"""Correlation of detectors' scores: the pure metric, the report section and the eval printout."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from fakescope.cli import main
from fakescope.evaluation import (
    MEDIA_LEVEL,
    ScoreRow,
    ScoreTable,
    compute_metrics,
    correlation_markdown,
    score_correlation,
    score_correlations,
    write_report,
)


def _sigmoid(x: list[float]) -> list[float]:
    return [1.0 / (1.0 + math.exp(-v)) for v in x]


# ---------------------------------------------------------------------------------------------
# the pure function


def test_identical_and_mirrored_scores_correlate_perfectly() -> None:
    p = [0.1, 0.2, 0.3, 0.4, 0.9]
    same = score_correlation(p, p)
    assert same["n"] == 5
    assert same["pearson_logit"] == pytest.approx(1.0)
    assert same["spearman"] == pytest.approx(1.0)
    # logit(1 - p) = -logit(p): perfectly anti-correlated on both scales
    mirrored = score_correlation(p, [1.0 - v for v in p])
    assert mirrored["pearson_logit"] == pytest.approx(-1.0)
    assert mirrored["spearman"] == pytest.approx(-1.0)
    assert "within_real" not in same  # no labels, no within-class figures


def test_pearson_is_on_logits_and_spearman_on_ranks() -> None:
    # logits a = 0, 1, 2, 3 and b = 0, 1, 2, 10: same order (Spearman 1); Pearson by hand:
    # da = -1.5, -.5, .5, 1.5; db = -3.25, -2.25, -1.25, 6.75; dot 15.5; |da|^2 5; |db|^2 62.75
    out = score_correlation(_sigmoid([0, 1, 2, 3]), _sigmoid([0, 1, 2, 10]))
    assert out["pearson_logit"] == pytest.approx(15.5 / math.sqrt(5 * 62.75), abs=1e-6)
    assert out["spearman"] == pytest.approx(1.0)
    # logits 0, 1, 2 vs 0, 2, 1: both figures 0.5
    half = score_correlation(_sigmoid([0, 1, 2]), _sigmoid([0, 2, 1]))
    assert half["pearson_logit"] == pytest.approx(0.5)
    assert half["spearman"] == pytest.approx(0.5)


def test_spearman_averages_tied_ranks() -> None:
    # ranks a = 1, 2.5, 2.5, 4 and b = 1, 2, 3, 4: 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    a, b = [0.1, 0.2, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4]
    out = score_correlation(a, b)
    assert out["spearman"] == pytest.approx(math.sqrt(0.9))
    stats = pytest.importorskip("scipy.stats")
    assert out["spearman"] == pytest.approx(stats.spearmanr(a, b).statistic)


def test_probabilities_are_clipped_before_the_logit() -> None:
    # 0 and 1 become logit(1e-6) and logit(1 - 1e-6): finite, symmetric
    out = score_correlation([0.0, 0.5, 1.0], [0.0, 0.5, 1.0])
    assert out["pearson_logit"] == pytest.approx(1.0)
    # 0 and 1e-9 both clip to 1e-6: a vector constant after clipping has no Pearson figure
    clipped = score_correlation([0.0, 1e-9, 1e-7], [0.1, 0.2, 0.3])
    assert math.isnan(clipped["pearson_logit"])
    assert clipped["spearman"] == pytest.approx(1.0)  # the ranks still differ


def test_independent_scores_are_near_zero() -> None:
    rng = np.random.default_rng(0)
    out = score_correlation(rng.random(2000), rng.random(2000))
    assert out["n"] == 2000
    assert abs(out["pearson_logit"]) < 0.08 and abs(out["spearman"]) < 0.08


def test_constant_or_too_few_samples_give_nan_not_an_error() -> None:
    constant = score_correlation([0.3, 0.3, 0.3, 0.3], [0.1, 0.2, 0.3, 0.4])
    assert math.isnan(constant["pearson_logit"]) and math.isnan(constant["spearman"])
    two = score_correlation([0.1, 0.9], [0.2, 0.8])
    assert two["n"] == 2 and math.isnan(two["pearson_logit"]) and math.isnan(two["spearman"])
    empty = score_correlation([], [], [])
    assert empty["n"] == 0 and math.isnan(empty["spearman"])
    assert empty["within_real"]["n"] == 0 and math.isnan(empty["within_fake"]["pearson_logit"])


def test_within_class_figures_remove_the_label() -> None:
    # inside each class the two detectors are uncorrelated (dot product of deviations is 0);
    # the fakes are shifted up by 3 logits for both, so over both classes they correlate
    real_a, real_b = [-2.0, -1.0, -2.0, -1.0], [-2.0, -2.0, -1.0, -1.0]
    a = _sigmoid(real_a + [v + 3 for v in real_a])
    b = _sigmoid(real_b + [v + 3 for v in real_b])
    y = [0] * 4 + [1] * 4
    out = score_correlation(a, b, y)
    assert out["n"] == 8 and out["pearson_logit"] > 0.8
    for key in ("within_real", "within_fake"):
        assert out[key]["n"] == 4
        assert out[key]["pearson_logit"] == pytest.approx(0.0, abs=1e-9)
        assert out[key]["spearman"] == pytest.approx(0.0, abs=1e-9)
    # boolean labels are accepted; a single class leaves the other one empty (NaN)
    assert score_correlation(a, b, np.array(y, bool))["within_fake"]["n"] == 4
    only_reals = score_correlation(a[:4], b[:4], [0] * 4)
    assert only_reals["within_fake"]["n"] == 0
    assert math.isnan(only_reals["within_fake"]["spearman"])


@pytest.mark.parametrize(
    ("a", "b", "y", "match"),
    [
        ([0.1, 0.2, 0.3], [0.1, 0.2], None, "same length"),
        ([[0.1, 0.2]], [[0.1, 0.2]], None, "1-D"),
        ([0.1, float("nan"), 0.3], [0.1, 0.2, 0.3], None, "finite"),
        ([0.1, 1.5, 0.3], [0.1, 0.2, 0.3], None, r"\[0, 1\]"),
        (["x", "y", "z"], [0.1, 0.2, 0.3], None, "numeric"),
        ([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0, 1, 2], "0 \\(real\\) or 1"),
        ([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0, 1], "one per sample"),
    ],
)
def test_invalid_input_raises(a: object, b: object, y: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        score_correlation(a, b, y)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# the report


def _rows(detector: str, scores: list[float], dataset: str = "toy") -> list[ScoreRow]:
    """Item-level rows m0..m{n-1}, even items real, odd items fake; NaN = abstained."""
    rows = []
    for i, score in enumerate(scores):
        label = i % 2
        status = "ok" if not math.isnan(score) else "no_face"
        method = "real" if label == 0 else "X"
        rows.append(
            ScoreRow(
                f"m{i}", MEDIA_LEVEL, MEDIA_LEVEL, detector, score, label, method, dataset, status
            )
        )
    return rows


def _two_detector_table() -> tuple[ScoreTable, list[float]]:
    rng = np.random.default_rng(3)
    labels = np.arange(40) % 2
    a = np.clip(rng.normal(0.35 + 0.3 * labels, 0.12), 0.01, 0.99).tolist()
    # the second detector repeats the first one's mistakes in reverse: anti-correlated
    b = [1.0 - v for v in a]
    a[5] = float("nan")  # det-a abstains on a fake
    b[0] = float("nan")  # the synthesis detector abstains on a real
    rows = _rows("det-a", a) + _rows("synthesis:x", b)
    # a dataset only one detector scored: no pair there
    rows += _rows("det-a", [0.2, 0.8, 0.3, 0.7], dataset="solo")
    return ScoreTable(rows), a


def test_score_correlations_align_items_and_leave_abstentions_out() -> None:
    table, _ = _two_detector_table()
    (entry,) = score_correlations(table)
    assert (entry["detector_a"], entry["detector_b"], entry["dataset"]) == (
        "det-a",
        "synthesis:x",
        "toy",
    )
    assert entry["n"] == 38 and entry["excluded"] == 2
    assert entry["within_real"]["n"] == 19 and entry["within_fake"]["n"] == 19
    assert entry["pearson_logit"] == pytest.approx(-1.0)
    assert entry["spearman"] == pytest.approx(-1.0)
    assert entry["within_real"]["spearman"] == pytest.approx(-1.0)
    # items matched by id, not by position: shuffling one detector's rows changes nothing
    rows = list(table.rows)
    rng = np.random.default_rng(0)
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    assert score_correlations(ScoreTable(shuffled)) == [entry]


def test_score_correlations_report_a_label_mismatch_as_an_error() -> None:
    rows = _rows("a", [0.1, 0.9, 0.2, 0.8]) + _rows("b", [0.2, 0.8, 0.1, 0.9])
    rows[-1] = dataclasses.replace(rows[-1], label=0)
    (entry,) = score_correlations(ScoreTable(rows))
    assert entry["n"] == 4 and "labelled differently" in entry["error"]
    md = correlation_markdown([entry])
    assert "| a | b | toy | 4 | error: 1 item(s) labelled differently" in md


def test_report_has_a_correlation_section_with_two_detectors(tmp_path: Path) -> None:
    table, _ = _two_detector_table()
    metrics = compute_metrics(table, n_boot=0)
    paths = write_report(tmp_path / "r", table, [], metrics, figures=False)
    saved = json.loads(paths["metrics"].read_text())
    # the existing keys stay as they were
    assert {
        "abstain_policy",
        "decision_source",
        "decisions",
        "config",
        "metrics",
        "failures",
    } < set(saved)
    (entry,) = saved["correlations"]
    assert entry["detector_b"] == "synthesis:x" and entry["n"] == 38
    assert entry["pearson_logit"] < -0.99 and entry["within_fake"]["spearman"] < -0.99
    report = paths["report"].read_text()
    assert "## Detector score correlation" in report
    assert (
        "| detector A | detector B | dataset | n | Pearson (logit) | Spearman | within reals | "
        "within fakes |" in report
    )
    assert "| det-a | synthesis:x | toy | 38 | -1.000 | -1.000 | -1.000 / -1.000 (n=19) |" in report
    page = paths["index"].read_text()
    assert "Detector score correlation" in page and "<td>synthesis:x</td>" in page


def test_one_detector_report_has_no_correlation_section(tmp_path: Path) -> None:
    table = ScoreTable(_rows("det-a", [0.2, 0.8, 0.3, 0.7, 0.1, 0.6]))
    assert score_correlations(table) == [] and correlation_markdown([]) == ""
    paths = write_report(tmp_path / "r", table, [], compute_metrics(table, n_boot=0), figures=False)
    assert "correlations" not in json.loads(paths["metrics"].read_text())
    assert "correlation" not in paths["report"].read_text()
    assert "correlation" not in paths["index"].read_text()


# ---------------------------------------------------------------------------------------------
# fakescope eval --from-scores


def test_eval_from_scores_prints_and_keeps_the_correlations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table, _ = _two_detector_table()
    first = write_report(tmp_path / "r", table, [], compute_metrics(table, n_boot=0), figures=False)
    payload = json.loads(first["metrics"].read_text())
    again = tmp_path / "again"
    argv = ["eval", "--from-scores", str(first["scores"]), "--out", str(again)]
    capsys.readouterr()
    assert main([*argv, "--bootstrap", "0", "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "Score correlation between detectors" in printed
    assert "synthesis:x" in printed and "-1.000 / -1.000 (n=19)" in printed
    reread = json.loads((again / "metrics.json").read_text())
    assert reread["correlations"] == payload["correlations"]
    assert reread["decisions"] == payload["decisions"]
    assert "saved" in reread["decision_source"]

    # one detector: nothing printed about correlation
    solo = write_report(
        tmp_path / "solo",
        table.select("det-a"),
        [],
        compute_metrics(table.select("det-a"), n_boot=0),
        figures=False,
    )
    argv = ["eval", "--from-scores", str(solo["scores"]), "--out", str(tmp_path / "solo2")]
    assert main([*argv, "--bootstrap", "0", "--no-figures"]) == 0
    assert "correlation" not in capsys.readouterr().out
    assert "correlations" not in json.loads((tmp_path / "solo2" / "metrics.json").read_text())


def test_eval_raw_scores_measure_the_networks_own_outputs(tmp_path: Path) -> None:
    """A detector whose calibration is constant (every probability 0.5) ranks at chance on its
    calibrated scores; ``--raw-scores`` measures and correlates the network's own outputs, and
    leaves out rows that have none (the overall verdict)."""
    from fakescope.evaluation import MEDIA_LEVEL, ScoreRow, ScoreTable

    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        label = i % 2
        raw = float(np.clip(0.3 + 0.4 * label + rng.normal(0, 0.1), 0.01, 0.99))
        for det, raw_score in (("flat", raw), ("other", 1 - raw)):
            rows.append(
                ScoreRow(
                    f"m{i}",
                    MEDIA_LEVEL,
                    MEDIA_LEVEL,
                    det,
                    0.5,
                    label,
                    "x",
                    "t",
                    raw_score=raw_score,
                )
            )
        rows.append(
            ScoreRow(f"m{i}", MEDIA_LEVEL, MEDIA_LEVEL, "overall:flat", 0.5, label, "x", "t")
        )
    rows.append(
        ScoreRow(
            "gone", MEDIA_LEVEL, MEDIA_LEVEL, "flat", float("nan"), 1, "x", "t", status="no_face"
        )
    )
    table = ScoreTable(rows)
    raw = table.raw()
    assert raw.detectors() == ["flat", "other"]
    assert [r.status for r in raw.rows if r.media_id == "gone"] == ["no_face"]
    first = write_report(tmp_path / "r", table, [], compute_metrics(table, n_boot=0), figures=False)
    scores = first["scores"]
    common = ["--bootstrap", "0", "--no-figures"]
    assert (
        main(["eval", "--from-scores", str(scores), "--out", str(tmp_path / "cal"), *common]) == 0
    )
    cal = json.loads((tmp_path / "cal" / "metrics.json").read_text())
    assert cal["metrics"]["flat"]["t"]["video"]["auc"]["value"] <= 0.5  # ties (and one abstention)
    argv = ["eval", "--from-scores", str(scores), "--raw-scores", "--out", str(tmp_path / "raw")]
    assert main([*argv, *common]) == 0
    got = json.loads((tmp_path / "raw" / "metrics.json").read_text())
    assert set(got["metrics"]) == {"flat", "other"}
    assert got["metrics"]["flat"]["t"]["video"]["auc"]["value"] > 0.9
    assert got["metrics"]["other"]["t"]["video"]["auc"]["value"] < 0.1
    assert got["decisions"]["flat"]["threshold"] == 0.5
    assert got["decisions"]["flat"]["calibrated"] is False
    assert "--raw-scores" in got["decision_source"]
    assert got["correlations"]


def test_report_takes_more_sections_and_per_method_min_dcf(tmp_path: Path) -> None:
    """One report for issue 27: ``sections`` (e.g. ``fakescope eval --attribution``'s method
    attribution) go into report.md and index.html; the per-method table has min DCF."""
    from fakescope.evaluation import breakdown_markdown

    table, _ = _two_detector_table()
    metrics = compute_metrics(table, n_boot=0)
    per_method = breakdown_markdown(metrics)
    assert "| AUC [95% CI] | EER | min DCF |" in per_method
    cells = [line.strip("|").split("|") for line in per_method.splitlines()[2:]]
    assert cells and all(len(c) == 6 and c[-1].strip() != "n/a" for c in cells)
    body = (
        "| detector | fakes called fake | method accuracy |\n|---|---|---|\n| det-a | 3 | 0.667 |"
    )
    paths = write_report(
        tmp_path / "r", table, [], metrics, figures=False, sections=[("Method attribution", body)]
    )
    report = paths["report"].read_text()
    assert "## Method attribution\n\n| detector | fakes called fake" in report
    assert report.index("## Method attribution") < report.index("## Abstained or failed")
    page = paths["index"].read_text()
    assert "<h2>Method attribution</h2>" in page and "<td>0.667</td>" in page

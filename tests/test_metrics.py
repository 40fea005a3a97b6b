"""Detection metrics: against scikit-learn where it has them, hand-computed values otherwise."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from fakescope.evaluation._metrics import (
    MetricSummary,
    accuracy,
    average_precision,
    bayes_threshold,
    bootstrap_ci,
    breakdown,
    dcf,
    det_curve,
    eer,
    expected_calibration_error,
    log_loss,
    min_dcf,
    roc_auc,
    roc_auc_or_none,
    summarize,
)

# Worked example used by several tests. Sorted by decreasing score:
#   0.9 fake, 0.6 real, 0.5 real, 0.4 fake, 0.1 real      (2 fakes, 3 reals)
# Operating points "decide fake when s >= t":
#   t      P_fa   P_miss
#   >0.9   0      1        (reject all)
#   0.9    0      1/2
#   0.6    1/3    1/2
#   0.5    2/3    1/2
#   0.4    2/3    0
#   0.1    1      0        (accept all)
Y = np.array([0, 0, 0, 1, 1])
S = np.array([0.1, 0.5, 0.6, 0.4, 0.9])


def _gaussian(n: int, seed: int, shift: float = 1.5) -> tuple[npt.NDArray[np.int64], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int64)
    return y, rng.normal(size=n) + shift * y


# --- ranking metrics vs sklearn ---------------------------------------------------------------


def test_auc_and_ap_match_sklearn() -> None:
    y, s = _gaussian(300, 1)
    s = np.round(s, 1)  # with ties
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s))
    assert roc_auc(Y.tolist(), S.tolist()) == pytest.approx(4 / 6)


def test_auc_is_the_pairwise_rank_statistic_ties_half() -> None:
    # Mann-Whitney: the share of (fake, real) pairs the fake outranks, a tie counting 1/2
    y, s = _gaussian(300, 12)
    s = np.round(s, 1)  # many ties
    fake, real = s[y == 1], s[y == 0]
    pairs = (fake[:, None] > real[None, :]) + 0.5 * (fake[:, None] == real[None, :])
    assert roc_auc(y, s) == pytest.approx(float(pairs.mean()), abs=1e-12)


def test_roc_auc_or_none() -> None:
    y, s = _gaussian(200, 11)
    assert roc_auc_or_none(y, s) == roc_auc(y, s)
    assert roc_auc_or_none(y, s, ndigits=4) == round(roc_auc(y, s), 4)
    assert roc_auc_or_none(Y.tolist(), S.tolist(), ndigits=2) == 0.67
    # undefined (fewer than two classes, or no samples): None instead of ValueError
    assert roc_auc_or_none([1, 1, 1], [0.2, 0.5, 0.9]) is None
    assert roc_auc_or_none(np.zeros(1, np.int64), np.zeros(1, np.float32)) is None
    assert roc_auc_or_none([], []) is None
    # other invalid input still raises
    with pytest.raises(ValueError, match="same length"):
        roc_auc_or_none([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        roc_auc_or_none([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        roc_auc_or_none([0, 0], [0.1, float("nan")])


def test_det_curve_matches_roc_curve() -> None:
    y, s = _gaussian(200, 2)
    s = np.round(s, 1)
    fpr, fnr, thr = det_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    # sklearn: decreasing thresholds, first one = reject-all (inf); ours: increasing, no inf
    np.testing.assert_allclose(fpr, sk_fpr[1:][::-1])
    np.testing.assert_allclose(fnr, 1 - sk_tpr[1:][::-1])
    np.testing.assert_allclose(thr, sk_thr[1:][::-1])
    assert np.all(np.diff(thr) > 0)
    # sklearn's det_curve is a sub-sequence of ours (it drops redundant end points)
    sk_det_fpr, sk_det_fnr, sk_det_thr = skm.det_curve(y, s)
    pos = np.searchsorted(thr, sk_det_thr)
    np.testing.assert_allclose(fpr[pos], sk_det_fpr)
    np.testing.assert_allclose(fnr[pos], sk_det_fnr)


# --- EER ----------------------------------------------------------------------------------------


def test_eer_interpolates_between_operating_points() -> None:
    # reals 0.5 0.5 0.1, fakes 0.9 0.5 0.2. Operating points (decide fake when s >= t):
    #   t        P_fa  P_miss  d = P_miss - P_fa
    #   >0.9     0     1        1     (reject all)
    #   0.9      0     2/3      2/3
    #   0.5      2/3   1/3     -1/3   (the tie 0.5 moves one fake and two reals at once)
    #   0.2      2/3   0
    #   0.1      1     0
    # d changes sign between t=0.9 and t=0.5: w = (2/3) / (2/3 + 1/3) = 2/3, so
    #   EER = P_fa = 0 + 2/3 * (2/3 - 0) = 4/9   (check: P_miss = 2/3 + 2/3 * (1/3 - 2/3) = 4/9)
    #   threshold = 0.9 + 2/3 * (0.5 - 0.9) = 0.6333..
    y = [0, 0, 0, 1, 1, 1]
    s = [0.5, 0.5, 0.1, 0.9, 0.5, 0.2]
    rate, threshold = eer(y, s)
    assert rate == pytest.approx(4 / 9)
    assert threshold == pytest.approx(0.9 - 0.4 * 2 / 3)
    # The nearest-threshold shortcut picks t=0.5 (|d| = 1/3 < 2/3) and reports P_fa = 2/3,
    # P_miss = 1/3 or their mean 1/2 -- none of them is the interpolated 4/9.
    fpr, fnr, thr = det_curve(y, s)
    k = int(np.argmin(np.abs(fnr - fpr)))
    assert thr[k] == pytest.approx(0.5)
    for nearest in (fpr[k], fnr[k], (fpr[k] + fnr[k]) / 2):
        assert abs(nearest - rate) > 0.05


def test_eer_on_an_axis_aligned_segment() -> None:
    # Module example Y, S: d = +1/6 at t=0.6 and -1/6 at t=0.5, on the horizontal segment
    # (1/3, 1/2) -> (2/3, 1/2): w = 1/2, EER = 1/2, threshold = 0.55.
    assert eer(Y, S) == (pytest.approx(0.5), pytest.approx(0.55))


def test_eer_on_a_tied_diagonal_segment() -> None:
    # Scores 0.8 fake | 0.5 fake + 0.5 real (tie) | 0.2 real. Points (P_fa, P_miss):
    # t=0.8 -> (0, 1/2), t=0.5 -> (1/2, 0); the diagonal segment crosses P_fa = P_miss at its
    # midpoint: EER = 1/4, threshold = (0.8 + 0.5) / 2 = 0.65.
    rate, threshold = eer([0, 1, 0, 1], [0.2, 0.5, 0.5, 0.8])
    assert rate == pytest.approx(0.25)
    assert threshold == pytest.approx(0.65)


def test_eer_exact_crossing_and_perfect_separation() -> None:
    # 0.9 fake, 0.7 real, 0.3 fake, 0.1 real: t=0.7 gives P_fa = 1/2 = P_miss exactly.
    assert eer([1, 0, 1, 0], [0.9, 0.7, 0.3, 0.1]) == (pytest.approx(0.5), pytest.approx(0.7))
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (0.0, pytest.approx(0.8))
    assert eer([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])[0] == pytest.approx(1.0)


# --- detection cost --------------------------------------------------------------------------


def test_dcf_worked_example() -> None:
    # p_target = 0.8, c_miss = c_fa = 1: weights 0.8 on P_miss and 0.2 on P_fa.
    # At t = 0.5: P_miss = 1/2 (0.4 < 0.5), P_fa = 2/3 (0.5 and 0.6 >= 0.5)
    # C = 0.8 * 1/2 + 0.2 * 2/3 = 0.4 + 0.1333.. = 0.5333..; normaliser min(0.8, 0.2) = 0.2
    # C_norm = 2.6666..
    assert dcf(Y, S, 0.5, p_target=0.8, normalized=False) == pytest.approx(0.4 + 0.2 * 2 / 3)
    assert dcf(Y, S, 0.5, p_target=0.8) == pytest.approx(8 / 3)
    # default costs/prior: C_norm = P_miss + P_fa; at t=0.95 (reject all real scores):
    # P_miss = 1, P_fa = 0 -> 1.0, the cost of the trivial system.
    assert dcf(Y, S, 0.95) == pytest.approx(1.0)


def test_min_dcf_worked_example() -> None:
    # p_target = 0.8: C_norm(t) = (0.8 P_miss + 0.2 P_fa) / 0.2 = 4 P_miss + P_fa
    #   t=0.1 (accept all): 4*0   + 1   = 1
    #   t=0.4:              4*0   + 2/3 = 0.667   <- minimum
    #   t=0.5:              4*1/2 + 2/3 = 2.667
    #   t=0.6:              4*1/2 + 1/3 = 2.333
    #   t=0.9:              4*1/2 + 0   = 2
    #   reject all:         4*1   + 0   = 4
    cost, threshold = min_dcf(Y, S, p_target=0.8)
    assert cost == pytest.approx(2 / 3)
    assert threshold == pytest.approx(0.4)
    assert min_dcf(Y, S, p_target=0.8, normalized=False)[0] == pytest.approx(0.2 * 2 / 3)
    # p_target = 0.5: C_norm = P_miss + P_fa -> 1, 2/3, 7/6, 5/6, 1/2, 1 -> 1/2 at t=0.9
    assert min_dcf(Y, S) == (pytest.approx(0.5), pytest.approx(0.9))
    # c_fa huge: every false alarm is ruinous -> reject all (threshold inf), normalised cost 1
    top_real = ([0, 1, 0, 1], [0.9, 0.8, 0.1, 0.2])  # every threshold <= 0.9 has P_fa >= 1/2
    assert min_dcf(*top_real, c_fa=100.0, p_target=0.9) == (pytest.approx(1.0), math.inf)
    # the minimum is never above the actual cost at any observed threshold
    for t in S:
        assert min_dcf(Y, S, p_target=0.3)[0] <= dcf(Y, S, t, p_target=0.3) + 1e-12


def test_bayes_threshold() -> None:
    assert bayes_threshold(1.0, 1.0, 0.5) == pytest.approx(0.5)
    # c_fa (1 - p) / (c_miss p + c_fa (1 - p)) = 1*0.99 / (10*0.01 + 0.99) = 0.99 / 1.09
    assert bayes_threshold(10.0, 1.0, 0.01) == pytest.approx(0.99 / 1.09)
    with pytest.raises(ValueError, match="p_target"):
        bayes_threshold(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="costs"):
        bayes_threshold(0.0, 1.0, 0.5)


def test_bayes_threshold_minimises_cost_on_calibrated_scores() -> None:
    # Balanced classes with scores = exact posteriors under equal priors: the Bayes threshold
    # attains (close to) min DCF at the given operating point.
    rng = np.random.default_rng(3)
    n = 4000
    y = np.r_[np.zeros(n, np.int64), np.ones(n, np.int64)]
    llr = rng.normal(size=2 * n) + 2.0 * y - 1.0  # N(+-1, 1) -> LLR = 2x
    p = 1.0 / (1.0 + np.exp(-2.0 * llr))
    t = bayes_threshold(1.0, 1.0, 0.2)
    assert dcf(y, p, t, p_target=0.2) == pytest.approx(min_dcf(y, p, p_target=0.2)[0], abs=0.03)


# --- threshold and calibration metrics ---------------------------------------------------------


def test_accuracy_and_log_loss_match_sklearn() -> None:
    y, s = _gaussian(200, 4)
    p = 1.0 / (1.0 + np.exp(-s))
    assert accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p >= 0.5))
    assert accuracy(Y, S, threshold=0.45) == pytest.approx(2 / 5)  # right on 0.1 and 0.9
    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, p))
    # clipping: a confident mistake costs -log(eps), not inf
    assert log_loss([1], [0.0], eps=1e-12) == pytest.approx(-math.log(1e-12))


def test_ece_tiny_example() -> None:
    # 2 bins [0, .5) and [.5, 1]:
    #   bin 0: p = .1 .3 .4 (mean .2667), y = 0 0 1 (mean .3333): gap .0667, weight 3/5 -> .04
    #   bin 1: p = .7 .9    (mean .8),    y = 1 1   (mean 1):     gap .2,    weight 2/5 -> .08
    # ECE = .12
    y = [0, 0, 1, 1, 1]
    p = [0.1, 0.3, 0.4, 0.7, 0.9]
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.12)
    # p = 1.0 lands in the last bin; perfectly calibrated bins give 0
    assert expected_calibration_error([0, 1, 1, 1], [0.5, 0.5, 1.0, 1.0], n_bins=2) == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([0, 1], [0.2, 1.2])


def test_balanced_ece_weighs_both_classes_alike() -> None:
    # y = 0 0 0 1, p = .1 .2 .6 .9, 2 bins; weights: each real 1/6, the fake 1/2
    #   bin 0: p .1 .2 (reals): weight 1/3, weighted means p .15, y 0 -> gap .15 * 1/3 = .05
    #   bin 1: p .6 (real) .9 (fake): weight 2/3, means p .825, y .75 -> .075 * 2/3 = .05
    # balanced ECE = .1 (the ordinary ECE: .15 * 2/4 + .25 * 2/4 = .2)
    y, p = [0, 0, 0, 1], [0.1, 0.2, 0.6, 0.9]
    assert expected_calibration_error(y, p, n_bins=2, balanced=True) == pytest.approx(0.1)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.2)
    # the class ratio does not matter: three copies of every real change nothing
    y3, p3 = [0] * 9 + [1], [0.1, 0.2, 0.6] * 3 + [0.9]
    assert expected_calibration_error(y3, p3, n_bins=2, balanced=True) == pytest.approx(0.1)
    # equal class counts, or one class only: every weight is 1/N, the ordinary ECE
    rng = np.random.default_rng(3)
    yy, pp = np.repeat([0, 1], 50), rng.uniform(size=100)
    assert expected_calibration_error(yy, pp, 10, balanced=True) == pytest.approx(
        expected_calibration_error(yy, pp, 10)
    )
    assert expected_calibration_error([1, 1], [0.2, 0.7], 2, balanced=True) == pytest.approx(
        expected_calibration_error([1, 1], [0.2, 0.7], 2)
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([0, 1], [0.2, 1.2], balanced=True)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        roc_auc,
        average_precision,
        det_curve,
        eer,
        lambda y, s: dcf(y, s, 0.5),
        min_dcf,
        lambda y, s: summarize(y, s, n_boot=0),
    ],
)
def test_single_class_raises(fn: object) -> None:
    with pytest.raises(ValueError, match="both classes"):
        fn([1, 1, 1], [0.2, 0.5, 0.9])  # type: ignore[operator]
    with pytest.raises(ValueError, match="both classes"):
        fn([0, 0], [0.2, 0.5])  # type: ignore[operator]


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="same length"):
        roc_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        eer([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
    assert roc_auc([False, True], [0.1, 0.2]) == 1.0


# --- bootstrap ---------------------------------------------------------------------------------


def test_bootstrap_ci_contains_point_and_shrinks() -> None:
    y, s = _gaussian(100, 5)
    point, low, high = bootstrap_ci(roc_auc, y, s, n_boot=200, seed=1)
    assert point == pytest.approx(roc_auc(y, s))
    assert low <= point <= high
    y_big, s_big = _gaussian(2000, 6)
    p_big, lo_big, hi_big = bootstrap_ci(roc_auc, y_big, s_big, n_boot=200, seed=1)
    assert lo_big <= p_big <= hi_big
    assert (hi_big - lo_big) < 0.5 * (high - low)
    # reproducible with the same seed
    assert bootstrap_ci(roc_auc, y, s, n_boot=200, seed=1) == (point, low, high)


def test_bootstrap_seed_sequence_is_a_plain_percentile_bootstrap() -> None:
    # seed may be a sequence (numpy.random.default_rng's own seeding): the same draws as a
    # hand-written loop that skips single-class resamples and takes the 2.5 / 97.5 percentiles
    y, s = _gaussian(60, 9)
    point, low, high = bootstrap_ci(roc_auc, y, s, n_boot=300, seed=[4, 13])
    rng = np.random.default_rng([4, 13])
    values = []
    for _ in range(300):
        k = rng.integers(0, len(y), len(y))
        if 0 < y[k].sum() < len(k):
            values.append(skm.roc_auc_score(y[k], s[k]))
    assert point == roc_auc(y, s)
    assert [low, high] == pytest.approx(np.percentile(values, [2.5, 97.5]).tolist(), abs=1e-12)
    assert (low, high) != bootstrap_ci(roc_auc, y, s, n_boot=300, seed=4)[1:]


def test_cluster_bootstrap_with_groups() -> None:
    # 40 "videos" of 10 frames; frames of one video share the video's label and most of its
    # score, so the frames are strongly correlated: the cluster interval must be wider.
    rng = np.random.default_rng(7)
    video_label = rng.integers(0, 2, 40)
    video_score = rng.normal(size=40) + video_label
    groups = np.repeat(np.arange(40), 10)
    y = video_label[groups]
    s = video_score[groups] + 0.05 * rng.normal(size=400)
    point, low, high = bootstrap_ci(roc_auc, y, s, n_boot=150, groups=groups)
    assert low <= point <= high
    _, iid_low, iid_high = bootstrap_ci(roc_auc, y, s, n_boot=150)
    assert (high - low) > 1.5 * (iid_high - iid_low)
    with pytest.raises(ValueError, match="groups"):
        bootstrap_ci(roc_auc, y, s, n_boot=10, groups=groups[:-1])


def test_bootstrap_skips_invalid_resamples_and_fails_when_most_are() -> None:
    # One fake among 30: about 1/e of the resamples miss it -> skipped, but fewer than half.
    y = np.r_[np.zeros(29, np.int64), 1]
    s = np.linspace(0, 1, 30)
    point, low, high = bootstrap_ci(roc_auc, y, s, n_boot=100)
    assert point == 1.0 and low <= high <= 1.0

    # A metric that fails on every resample of this data: all skipped -> ValueError.
    def picky(a: np.ndarray, b: np.ndarray) -> float:
        if len(np.unique(b)) < 3:
            raise ValueError("too few distinct scores")
        return float(np.mean(b))

    with pytest.raises(ValueError, match="bootstrap resamples were invalid"):
        bootstrap_ci(picky, [0, 1, 0], [0.2, 0.4, 0.6], n_boot=20)  # P(ok) = 2/9
    # max_skipped sets how many may be skipped: here any share, as long as one resample is valid
    point, low, high = bootstrap_ci(picky, [0, 1, 0], [0.2, 0.4, 0.6], n_boot=20, max_skipped=1.0)
    assert point == pytest.approx(0.4) and 0.2 <= low <= high <= 0.6
    with pytest.raises(ValueError, match="bootstrap resamples were invalid"):
        bootstrap_ci(roc_auc, y, s, n_boot=100, max_skipped=0.0)  # the 1 fake is often missed
    with pytest.raises(ValueError, match="max_skipped"):
        bootstrap_ci(roc_auc, y, s, n_boot=10, max_skipped=1.5)


# --- summaries ---------------------------------------------------------------------------------


def test_summarize_keys_and_values() -> None:
    y, s = _gaussian(120, 8)
    p = 1.0 / (1.0 + np.exp(-s))
    out = summarize(y, p, n_boot=40, seed=2, threshold=0.5, p_target=0.3)
    assert set(out) == {
        "auc", "ap", "eer", "min_dcf", "act_dcf", "log_loss", "accuracy", "ece",
        "n_real", "n_fake",
    }  # fmt: skip
    assert all(isinstance(v, MetricSummary) for v in out.values())
    assert out["auc"].value == pytest.approx(roc_auc(y, p))
    assert out["eer"].value == pytest.approx(eer(y, p)[0])
    assert out["min_dcf"].value == pytest.approx(min_dcf(y, p, p_target=0.3)[0])
    assert out["act_dcf"].value == pytest.approx(dcf(y, p, 0.5, p_target=0.3))
    assert out["ece"].value == pytest.approx(expected_calibration_error(y, p))
    for key in ("auc", "ap", "eer", "min_dcf", "act_dcf", "log_loss", "accuracy", "ece"):
        assert out[key].low <= out[key].value <= out[key].high or key in ("ece", "log_loss")
        assert out[key].low <= out[key].high
    assert out["n_fake"] == MetricSummary(float(y.sum()), float(y.sum()), float(y.sum()))
    assert out["n_real"].to_dict() == {"value": 120.0 - y.sum(), "low": 120.0 - y.sum(),
                                       "high": 120.0 - y.sum()}  # fmt: skip
    # scores outside [0, 1]: no calibration metrics
    raw = summarize(y, s, n_boot=0)
    assert "log_loss" not in raw and "ece" not in raw
    assert math.isnan(raw["auc"].low)
    # groups are accepted (cluster bootstrap)
    grouped = summarize(y, p, n_boot=20, groups=np.arange(120) // 3)
    assert grouped["auc"].value == out["auc"].value


def test_breakdown_is_each_method_vs_all_reals() -> None:
    rng = np.random.default_rng(9)
    n_real, n_a, n_b = 60, 30, 30
    y = np.r_[np.zeros(n_real), np.ones(n_a + n_b)].astype(np.int64)
    s = np.r_[rng.normal(0, 1, n_real), rng.normal(3, 1, n_a), rng.normal(0.5, 1, n_b)]
    by = np.array(["original"] * n_real + ["A"] * n_a + ["B"] * n_b)
    groups = np.arange(len(y)) // 2
    out = breakdown(y, s, by, n_boot=20, threshold=0.0, groups=groups)
    assert list(out) == ["A", "B"]
    reals = y == 0
    for m in ("A", "B"):
        mask = reals | (by == m)
        assert out[m]["auc"].value == pytest.approx(roc_auc(y[mask], s[mask]))
        assert out[m]["n_real"].value == n_real
        assert out[m]["n_fake"].value == 30
    assert out["A"]["auc"].value > out["B"]["auc"].value
    with pytest.raises(ValueError, match="`by`"):
        breakdown(y, s, by[:-1], n_boot=0)


# --- properties --------------------------------------------------------------------------------

_samples = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from([-2.0, -0.5, 0.0, 0.25, 0.3, 1.0, 7.0])),
    min_size=2,
    max_size=30,
).filter(lambda xs: len({label for label, _ in xs}) == 2)


@settings(max_examples=60, deadline=None)
@given(_samples)
def test_auc_antisymmetry_and_eer_range(samples: list[tuple[int, float]]) -> None:
    y = np.array([label for label, _ in samples])
    s = np.array([score for _, score in samples])
    assert roc_auc(y, s) == pytest.approx(1.0 - roc_auc(y, -s))
    rate, threshold = eer(y, s)
    assert 0.0 <= rate <= 1.0
    assert s.min() <= threshold <= np.nextafter(s.max(), np.inf)
    # the EER never exceeds the best achievable max(P_miss, P_fa) over the observed points
    fpr, fnr, _ = det_curve(y, s)
    assert rate <= np.min(np.maximum(fpr, fnr)) + 1e-12

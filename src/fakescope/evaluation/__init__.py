"""Evaluation: ScoreTables you keep, the field's metrics as pure functions (with bootstrap
intervals), Display plots, and the report folder behind ``fakescope eval``.

Frame level: every sampled frame's most suspicious face is one sample (intervals resample whole
items). Video (item) level: the scan's own per-input score. Per-method numbers compare that
method's fakes with all reals. Abstentions count against the detector unless ``exclude``.
Actual DCF and accuracy are taken at each detector's own scan decision (threshold, costs and
prior, as ``Scanner.decision`` reports them), recorded beside every metrics entry. With
several detectors, the correlation of their item scores (overall and within reals and within
fakes) shows which add independent evidence.
"""

from fakescope.evaluation._attribution import (
    FFPP_METHODS,
    AttributionRecord,
    attribution_markdown,
    attribution_summary,
)
from fakescope.evaluation._calibration_fit import (
    CALIBRATION_MAPS,
    fit_level,
    fitted_on_record,
)
from fakescope.evaluation._correlation import score_correlation
from fakescope.evaluation._identity import (
    IDENTITY_SWAPS,
    IdentityProbe,
    evaluate_identity,
    identity_markdown,
)
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
from fakescope.evaluation._plots import (
    DET_TICKS,
    DetCurveDisplay,
    ReliabilityDisplay,
    RocCurveDisplay,
    ScoreHistogramDisplay,
)
from fakescope.evaluation._report import (
    ABSTAIN_POLICIES,
    DECISION_KEYS,
    breakdown_markdown,
    compute_metrics,
    correlation_markdown,
    curve_displays,
    decisions_markdown,
    headline_markdown,
    item_scores,
    report_decisions,
    score_correlations,
    write_report,
)
from fakescope.evaluation._run import (
    EVIDENCE_PREFIX,
    OVERALL_PREFIX,
    SYNTHESIS_PREFIX,
    Failure,
    evidence_rows,
    overall_row,
    score_items,
    synthesis_row,
    verdict_rows,
)
from fakescope.evaluation._scores import MEDIA_LEVEL, ScoreRow, ScoreTable

__all__ = [
    "ABSTAIN_POLICIES",
    "CALIBRATION_MAPS",
    "DECISION_KEYS",
    "DET_TICKS",
    "EVIDENCE_PREFIX",
    "FFPP_METHODS",
    "IDENTITY_SWAPS",
    "MEDIA_LEVEL",
    "OVERALL_PREFIX",
    "SYNTHESIS_PREFIX",
    "AttributionRecord",
    "DetCurveDisplay",
    "Failure",
    "IdentityProbe",
    "MetricSummary",
    "ReliabilityDisplay",
    "RocCurveDisplay",
    "ScoreHistogramDisplay",
    "ScoreRow",
    "ScoreTable",
    "accuracy",
    "attribution_markdown",
    "attribution_summary",
    "average_precision",
    "bayes_threshold",
    "bootstrap_ci",
    "breakdown",
    "breakdown_markdown",
    "compute_metrics",
    "correlation_markdown",
    "curve_displays",
    "dcf",
    "decisions_markdown",
    "det_curve",
    "eer",
    "evaluate_identity",
    "evidence_rows",
    "expected_calibration_error",
    "fit_level",
    "fitted_on_record",
    "headline_markdown",
    "identity_markdown",
    "item_scores",
    "log_loss",
    "min_dcf",
    "overall_row",
    "report_decisions",
    "roc_auc",
    "roc_auc_or_none",
    "score_correlation",
    "score_correlations",
    "score_items",
    "summarize",
    "synthesis_row",
    "verdict_rows",
    "write_report",
]

"""Metrics per detector x dataset from a ScoreTable, and the report folder: metrics.json,
report.md (side-by-side tables), PNG figures and an index.html that shows them.

Abstain policy (``worst``, the default): an item a detector abstained on (no face, undecodable,
...) counts against it — a fake is scored 0 (missed) and a real 1 (false alarm) — so a detector
cannot look better by refusing hard inputs. ``exclude`` drops such items instead. Either way
the abstentions are counted and listed in the report.

Decisions: the actual DCF and the accuracy are those of a decision rule, so each detector is
judged at the threshold ``fakescope scan`` decides by (``Scanner.decision``), with the costs and
prior that set it; the same costs and prior weigh its minimum DCF. Every metrics entry records
the ``decision`` it used, and the report says it beside the headline.

Correlations: with two or more detectors, every pair's item-level scores on each dataset are
correlated (overall and within each class) to show which detectors add independent evidence;
see :func:`score_correlations`.
"""

from __future__ import annotations

import html
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.errors import ConfigError
from fakescope.evaluation._correlation import score_correlation
from fakescope.evaluation._metrics import breakdown, summarize
from fakescope.evaluation._run import Failure
from fakescope.evaluation._scores import ScoreRow, ScoreTable

__all__ = [
    "ABSTAIN_POLICIES",
    "breakdown_markdown",
    "compute_metrics",
    "correlation_markdown",
    "curve_displays",
    "decisions_markdown",
    "headline_markdown",
    "item_scores",
    "report_decisions",
    "score_correlations",
    "write_report",
]

ABSTAIN_POLICIES = ("worst", "exclude")
DECISION_KEYS = ("threshold", "cost_miss", "cost_false_alarm", "prior_fake")
"""What a decision passed to :func:`compute_metrics` must hold (``DecisionInfo.to_dict()``
does; other fields are kept as they are)."""
RULE_GIVEN = "threshold and costs given to compute_metrics"


def item_scores(
    rows: Sequence[ScoreRow], policy: str = "worst"
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[str], list[str], int]:
    """Item-level labels, scores, ids and methods after the abstain policy; and the number of
    abstentions."""
    if policy not in ABSTAIN_POLICIES:
        raise ConfigError(f"abstain policy must be one of {ABSTAIN_POLICIES}, got {policy!r}")
    y: list[int] = []
    s: list[float] = []
    ids: list[str] = []
    methods: list[str] = []
    abstained = 0
    for r in rows:
        score = r.score
        if math.isnan(score):
            abstained += 1
            if policy == "exclude":
                continue
            score = 0.0 if r.label == 1 else 1.0
        y.append(r.label)
        s.append(score)
        ids.append(r.media_id)
        methods.append(r.method)
    return np.array(y, np.int64), np.array(s, np.float64), ids, methods, abstained


def _summary_dict(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v.to_dict() for k, v in summary.items()}


def _per_compression(
    part: ScoreTable, policy: str, opts: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Item-level metrics per compression level, when the items carry more than one."""
    rows = part.media_rows()
    levels = sorted({r.compression for r in rows if r.compression})
    out: dict[str, dict[str, Any]] = {}
    if len(levels) < 2:
        return out
    for level in levels:
        y, s, _, _, _ = item_scores([r for r in rows if r.compression == level], policy)
        try:
            out[level] = _summary_dict(summarize(y, s, **opts))
        except ValueError as exc:
            out[level] = {"error": str(exc)}
    return out


def _metric_options(decision: Mapping[str, Any]) -> dict[str, float]:
    """``summarize`` keywords from a decision dict."""
    missing = [k for k in DECISION_KEYS if k not in decision]
    if missing:
        raise ValueError(f"a decision needs {', '.join(DECISION_KEYS)}; missing {missing}")
    return {
        "threshold": float(decision["threshold"]),
        "c_miss": float(decision["cost_miss"]),
        "c_fa": float(decision["cost_false_alarm"]),
        "p_target": float(decision["prior_fake"]),
    }


def compute_metrics(
    table: ScoreTable,
    *,
    decisions: Mapping[str, Mapping[str, Any]] | None = None,
    policy: str = "worst",
    n_boot: int = 1000,
    c_miss: float | None = None,
    c_fa: float | None = None,
    p_target: float | None = None,
    threshold: float | None = None,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{detector: {dataset: {"items", "abstained", "decision", "video", "frame",
    "per_method", "per_compression"}}}``.

    ``decisions`` maps every detector in ``table`` to the decision it is judged by: a dict
    with at least ``threshold``, ``cost_miss``, ``cost_false_alarm`` and ``prior_fake`` (e.g.
    ``Scanner(config).decision.to_dict()``). The item- and frame-level ``act_dcf`` and
    ``accuracy`` are taken at that threshold, and ``act_dcf`` and ``min_dcf`` weigh errors
    with those costs and prior. Each entry's ``decision`` is a copy of the one used.

    Without ``decisions`` every detector gets ``threshold`` (0.5), ``c_miss`` (1), ``c_fa``
    (1) and ``p_target`` (0.5); giving both is an error, as is a detector with no decision.
    A metric that cannot be computed (one class only) is reported as an ``error`` string.
    """
    plain = {"threshold": threshold, "c_miss": c_miss, "c_fa": c_fa, "p_target": p_target}
    if decisions is not None and any(v is not None for v in plain.values()):
        given = sorted(k for k, v in plain.items() if v is not None)
        raise ValueError(f"pass either decisions or {', '.join(given)}, not both")
    fallback = {
        "threshold": 0.5 if threshold is None else threshold,
        "cost_miss": 1.0 if c_miss is None else c_miss,
        "cost_false_alarm": 1.0 if c_fa is None else c_fa,
        "prior_fake": 0.5 if p_target is None else p_target,
        "rule": RULE_GIVEN,
    }
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for detector in table.detectors():
        if decisions is None:
            decision: dict[str, Any] = dict(fallback)
        elif detector in decisions:
            decision = dict(decisions[detector])
        else:
            raise ValueError(f"no decision for detector {detector!r} (have: {sorted(decisions)})")
        opts: dict[str, Any] = {**_metric_options(decision), "n_boot": n_boot, "seed": seed}
        for dataset in table.select(detector).datasets():
            part = table.select(detector, dataset)
            y, s, _, methods, abstained = item_scores(part.media_rows(), policy)
            entry: dict[str, Any] = {
                "items": len(part.media_rows()),
                "abstained": abstained,
                "decision": dict(decision),
            }
            try:
                entry["video"] = _summary_dict(summarize(y, s, **opts))
                entry["per_method"] = {
                    m: _summary_dict(v)
                    for m, v in breakdown(y, s, np.array(methods), **opts).items()
                }
            except ValueError as exc:
                entry["video"] = {"error": str(exc)}
            entry["per_compression"] = _per_compression(part, policy, opts)
            fy, fs, groups, _ = part.frame_scores()
            try:
                entry["frame"] = _summary_dict(summarize(fy, fs, groups=np.array(groups), **opts))
            except ValueError as exc:
                entry["frame"] = {"error": str(exc)}
            out.setdefault(detector, {})[dataset] = entry
    return out


def _fmt(summary: dict[str, Any], key: str) -> str:
    m = summary.get(key)
    if not isinstance(m, dict):
        return "n/a"
    return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def headline_markdown(metrics: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One row per detector x dataset: item- and frame-level AUC with 95% bootstrap CIs, and
    the item-level actual DCF and accuracy at the detector's decision threshold (see
    :func:`decisions_markdown`)."""
    lines = [
        "| detector | dataset | items | abstained | video AUC [95% CI] | video EER | "
        "video min DCF | video act DCF | video accuracy | video ECE | frame AUC [95% CI] | "
        "frame EER |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for detector, per in metrics.items():
        for dataset, e in per.items():
            v, f = e.get("video", {}), e.get("frame", {})
            lines.append(
                f"| {detector} | {dataset} | {e['items']} | {e['abstained']} | "
                f"{_fmt(v, 'auc')} | {_fmt(v, 'eer')} | {_fmt(v, 'min_dcf')} | "
                f"{_fmt(v, 'act_dcf')} | {_fmt(v, 'accuracy')} | {_fmt(v, 'ece')} "
                f"| {_fmt(f, 'auc')} | {_fmt(f, 'eer')} |"
            )
    return "\n".join(lines)


def report_decisions(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> dict[str, dict[str, Any]]:
    """``{detector: decision}`` as recorded in the metrics entries (detectors without one are
    left out)."""
    out: dict[str, dict[str, Any]] = {}
    for detector, per in metrics.items():
        for entry in per.values():
            if isinstance(entry.get("decision"), Mapping):
                out[detector] = dict(entry["decision"])
                break
    return out


def _num(value: Any) -> str:
    return f"{float(value):g}"


def _decision_sentences(metrics: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    sentences = []
    for detector, d in report_decisions(metrics).items():
        sentences.append(
            f"{detector}: actual DCF and accuracy at threshold {float(d['threshold']):.3f} "
            f"(rule: {d.get('rule', 'not recorded')}; costs miss {_num(d['cost_miss'])} / "
            f"false alarm {_num(d['cost_false_alarm'])}, prior fake {_num(d['prior_fake'])})"
            + (f"; ran as {d['runs_as']}: {d.get('resolution')}" if d.get("runs_as") else "")
        )
    return sentences


def decisions_markdown(
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]], source: str | None = None
) -> str:
    """Per detector, the threshold, rule, costs and prior its actual DCF and accuracy were
    taken at (min DCF uses the same costs and prior); ``source`` says where the decisions came
    from. Empty string when the metrics record no decision."""
    sentences = _decision_sentences(metrics)
    if not sentences:
        return ""
    intro = "Decisions" + (f" ({source})" if source else "") + ":"
    return intro + "\n\n" + "\n".join(f"- {s}" for s in sentences)


def breakdown_markdown(
    metrics: dict[str, dict[str, dict[str, Any]]], key: str = "per_method", column: str = "method"
) -> str:
    """Item-level AUC, EER and minimum DCF (95% CIs) per group: ``key`` is ``per_method`` (that
    method's fakes vs all reals) or ``per_compression``. Empty string when no dataset has such
    a breakdown."""
    header = f"| detector | dataset | {column} | AUC [95% CI] | EER | min DCF |"
    lines = [header, "|---|---|---|---|---|---|"]
    for detector, per in metrics.items():
        for dataset, e in per.items():
            for group, summary in e.get(key, {}).items():
                lines.append(
                    f"| {detector} | {dataset} | {group} | {_fmt(summary, 'auc')} | "
                    f"{_fmt(summary, 'eer')} | {_fmt(summary, 'min_dcf')} |"
                )
    return "\n".join(lines) if len(lines) > 2 else ""


def _scored_items(rows: Sequence[ScoreRow]) -> dict[str, tuple[int, float]]:
    """``{media_id: (label, score)}`` of the items scored (abstentions left out)."""
    y, s, ids, _, _ = item_scores(rows, "exclude")
    return {m: (int(label), float(score)) for m, label, score in zip(ids, y, s, strict=True)}


def score_correlations(table: ScoreTable) -> list[dict[str, Any]]:
    """Per dataset and pair of detectors, the correlation of their item-level scores.

    One entry per dataset and unordered pair of the detectors that scored it (names sorted;
    ``synthesis:`` and other prefixed detectors are treated like any other): ``detector_a``,
    ``detector_b``, ``dataset``, ``excluded`` and the figures of
    :func:`~fakescope.evaluation.score_correlation` — ``n``, ``pearson_logit``, ``spearman``
    and, per class, ``within_real`` and ``within_fake``. Items are matched by media id and
    only those *both* detectors scored are used: an abstention is left out whatever the
    abstain policy, since the worst-case score the headline gives it would make the two
    detectors correlate through the label alone. ``excluded`` counts the dataset's items that
    either detector did not score. A pair that cannot be correlated (an item labelled
    differently by the two, a score outside [0, 1]) gets an ``error`` string instead of the
    figures. Empty when no dataset has two detectors.
    """
    out: list[dict[str, Any]] = []
    for dataset in table.datasets():
        part = table.select(dataset=dataset)
        for a, b in itertools.combinations(part.detectors(), 2):
            rows_a, rows_b = part.select(a).media_rows(), part.select(b).media_rows()
            scored_a, scored_b = _scored_items(rows_a), _scored_items(rows_b)
            common = sorted(scored_a.keys() & scored_b.keys())
            seen = {r.media_id for r in rows_a} | {r.media_id for r in rows_b}
            entry: dict[str, Any] = {
                "detector_a": a,
                "detector_b": b,
                "dataset": dataset,
                "excluded": len(seen) - len(common),
            }
            mislabelled = [m for m in common if scored_a[m][0] != scored_b[m][0]]
            try:
                if mislabelled:
                    raise ValueError(
                        f"{len(mislabelled)} item(s) labelled differently by the two detectors "
                        f"(e.g. {mislabelled[0]!r})"
                    )
                entry.update(
                    score_correlation(
                        [scored_a[m][1] for m in common],
                        [scored_b[m][1] for m in common],
                        [scored_a[m][0] for m in common],
                    )
                )
            except ValueError as exc:
                entry.update(n=len(common), error=str(exc))
            out.append(entry)
    return out


_CORRELATION_NOTE = (
    "Item-level scores of each pair of detectors, matched by item; items either detector "
    "abstained on are left out. Over both classes two good detectors correlate through the "
    "label alone, so the honest measure of independent evidence is the correlation within "
    "reals and within fakes (cells: Pearson of logits / Spearman (n)): near 0, the second "
    "detector's errors are independent of the first's; near 1, it repeats them."
)


def _corr(value: Any) -> str:
    return "n/a" if not isinstance(value, int | float) or math.isnan(value) else f"{value:.3f}"


def _within(figures: Any) -> str:
    if not isinstance(figures, Mapping):
        return "n/a"
    return (
        f"{_corr(figures.get('pearson_logit'))} / {_corr(figures.get('spearman'))} "
        f"(n={figures.get('n', 0)})"
    )


def correlation_markdown(correlations: Sequence[Mapping[str, Any]]) -> str:
    """A row per entry of :func:`score_correlations`: the pair, dataset, number of items both
    scored, Pearson correlation of logits and Spearman correlation over all of them, and the
    same two within reals and within fakes. Empty string when there are no entries."""
    if not correlations:
        return ""
    lines = [
        "| detector A | detector B | dataset | n | Pearson (logit) | Spearman | within reals | "
        "within fakes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in correlations:
        head = f"| {c['detector_a']} | {c['detector_b']} | {c['dataset']} | {c.get('n', 0)} |"
        if "error" in c:
            reason = str(c["error"]).replace("|", "/")
            lines.append(f"{head} error: {reason} | n/a | n/a | n/a |")
            continue
        lines.append(
            f"{head} {_corr(c.get('pearson_logit'))} | {_corr(c.get('spearman'))} | "
            f"{_within(c.get('within_real'))} | {_within(c.get('within_fake'))} |"
        )
    return "\n".join(lines)


def curve_displays(table: ScoreTable, dataset: str, policy: str = "worst") -> list[Any]:
    """ROC and DET displays of one dataset with every detector's curve on shared axes
    (empty when no detector has both classes)."""
    from fakescope.evaluation._plots import DetCurveDisplay, RocCurveDisplay

    roc: RocCurveDisplay | None = None
    det: DetCurveDisplay | None = None
    for detector in table.select(dataset=dataset).detectors():
        y, s, _, _, _ = item_scores(table.select(detector, dataset).media_rows(), policy)
        if len(set(y.tolist())) < 2:
            continue
        roc = RocCurveDisplay.from_predictions(
            y, s, name=detector, ax=None if roc is None else roc.ax_
        )
        det = DetCurveDisplay.from_predictions(
            y, s, name=detector, ax=None if det is None else det.ax_
        )
    return [] if roc is None or det is None else [roc, det]


def _figures(table: ScoreTable, out: Path, policy: str) -> list[Path]:
    from fakescope.evaluation._plots import ReliabilityDisplay, ScoreHistogramDisplay

    written: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    for dataset in table.datasets():
        for detector in table.select(dataset=dataset).detectors():
            y, s, _, methods, _ = item_scores(table.select(detector, dataset).media_rows(), policy)
            if len(set(y.tolist())) < 2:
                continue
            stem = f"{dataset}__{detector}".replace("/", "_")
            hist = ScoreHistogramDisplay.from_predictions(y, s, methods=methods, name=detector)
            written.append(hist.save(out / f"hist__{stem}.png"))
            rel = ReliabilityDisplay.from_predictions(y, s, name=detector)
            written.append(rel.save(out / f"reliability__{stem}.png"))
        for display, kind in zip(
            curve_displays(table, dataset, policy), ("roc", "det"), strict=False
        ):
            written.append(display.save(out / f"{kind}__{dataset}.png"))
    return written


def _md_table_html(markdown: str) -> str:
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.strip()]
    head, body = rows[0], rows[2:]
    cells = "".join(f"<th>{html.escape(c.strip())}</th>" for c in head)
    trs = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>" for r in body
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{trs}</tbody></table>"


def write_report(
    out: Path,
    table: ScoreTable,
    failures: Sequence[Failure],
    metrics: dict[str, dict[str, dict[str, Any]]],
    *,
    policy: str = "worst",
    config: dict[str, Any] | None = None,
    figures: bool = True,
    decisions: Mapping[str, Mapping[str, Any]] | None = None,
    decision_source: str | None = None,
    sections: Sequence[tuple[str, str]] = (),
) -> dict[str, Path]:
    """Write scores.csv, metrics.json, report.md, figures/*.png and index.html into ``out``.
    ``sections`` are more (title, markdown table) parts of the report, after the score
    correlations (``fakescope eval --attribution`` adds its method attribution there).

    metrics.json keeps ``decisions`` (default: those recorded in ``metrics``), so that a later
    ``fakescope eval --from-scores`` judges each detector by the same decision, and
    ``decision_source``, which the report also states. With two or more detectors it also has
    ``correlations`` (:func:`score_correlations`), shown as a table in the report too.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {"scores": table.save(out / "scores.csv")}
    saved_decisions = (
        report_decisions(metrics)
        if decisions is None
        else {k: dict(v) for k, v in decisions.items()}
    )
    payload = {
        "abstain_policy": policy,
        "decision_source": decision_source or "",
        "decisions": saved_decisions,
        "config": config or {},
        "metrics": metrics,
        "failures": [asdict(f) for f in failures],
    }
    correlations = score_correlations(table)
    if correlations:
        payload["correlations"] = correlations
    paths["metrics"] = out / "metrics.json"
    paths["metrics"].write_text(json.dumps(payload, indent=2, default=str) + "\n")
    headline, per_method = headline_markdown(metrics), breakdown_markdown(metrics)
    decided = decisions_markdown(metrics, decision_source)
    sentences = _decision_sentences(metrics)
    by_level = breakdown_markdown(metrics, "per_compression", "compression")
    correlated = correlation_markdown(correlations)
    fail_lines = "\n".join(
        f"| {f.detector} | {f.dataset} | {f.media_id} | {f.status} | {f.reason} |" for f in failures
    )
    md = (
        "# fakescope evaluation\n\n"
        f"Abstain policy: `{policy}` (see `fakescope.evaluation` docs). Intervals are 95% "
        "percentile bootstrap; frame-level intervals resample whole items.\n\n"
        f"## Headline\n\n{headline}\n\n"
        + (f"{decided}\n\n" if decided else "")
        + "## Per manipulation method (item level)\n\n"
        f"{per_method}\n\n"
        + (f"## Per compression (item level)\n\n{by_level}\n\n" if by_level else "")
        + (
            f"## Detector score correlation\n\n{_CORRELATION_NOTE}\n\n{correlated}\n\n"
            if correlated
            else ""
        )
        + "".join(f"## {title}\n\n{body}\n\n" for title, body in sections)
        + f"## Abstained or failed items ({len(failures)})\n\n"
        "| detector | dataset | item | status | reason |\n|---|---|---|---|---|\n"
        f"{fail_lines}\n"
    )
    paths["report"] = out / "report.md"
    paths["report"].write_text(md)
    pngs = _figures(table, out / "figures", policy) if figures else []
    imgs = "".join(
        f'<figure><img src="figures/{p.name}" alt="{html.escape(p.stem)}">'
        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
        for p in pngs
    )
    failures_html = "".join(
        f"<li>{html.escape(f.detector)} / {html.escape(f.media_id)}: "
        f"{html.escape(f.status)} — {html.escape(f.reason)}</li>"
        for f in failures
    )
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<title>fakescope evaluation</title><style>body{font-family:system-ui,sans-serif;"
        "margin:1.5rem;max-width:1200px}table{border-collapse:collapse;font-size:.9rem}"
        "td,th{border:1px solid #ccc;padding:.3rem .5rem}figure{display:inline-block;"
        "margin:.5rem}img{max-width:460px;width:100%}</style>"
        f"<h1>fakescope evaluation</h1><p>Abstain policy: <code>{policy}</code>.</p>"
        f"<h2>Headline</h2>{_md_table_html(headline)}"
        + (
            "<p>Decisions"
            + (f" ({html.escape(decision_source)})" if decision_source else "")
            + ":</p><ul>"
            + "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
            + "</ul>"
            if sentences
            else ""
        )
        + (f"<h2>Per manipulation method</h2>{_md_table_html(per_method)}" if per_method else "")
        + (f"<h2>Per compression</h2>{_md_table_html(by_level)}" if by_level else "")
        + (
            f"<h2>Detector score correlation</h2><p>{html.escape(_CORRELATION_NOTE)}</p>"
            f"{_md_table_html(correlated)}"
            if correlated
            else ""
        )
        + "".join(
            f"<h2>{html.escape(title)}</h2>{_md_table_html(body)}" for title, body in sections
        )
        + f"<h2>Figures</h2>{imgs}<h2>Abstained or failed ({len(failures)})</h2>"
        f"<ul>{failures_html}</ul></html>\n"
    )
    paths["index"] = out / "index.html"
    paths["index"].write_text(page)
    return paths

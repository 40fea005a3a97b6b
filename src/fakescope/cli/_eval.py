"""``fakescope eval``: score datasets with one or more detectors and write a report folder."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope.config import ScanConfig

if TYPE_CHECKING:
    from fakescope.data import MediaItem
    from fakescope.evaluation import ScoreTable
    from fakescope.inference import Scanner

__all__ = ["add_eval_parser", "run_eval"]

_DECISION_FLAGS = {
    "threshold": "--threshold",
    "cost_miss": "--cost-miss",
    "cost_false_alarm": "--cost-false-alarm",
    "prior_fake": "--prior-fake",
}
"""Eval options that change a scanner's decision (``args`` dest -> flag)."""


def add_eval_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p: argparse.ArgumentParser = sub.add_parser(
        "eval", help="evaluate detectors on datasets; writes metrics, tables, plots, HTML"
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="dataset folders or manifest files (layout detected)",
    )
    from fakescope.cli._common import add_cost_options, detector_type
    from fakescope.models import DETECTORS

    p.add_argument(
        "--detector",
        action="append",
        dest="detectors",
        type=detector_type,
        metavar="NAME|WEIGHTS.json",
        help=f"detector to evaluate: {', '.join(DETECTORS.names())} or a weight config file "
        "(repeat for a side-by-side; default: the default)",
    )
    p.add_argument("--dataset", help="force the adapter (ffpp, celebdf, dfdc, ...)")
    p.add_argument(
        "--split", help="keep only items of this split, e.g. test (items without a split are kept)"
    )
    p.add_argument("--limit", type=int, help="at most this many items per source")
    p.add_argument("--out", type=Path, default=Path("eval-report"), help="report folder")
    p.add_argument(
        "--from-scores",
        type=Path,
        dest="from_scores",
        help="recompute metrics and plots from a saved scores.csv or a 'fakescope batch' "
        "folder (its Parquet shards; labelled items only) (decisions: those saved beside it in "
        "metrics.json, else rebuilt from the detectors; --threshold and the cost flags rebuild "
        "them)",
    )
    p.add_argument(
        "--raw-scores",
        action="store_true",
        dest="raw_scores",
        help="measure the networks' own scores before calibration (rank metrics, "
        "correlations; decisions at the raw score's 0.5); rows without a raw score (the "
        "overall verdict's) are left out",
    )
    p.add_argument(
        "--abstain",
        choices=("worst", "exclude"),
        default="worst",
        help="how abstentions count (default worst: against the detector)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    # the scan's own cost settings (the dests config_overrides reads): they set the threshold
    # each scanner decides by (calibrated weights) and weigh the minimum and actual DCF
    add_cost_options(
        p,
        "cost of missing a fake (default 1): sets a calibrated detector's threshold, weighs "
        "the DCF",
    )
    p.add_argument("--no-figures", action="store_true", dest="no_figures")
    return p


def _items(args: argparse.Namespace) -> list[MediaItem]:
    from fakescope.data import detect_layout, load_dataset

    items: list[MediaItem] = []
    for source in args.sources:
        root = Path(source)
        name = args.dataset or detect_layout(root)
        found = load_dataset(name, root)
        if args.split:  # items of datasets without any split are kept
            found = [i for i in found if i.split in (args.split, None)]
        items.extend(found[: args.limit] if args.limit else found)
    return items


def _scanner(config: ScanConfig, detector: str) -> Scanner:
    """The scanner of one detector of a side-by-side. An attribution head reads the crops of
    the detector it runs beside; a detector that crops faces otherwise (e.g. the 96 px
    one-class baseline) runs without it, said on stderr, so the others keep theirs."""
    import sys

    from fakescope.errors import CropMismatch
    from fakescope.inference import Scanner

    wanted = dataclasses.replace(config, detector=detector)
    try:
        return Scanner(wanted)
    except CropMismatch as exc:
        print(f"{detector}: no attribution ({exc})", file=sys.stderr)
        return Scanner(dataclasses.replace(wanted, attribution=None))


def _scanner_decision(scanner: Scanner) -> dict[str, Any]:
    """The decision ``scanner`` labels by, as a dict (``DecisionInfo.to_dict()``), with the
    exact threshold it compares with (``to_dict`` rounds it for display). When the detector
    asked for ran as another weight on this CPU (an int8 weight's float twin), ``runs_as``
    and ``resolution`` say so, so the report never passes one model's figures off as
    another's."""
    out = {**scanner.decision.to_dict(), "threshold": scanner.threshold}
    info = scanner.detector.info
    if info.resolved_from is not None:
        out |= {"runs_as": info.name, "resolution": info.resolution}
    return out


def _synthesis_decision(scanner: Scanner) -> dict[str, Any] | None:
    """The decision ``scanner``'s synthesis verdicts are labelled by (None when it has no
    synthesis detector): the scan's costs, band and prior, the synthesis threshold."""
    detector = scanner.synthesis
    if detector is None:
        return None
    rule = (
        "cost-minimising threshold for the calibrated probability"
        if detector.calibrated
        else "fixed threshold from the synthesis weight config"
    )
    return {
        **scanner.decision.to_dict(),
        "threshold": scanner.synthesis_threshold,
        "calibrated": detector.calibrated,
        "calibration_level": None,
        "rule": rule,
        "aggregation": "whole image: a photo, or the mean raw score of up to 4 sampled frames",
    }


def _overall_decision(scanner: Scanner) -> dict[str, Any] | None:
    """The decision the overall verdict's item rows are labelled by (None without a synthesis
    detector): with both questions calibrated to one threshold, "manipulated or generated"
    is the larger probability at or above threshold + band, "authentic" below threshold -
    band."""
    if scanner.synthesis is None:
        return None
    return {
        **scanner.decision.to_dict(),
        "calibration_level": None,
        "rule": "the face and whole-image questions' own thresholds (one cost-minimising "
        "threshold when both are calibrated)",
        "aggregation": "overall: the larger of the face-manipulation and whole-image "
        "probabilities; manipulated or generated when either question is fake, authentic "
        "only when both are real",
    }


def _evidence_decision(scanner_decision: dict[str, Any], config: ScanConfig) -> dict[str, Any]:
    """The decision an evidence model's item rows are labelled by: the scan's costs and band,
    the cost-minimising threshold for its calibrated probability."""
    from fakescope.decision import bayes_threshold

    return {
        **scanner_decision,
        "threshold": bayes_threshold(config.cost_miss, config.cost_false_alarm, config.prior_fake),
        "calibrated": True,
        "calibration_level": None,
        "rule": "cost-minimising threshold for the calibrated probability",
        "aggregation": "input: the highest evidence probability among its face tracks",
    }


def _raw_decision(decision: dict[str, Any]) -> dict[str, Any]:
    """``--raw-scores``: the decision's costs, its threshold at the raw score's 0.5."""
    return {
        **decision,
        "threshold": 0.5,
        "calibrated": False,
        "calibration_level": None,
        "rule": "raw (uncalibrated) score >= 0.5",
    }


def _saved_decisions(metrics_json: Path) -> dict[str, dict[str, Any]]:
    """The usable ``decisions`` of an earlier run's metrics.json ({} when absent)."""
    from fakescope.evaluation import DECISION_KEYS

    try:
        saved = json.loads(metrics_json.read_text()).get("decisions")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(saved, dict):
        return {}
    return {
        str(name): dict(d)
        for name, d in saved.items()
        if isinstance(d, dict) and all(k in d for k in DECISION_KEYS)
    }


def _from_scores_decisions(
    table: ScoreTable, args: argparse.Namespace, config: ScanConfig
) -> tuple[dict[str, dict[str, Any]], str]:
    """Decisions for ``--from-scores`` and where they came from: those the earlier run saved
    beside scores.csv, else rebuilt from each detector's weight config and the scan settings
    (models are loaded, nothing is scanned). Decision flags on the command line rebuild."""
    from fakescope.errors import ConfigError, FakescopeError
    from fakescope.evaluation import EVIDENCE_PREFIX, OVERALL_PREFIX, SYNTHESIS_PREFIX
    from fakescope.inference import Scanner

    given = Path(args.from_scores)
    metrics_json = (given if given.is_dir() else given.parent) / "metrics.json"
    flags = [
        flag for dest, flag in _DECISION_FLAGS.items() if getattr(args, dest, None) is not None
    ]
    saved = {} if flags else _saved_decisions(metrics_json)
    decisions: dict[str, dict[str, Any]] = {}
    rebuilt: list[str] = []
    for name in table.detectors():
        if name in saved:
            decisions[name] = saved[name]
            continue
        try:
            decision: dict[str, Any] | None
            if name.startswith(EVIDENCE_PREFIX):
                base = dataclasses.replace(
                    config, synthesis_detector=None, evidence=(), attribution=None
                )
                decision = _evidence_decision(_scanner_decision(Scanner(base)), config)
            elif name.startswith(OVERALL_PREFIX):
                face = name.removeprefix(OVERALL_PREFIX)
                decision = _overall_decision(Scanner(dataclasses.replace(config, detector=face)))
            elif name.startswith(SYNTHESIS_PREFIX):
                synth = name.removeprefix(SYNTHESIS_PREFIX)
                decision = _synthesis_decision(
                    Scanner(dataclasses.replace(config, synthesis_detector=synth))
                )
            else:
                decision = _scanner_decision(_scanner(config, name))
            assert decision is not None
        except (FakescopeError, OSError, ValueError) as exc:
            why = (
                f"the decision of detector {name!r} must be rebuilt for {', '.join(flags)}"
                if flags
                else f"no saved decision for detector {name!r} in {metrics_json}"
            )
            raise ConfigError(f"{why}, but the detector cannot be loaded: {exc}") from None
        decisions[name] = decision
        rebuilt.append(name)
    how = "rebuilt from the detector's weight config and the scan settings" + (
        f" ({', '.join(flags)} given)" if flags else ""
    )
    kept = [n for n in decisions if n not in rebuilt]
    if not rebuilt:
        source = f"saved in {metrics_json} by the run that produced the scores"
    elif not kept:
        source = how
    else:
        source = f"saved in {metrics_json} for {', '.join(kept)}; {how} for {', '.join(rebuilt)}"
    return decisions, source


def run_eval(args: argparse.Namespace, config: ScanConfig) -> int:
    from fakescope._extras import require

    require("eval", "fakescope eval")
    from rich.markdown import Markdown

    from fakescope.cli._common import UsageError, stderr_progress, stdout_console
    from fakescope.evaluation import (
        EVIDENCE_PREFIX,
        OVERALL_PREFIX,
        SYNTHESIS_PREFIX,
        AttributionRecord,
        Failure,
        attribution_markdown,
        attribution_summary,
        compute_metrics,
        correlation_markdown,
        decisions_markdown,
        headline_markdown,
        score_correlations,
        score_items,
        write_report,
    )
    from fakescope.types import Verdict

    failures: list[Failure] = []
    attributed: dict[str, list[AttributionRecord]] = {}
    families: dict[str, dict[str, str]] = {}
    if args.from_scores:
        table = _load_scores(Path(args.from_scores))
        decisions, source = _from_scores_decisions(table, args, config)
    else:
        if not args.sources:
            raise UsageError("give at least one SOURCE or --from-scores")
        items = _items(args)
        if not items:
            raise UsageError("no items found in the given sources (check --split/--dataset)")
        names = args.detectors or [config.detector]
        # --identity is measured by evaluate_identity on its own frames: the scans need not
        # embed every face as well
        scan_config = dataclasses.replace(config, identity=False, gallery=None, reference=None)
        scanners = {n: _scanner(scan_config, n) for n in names}
        decisions = {n: _scanner_decision(s) for n, s in scanners.items()}
        source = "from the scanners that produced the scores"
        with stderr_progress() as bar:
            task = bar.add_task("scanning", total=len(items) * len(scanners))

            def advance(item: MediaItem, detector: str, verdict: Verdict) -> None:
                bar.update(task, advance=1, description=item.media_id[-40:])
                head = scanners[detector].attributor
                if head is not None and item.label == "fake" and item.method:
                    families[detector] = head.families
                    record = AttributionRecord.of(item.method, verdict)
                    attributed.setdefault(detector, []).append(record)

            table, failures = score_items(items, scanners, on_item=advance)
        for name, scanner in scanners.items():
            whole = _overall_decision(scanner)
            if whole is not None:
                decisions[OVERALL_PREFIX + name] = whole
            synth_decision = _synthesis_decision(scanner)
            if synth_decision is not None and scanner.synthesis is not None:
                decisions.setdefault(SYNTHESIS_PREFIX + scanner.synthesis.info.name, synth_decision)
            for name in scanner.config.evidence:
                decisions.setdefault(
                    EVIDENCE_PREFIX + name,
                    _evidence_decision(_scanner_decision(scanner), scanner.config),
                )
    if args.raw_scores:
        table = table.raw()
        decisions = {n: _raw_decision(decisions[n]) for n in table.detectors()}
        source += "; then --raw-scores: every threshold 0.5 on the uncalibrated score"
    metrics = compute_metrics(
        table, decisions=decisions, policy=args.abstain, n_boot=args.bootstrap
    )
    run_config = {
        "sources": args.sources,
        "detectors": table.detectors(),
        "split": args.split,
        "limit": args.limit,
        "scan": dataclasses.asdict(config),
    }
    summaries = {n: attribution_summary(r, families[n]) for n, r in attributed.items()}
    sections = []
    if summaries:
        sections.append(
            ("Method attribution of the fakes called fake", attribution_markdown(summaries))
        )
    paths = write_report(
        args.out,
        table,
        failures,
        metrics,
        policy=args.abstain,
        config=run_config,
        figures=not args.no_figures,
        decisions={n: decisions[n] for n in table.detectors()},
        decision_source=source,
        sections=sections,
    )
    out = stdout_console()
    out.print(Markdown(headline_markdown(metrics)))
    out.print(Markdown(decisions_markdown(metrics, source)))
    correlated = correlation_markdown(score_correlations(table))
    if correlated:
        out.print(
            "Score correlation between detectors (abstentions left out; within reals / within "
            "fakes: Pearson of logits / Spearman (n), near 0 = independent evidence):"
        )
        out.print(Markdown(correlated))
    if summaries:
        (Path(args.out) / "attribution.json").write_text(
            json.dumps(summaries, indent=1) + "\n", encoding="utf-8"
        )
        out.print("Method attribution of the fakes called fake (attribution.json):")
        out.print(Markdown(attribution_markdown(summaries)))
    if config.identity and not args.from_scores:
        _identity_report(items, args, out)
    out.print(f"{len(failures)} abstained/failed item(s); report: {paths['index']}")
    return 0


def _load_scores(source: Path) -> ScoreTable:
    """A saved scores.csv, or the labelled items of a ``fakescope batch`` folder."""
    from fakescope.cli._common import UsageError
    from fakescope.evaluation import ScoreTable

    if not source.is_dir():
        return ScoreTable.load(source)
    from fakescope._extras import require

    require("batch", "fakescope eval --from-scores on a batch folder", ("pyarrow",))
    from fakescope.batch import read_results

    table = read_results(source, labeled_only=True)
    if not len(table):
        raise UsageError(f"{source} holds no labelled items (give labels in the manifest)")
    return table


def _identity_report(items: list[MediaItem], args: argparse.Namespace, out: Any) -> None:
    """``--identity``: rank-1 among the real items and the reference check of every item
    against the person it claims to show (``identity.json``; see
    :func:`fakescope.evaluation.evaluate_identity`)."""
    from rich.markdown import Markdown

    from fakescope.cli._common import stderr_progress
    from fakescope.evaluation import evaluate_identity, identity_markdown

    with stderr_progress() as bar:
        task = bar.add_task("identity", total=len(items))
        result = evaluate_identity(
            items,
            n_boot=args.bootstrap,
            on_item=lambda item: bar.update(task, advance=1, description=item.media_id[-40:]),
        )
    (Path(args.out) / "identity.json").write_text(
        json.dumps(result, indent=1) + "\n", encoding="utf-8"
    )
    out.print("Identity (identity.json): first half of each real video = gallery, second = probe")
    out.print(Markdown(identity_markdown(result)))

"""Static INT8 (QDQ) quantization of the shipped networks: the face-manipulation detectors,
calibrated on aligned face crops of a face store's *train* split, and the whole-image synthesis
CNNs, calibrated on patches of their run's *train* split; then a fp32-vs-int8 comparison.

    python3 -m fakescope.training.quantize --store cache/faces_v2 \\
        --splits runs/sbi_v4/splits.json --out runs/int8 --models effnet_lite0_v4 --measure

writes ``runs/int8/effnet_lite0_v4_int8.onnx`` (prints its size and sha256), then the
comparison on the store's *val* split: frame AUC per source set (label fake = 1), Pearson r of
the logits, mean / max |delta probability| and ms per crop at batch 16 on 2 intra-op threads.
``--measure-only`` measures files already in ``--out``. ``--models`` takes the stems of
weight configs in ``fakescope/models/assets`` (default: the face networks of
``fused-v4-int8``).

Calibration: ``--calib-count`` crops (default 300) of the ``train`` split of ``--splits`` (the
identity-group assignment a training run wrote), equal shares per source set and, within a
set, per class, spread over source media, drawn with a fixed seed: the same command gives
byte-identical files (:mod:`fakescope.training.quantize_data`). Crops are aligned as training
and scanning align them and normalised as :class:`fakescope.models.OnnxDetector` does.

Default settings (chosen on the val split): ``quant_pre_process``; QDQ, per-channel QInt8
weights, QUInt8 activations (no ``reduce_range``: 7-bit weights lost up to 0.017 AUC), MinMax
calibration (Percentile 99.999 and Entropy were no better on val); the first conv (``stem``),
the classifier head (after the pooled ``embedding``) and the mask head left in float, and no
Q/DQ on graph outputs (:mod:`fakescope.training.quantize_graph`), so the logit, probability,
mask and embedding are not rounded to 256 levels. Outputs keep their names and shapes.

The synthesis networks (``--models synth_cnn_v3``) are quantized the same way, calibrated on
``--calib-count`` patches (half real, half generated, spread over images) of the *train* split
of each set's ``splits.tsv`` (``--synth-splits``, in ``--synth-data``'s order), cut by the
detector's own :meth:`~fakescope.synthesis.CnnSynthesisDetector.patches`; a copy of the weight
config pointing at the int8 network is written beside it (``synth_cnn_v3_int8.json``), and
``--measure`` compares both detectors on the run's ``test.tsv`` (``--synth-test``)::

    python3 -m fakescope.training.quantize --models synth_cnn_v3 --out /tmp/int8 \\
        --synth-data ../shared/data/stylegan2_ffhq ../shared/data/sd21_faces \\
        --synth-splits runs/synth_cnn_v3/splits.tsv runs/synth_cnn_v3/sets/sd21_faces/splits.tsv \\
        --synth-test runs/synth_cnn_v3/test.tsv --measure
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fakescope.errors import FakescopeError, ModelError
from fakescope.training.quantize_data import (
    SEED,
    Normaliser,
    calibration_indices,
    load_splits,
    synth_calibration_patches,
    synth_normalise,
    synth_split,
    synth_test_items,
    synth_weights_json,
    val_indices,
)
from fakescope.training.quantize_graph import (
    EXCLUDE_CHOICES,
    check_interface,
    exclusion_nodes,
    float_outputs,
    interface,
)
from fakescope.training.quantize_report import (
    BATCH,
    THREADS,
    compare,
    ms_per_crop,
    print_synth_table,
    print_table,
    run_all,
    session,
    synth_compare,
)

if TYPE_CHECKING:
    from fakescope.models import WeightConfig
    from fakescope.training.quantize_data import StoreSplits

__all__ = [
    "DEFAULT_MODELS",
    "SYNTH_MODELS",
    "CropReader",
    "QuantSettings",
    "crop_counts",
    "main",
    "quantize",
    "quantize_synth",
]

DEFAULT_MODELS = ("effnet_lite0_sbi", "effnet_lite0_v4")
"""The face networks quantized when ``--models`` is not given: ``fused-v4-int8``'s members."""
SYNTH_MODELS = ("synth_cnn_v3",)
"""Whole-image synthesis networks (``fakescope-synthesis-cnn/1``) shipped with a float file."""
DEFAULT_EXCLUDE = ("stem", "head", "mask")

_U8 = npt.NDArray[np.uint8]
_F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class QuantSettings:
    """How :func:`quantize` calibrates and which parts it leaves in float."""

    method: str = "minmax"
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    reduce_range: bool = False
    percentile: float = 99.999

    def describe(self) -> str:
        ex = "+".join(self.exclude) or "none"
        extra = f" p={self.percentile}" if self.method == "percentile" else ""
        return f"{self.method}{extra}, float: {ex}, reduce_range={self.reduce_range}"


class CropReader:
    """onnxruntime ``CalibrationDataReader`` over normalised crops, ``batch`` at a time;
    ``set_range`` lets the calibrator collect in slices (bounded memory for histograms)."""

    def __init__(self, inputs: _F32, batch: int) -> None:
        self.inputs, self.batch = inputs, batch
        self.set_range(0, len(inputs))

    def __len__(self) -> int:
        return len(self.inputs)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._next, self._end = start_index, min(end_index, len(self.inputs))

    def get_next(self) -> dict[str, _F32] | None:
        if self._next >= self._end:
            return None
        stop = min(self._next + self.batch, self._end)
        out = {"input": self.inputs[self._next : stop]}
        self._next = stop
        return out

    def rewind(self) -> None:
        self.set_range(0, len(self.inputs))


def quantize(
    src: Path,
    dst: Path,
    inputs: _F32,
    settings: QuantSettings | None = None,
    cache_dir: Path | None = None,
) -> None:
    """``quant_pre_process`` + ``quantize_static`` (QDQ, per-channel S8 weights, U8
    activations) of the ONNX network ``src`` (input ``input``) into ``dst``, calibrated on
    ``inputs`` (normalised as the network reads them); graph outputs stay float and the
    interface the same (:class:`~fakescope.errors.ModelError` otherwise). ``cache_dir``
    keeps the calibrated ranges (they depend only on model, data and method)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    from fakescope.training.half_weights import float_weights

    settings = settings or QuantSettings()
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[settings.method]
    # calibrate in slices of `stride` crops (histogram calibrators keep every activation of a
    # slice in memory), `batch` at a time; both must divide evenly (equal-shape batches)
    stride = max(d for d in range(1, 61) if len(inputs) % d == 0)
    batch = max(d for d in range(1, BATCH + 1) if stride % d == 0)
    extra: dict[str, Any] = {
        "CalibStridedMinMax": stride,
        "CalibTensorRangeSymmetric": False,  # U8 activations after ReLU6: use the whole range
    }
    if settings.method == "percentile":
        extra["CalibPercentile"] = settings.percentile
    cache = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(inputs.tobytes()).hexdigest()[:12]
        cache = cache_dir / f"{src.stem}-{settings.method}-{settings.percentile}-{digest}.json"
    with tempfile.TemporaryDirectory(prefix="fakescope-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        plain = onnx.load(str(src))
        if float_weights(plain):  # weights stored in float16 quantize as float32 ones
            src_float = Path(tmp) / "float.onnx"
            onnx.save(plain, str(src_float))
        else:
            src_float = src
        quant_pre_process(str(src_float), str(pre), skip_symbolic_shape=False)
        model = onnx.load(str(pre))
        exclude = exclusion_nodes(model, settings.exclude)
        # nodes that make graph outputs (the output sigmoids) stay float: no Q/DQ on outputs
        outputs = {o.name for o in model.graph.output}
        exclude += [
            n.name for n in model.graph.node if n.op_type == "Sigmoid" and set(n.output) & outputs
        ]
        dst.parent.mkdir(parents=True, exist_ok=True)
        quantize_static(
            str(pre),
            str(dst),
            CropReader(inputs, batch),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=settings.reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=method,
            calibration_providers=["CPUExecutionProvider"],
            extra_options=extra,
            calibration_cache_path=cache,
        )
    float_outputs(dst)
    check_interface(src, dst)


def _written(dst: Path, fp32: Path, start: float) -> str:
    from fakescope.models import sha256_file

    mib = 2**20
    return (
        f"{dst}: {dst.stat().st_size} bytes ({dst.stat().st_size / mib:.2f} MiB, fp32 "
        f"{fp32.stat().st_size / mib:.2f} MiB), sha256 {sha256_file(dst)} "
        f"[{time.perf_counter() - start:.0f} s]"
    )


def run_faces(
    args: argparse.Namespace, models: Sequence[str], settings: QuantSettings, report: dict[str, Any]
) -> None:
    """Quantize (and with ``--measure`` compare) the face networks ``models``."""
    from fakescope.models import OnnxDetector, WeightConfig, asset_path, sha256_file
    from fakescope.training.crops import aligned_crops

    data = load_splits(args.store, args.splits)
    configs = {m: WeightConfig.from_json(asset_path(f"{m}.json")) for m in models}
    for m, cfg in configs.items():
        if sha256_file(asset_path(cfg.file)) != cfg.sha256:
            raise ModelError(f"{cfg.file}: sha256 does not match {m}.json")
    crops: dict[tuple[int, float, str], _U8] = {}

    def crops_for(cfg: WeightConfig, idx: npt.NDArray[np.int64], tag: str) -> _U8:
        key = (cfg.input_size, cfg.margin, tag)
        if key not in crops:
            crops[key] = aligned_crops(data.store, idx, cfg.input_size, cfg.margin)
        return crops[key]

    if not args.measure_only:
        cidx = calibration_indices(data, args.calib_count, args.seed)
        counts = crop_counts(data, cidx)
        print(f"calibration: {len(cidx)} train crops ({counts}); {settings.describe()}")
        for m, cfg in configs.items():
            inputs = Normaliser(cfg)(crops_for(cfg, cidx, "calib"))
            dst, start = args.out / f"{m}_int8.onnx", time.perf_counter()
            quantize(asset_path(cfg.file), dst, inputs, settings, args.calib_cache)
            print(_written(dst, asset_path(cfg.file), start))
    if not (args.measure or args.measure_only):
        return
    vidx = val_indices(data, args.val_per_set)
    for m, cfg in configs.items():
        val_crops = crops_for(cfg, vidx, "val")
        inputs = Normaliser(cfg)(val_crops)
        fp32, int8 = asset_path(cfg.file), args.out / f"{m}_int8.onnx"
        check_interface(fp32, int8)
        # the input transform here must be the scanner's own
        ref = OnnxDetector(cfg, THREADS).predict(val_crops[:BATCH])
        mine = run_all(session(fp32), inputs[:BATCH], [interface(fp32)[1][0]])[0]
        if not np.allclose(ref, mine.reshape(-1), atol=1e-6):
            raise ModelError(f"{m}: preprocessing differs from OnnxDetector")
        result = compare(fp32, int8, inputs, data.labels[vidx], data.datasets[vidx])
        speed = ms_per_crop([fp32, int8], inputs)
        result["ms_per_crop"] = {"fp32": speed[0], "int8": speed[1]}
        result["int8_file"] = {"bytes": int8.stat().st_size, "sha256": sha256_file(int8)}
        report["models"][m] = result
        print_table(m, result, (speed[0], speed[1]))


def crop_counts(data: StoreSplits, idx: npt.NDArray[np.int64]) -> str:
    """``"<set> <reals>r/<fakes>f, ..."`` of the crops at ``idx``."""
    sets, labels = data.datasets[idx], data.labels[idx]
    counts = [
        (d, int(((sets == d) & (labels == 0)).sum()), int(((sets == d) & (labels == 1)).sum()))
        for d in sorted(set(sets.tolist()))
    ]
    return ", ".join(f"{d} {r}r/{f}f" for d, r, f in counts)


def run_synth(
    args: argparse.Namespace, models: Sequence[str], settings: QuantSettings, report: dict[str, Any]
) -> None:
    """Quantize (and with ``--measure`` compare) the synthesis networks ``models``."""
    from fakescope.models import asset_path, sha256_file
    from fakescope.synthesis import CnnSynthesisDetector

    pairs = list(zip(args.synth_data, args.synth_splits, strict=True))
    for m in models:
        src_json = asset_path(f"{m}.json")
        fp32_det = CnnSynthesisDetector.from_json(src_json, THREADS)  # checks the sha256
        fp32 = fp32_det.network_path
        dst, dst_json = args.out / f"{m}_int8.onnx", args.out / f"{m}_int8.json"
        if not args.measure_only:
            train = [x for d, s in pairs for x in synth_split(d, s, "train")]
            start = time.perf_counter()
            summary = quantize_synth(
                src_json,
                dst,
                dst_json,
                train,
                args.calib_count,
                args.seed,
                settings,
                args.calib_cache,
            )
            splits = ", ".join(str(s) for s in args.synth_splits)
            print(
                f"calibration: {', '.join(summary)} of the {len(train)} train images of "
                f"{splits}; {settings.describe()}"
            )
            print(f"{_written(dst, fp32, start)}; weights {dst_json}")
        if args.measure or args.measure_only:
            check_interface(fp32, dst)
            if not dst_json.is_file():
                synth_weights_json(src_json, dst, dst_json)
            items = synth_test_items(args.synth_test, args.synth_data[0])
            expected = {p.name for d, s in pairs for p, _ in synth_split(d, s, "test")}
            if {p.name for p, _ in items} != expected:
                raise ModelError(f"{args.synth_test} is not the test split of {args.synth_splits}")
            result = synth_compare(src_json, dst_json, items)
            result["int8_file"] = {"bytes": dst.stat().st_size, "sha256": sha256_file(dst)}
            report["models"][m] = result
            print_synth_table(m, result)


def quantize_synth(
    src_json: Path,
    dst: Path,
    dst_json: Path,
    train: list[tuple[Path, int]],
    count: int,
    seed: int = SEED,
    settings: QuantSettings | None = None,
    cache_dir: Path | None = None,
) -> list[str]:
    """Quantize the synthesis network of the weight config ``src_json`` into ``dst``,
    calibrated on ``count`` patches of the ``train`` images (path, label) cut by the
    detector's own patching and normalised as it normalises them; writes ``dst_json``, a copy
    of ``src_json`` pointing at ``dst`` (calibration unchanged: refit it on the int8 scores).
    Returns the calibration patches' summary per class."""
    from fakescope.synthesis import CnnSynthesisDetector

    fp32_det = CnnSynthesisDetector.from_json(src_json, THREADS)  # checks the sha256
    fp32 = fp32_det.network_path
    patches, summary = synth_calibration_patches(fp32_det, train, count, seed)
    inputs = synth_normalise(fp32_det, patches)
    # the input transform here must be the detector's own
    ref = fp32_det.logits(patches[:BATCH])
    mine = run_all(session(fp32), inputs[:BATCH], ["logit"])[0]
    if not np.allclose(ref, mine.reshape(-1), atol=1e-6):
        raise ModelError(f"{src_json}: preprocessing differs from CnnSynthesisDetector")
    quantize(fp32, dst, inputs, settings, cache_dir)
    synth_weights_json(src_json, dst, dst_json)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m fakescope.training.quantize",
        description=(__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("--store", type=Path, default=Path("cache/faces_v2"))
    parser.add_argument("--splits", type=Path, default=Path("runs/sbi_v4/splits.json"))
    parser.add_argument("--out", type=Path, required=True, help="folder for <name>_int8.onnx")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--calib-count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=SEED, help="crop choice seed")
    parser.add_argument("--method", choices=("minmax", "entropy", "percentile"), default="minmax")
    parser.add_argument("--percentile", type=float, default=99.999)
    parser.add_argument(
        "--float-parts",
        nargs="*",
        choices=EXCLUDE_CHOICES,
        default=list(DEFAULT_EXCLUDE),
        help="parts left in float (default: stem head mask; none given: all int8)",
    )
    parser.add_argument("--reduce-range", action="store_true", help="7-bit weights")
    parser.add_argument("--measure", action="store_true", help="then compare fp32 vs int8")
    parser.add_argument(
        "--measure-only", action="store_true", help="only compare (files already in --out)"
    )
    parser.add_argument("--val-per-set", type=int, default=800)
    parser.add_argument(
        "--synth-data",
        type=Path,
        nargs="+",
        default=[Path("../shared/data/stylegan2_ffhq"), Path("../shared/data/sd21_faces")],
        help="generated-image set(s) of the synthesis run (MANIFEST.tsv), one per --synth-splits",
    )
    parser.add_argument(
        "--synth-splits",
        type=Path,
        nargs="+",
        default=[
            Path("runs/synth_cnn_v3/splits.tsv"),
            Path("runs/synth_cnn_v3/sets/sd21_faces/splits.tsv"),
        ],
        help="each set's splits.tsv (file, label, split), in --synth-data's order",
    )
    parser.add_argument("--synth-test", type=Path, default=Path("runs/synth_cnn_v3/test.tsv"))
    parser.add_argument("--calib-cache", type=Path, default=None, help="reuse ranges from here")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line of the module docstring; returns the report (also ``--json``)."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # before onnxruntime is imported
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    args = build_parser().parse_args(argv)
    import cv2

    cv2.setNumThreads(THREADS)
    settings = QuantSettings(
        args.method, tuple(args.float_parts), args.reduce_range, args.percentile
    )
    report: dict[str, Any] = {"settings": settings.describe(), "models": {}}
    synth = [m for m in args.models if m in SYNTH_MODELS]
    faces = [m for m in args.models if m not in SYNTH_MODELS]
    try:
        if synth:
            run_synth(args, synth, settings, report)
        if faces:
            run_faces(args, faces, settings, report)
    except FakescopeError as exc:
        raise SystemExit(f"error: {exc}") from exc
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()

"""Static INT8 (QDQ) quantization of the shipped face-manipulation detectors, calibrated on
real aligned face crops of the face store's *train* split, and a fp32-vs-int8 comparison on
its *val* split.

    PYTHONPATH=src python3 tools/quantize_detectors.py --store cache/faces_v2 \\
        --splits runs/sbi_v3/splits.json --out /tmp/int8 --measure

writes ``/tmp/int8/effnet_lite0_sbi_int8.onnx`` and ``/tmp/int8/effnet_lite0_v3_int8.onnx``
(prints each file's size and sha256), then the comparison table: frame AUC per source set
(label fake = 1), Pearson r of the logits, mean / max |delta probability| and ms per crop at
batch 16 on 2 intra-op threads. ``--measure-only`` measures files already in ``--out``.

Calibration: ``--calib-count`` crops (default 300) of the ``train`` split of ``--splits`` (the
identity-group assignment a training run wrote, ``groups`` -> ``train``/``val``/``calib``/
``test``; a crop's split is its group's), equal shares per source set and, within a set, per
class (real/fake), spread over source media, drawn with a fixed seed: the same command gives
byte-identical files. Crops are aligned exactly as training and scanning do
(:func:`fakescope.training.train_sbi.align` with the weight config's ``input_size`` and
``margin``) and normalised exactly as :meth:`fakescope.models.OnnxDetector._run` does.
The FF++ c40 development set is never read.

Default settings (chosen on the val split, see ``--help``): ``quant_pre_process``; QDQ,
per-channel QInt8 weights, QUInt8 activations (no ``reduce_range``: 7-bit weights lost up to
0.017 AUC), MinMax calibration (Percentile 99.999 and Entropy were no better on val); the first
conv (``stem``, on the normalised image), the classifier head (the ``Gemm`` + ``Gather`` after
the pooled ``embedding``) and the mask head (the segmentation convs after the shared backbone)
left in float, and no Q/DQ on graph outputs, so the logit, probability, mask and embedding are
not rounded to 256 levels. Outputs keep their names and shapes.

The whole-image synthesis network (``--models synth_cnn_v1``, EfficientNet-Lite0 on
native-resolution patches) is quantized the same way (same settings, stem / classifier ``Gemm``
/ graph outputs ``logit`` and ``embedding`` in float):

    PYTHONPATH=src python3 tools/quantize_detectors.py --models synth_cnn_v1 --out /tmp/int8 \
        --measure

``cnn-v2`` (GAN and diffusion sets) takes every set's train split, each set with its own
``splits.tsv`` (the sd21 set has no reals; the stylegan2 set's give the real patches):

    PYTHONPATH=src python3 tools/quantize_detectors.py --models synth_cnn_v2 --out /tmp/int8 \
        --synth-data ../shared/data/stylegan2_ffhq ../shared/data/sd21_faces \
        --synth-splits runs/synth_cnn_v2/splits.tsv runs/synth_cnn_v2/sets/sd21_faces/splits.tsv \
        --synth-test runs/synth_cnn_v2/test.tsv --measure

calibrates on ``--calib-count`` patches (half from real, half from generated images, spread
over images, fixed seed) of the *train* split of ``--synth-splits`` (the run's
``splits.tsv``; file names resolved through ``--synth-data``'s MANIFEST.tsv), cut by the
detector's own :meth:`fakescope.synthesis.CnnSynthesisDetector.patches` and normalised as its
``_run`` does. It writes ``<out>/synth_cnn_v1_int8.onnx`` and, beside it, a copy of the weight
config pointing at it (``synth_cnn_v1_int8.json``, same calibration), so that
``fakescope.synthesis.create_synthesis_detector("<out>/synth_cnn_v1_int8.json")`` loads it.
``--measure`` then compares both detectors on the *test* split (``--synth-test``, the run's
``test.tsv``): image AUC of the raw score (mean patch logit), Pearson r of the raw scores,
mean / max |delta calibrated probability|, embedding cosine and ms per image (one image a
call, 2 intra-op threads).
"""

from __future__ import annotations

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # before onnxruntime is imported, anywhere
os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_MODELS = ("effnet_lite0_sbi", "effnet_lite0_v3")
SYNTH_MODELS = (
    "synth_cnn_v1",
    "synth_cnn_v2",
)  # whole-image synthesis networks (fakescope-synthesis-cnn/1)
NEVER_READ = "ffpp_c40_videos"  # the FF++ c40 development set
EXCLUDE_CHOICES = ("stem", "head", "mask")
DEFAULT_EXCLUDE = ("stem", "head", "mask")
THREADS = 2
BATCH = 16
SEED = 0

_U8 = npt.NDArray[np.uint8]
_F32 = npt.NDArray[np.float32]


def _assets() -> Path:
    from fakescope.models import asset_path

    return asset_path("effnet_lite0_sbi.json").parent


def sha256_of(path: Path) -> str:
    from fakescope.models import sha256_file

    return sha256_file(path)


# --------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class StoreSplits:
    store: Any  # FaceStore
    datasets: npt.NDArray[np.str_]
    labels: npt.NDArray[np.int64]
    media: npt.NDArray[np.str_]
    splits: npt.NDArray[np.str_]


def load_splits(store_root: Path, splits_file: Path) -> StoreSplits:
    """The store's crops with each crop's split from ``splits_file`` (by identity group).
    Crops whose group the file does not know get split ``""`` (never used); development-only
    sets (FF++ c40) get ``"dev"`` (never used)."""
    from fakescope.training.store import DEV_ONLY, FaceStore

    store = FaceStore.open(store_root)
    info = json.loads(splits_file.read_text(encoding="utf-8"))
    groups: dict[str, str] = info["groups"]
    datasets = store.column("dataset")
    splits = np.array([groups.get(r["group"], "") for r in store.rows])
    splits[np.isin(datasets, sorted(DEV_ONLY))] = "dev"
    unknown = int((splits == "").sum())
    if unknown:
        print(f"warning: {unknown} crops of groups not in {splits_file}: not used", file=sys.stderr)
    # the file also records crop counts per set and split: they must match this store
    for name, per_split in info.get("crops", {}).items():
        for split, n in per_split.items():
            have = int(((datasets == name) & (splits == split)).sum())
            if have != n:
                print(
                    f"warning: {splits_file} counts {n} {name} crops in {split}, store has {have}",
                    file=sys.stderr,
                )
    return StoreSplits(
        store, datasets, store.column("labels"), store.column("media_id"), splits.astype(str)
    )


def _spread(idx: npt.NDArray[np.int64], media: npt.NDArray[np.str_], rng: Any) -> list[int]:
    """``idx`` shuffled, then reordered so that the first picks come from distinct media."""
    order = rng.permutation(idx)
    seen: dict[str, int] = {}
    rank = []
    for i in order:
        m = str(media[i])
        rank.append(seen.get(m, 0))
        seen[m] = seen.get(m, 0) + 1
    return [int(order[k]) for k in np.argsort(rank, kind="stable")]


def calibration_indices(data: StoreSplits, count: int, seed: int = SEED) -> npt.NDArray[np.int64]:
    """``count`` train crops: equal shares per source set, and within a set per class present
    (a set with reals only gives reals), spread over media, fixed ``seed``."""
    rng = np.random.default_rng(seed)
    train = data.splits == "train"
    names = sorted(set(data.datasets[train].tolist()))
    out: list[int] = []
    for k, name in enumerate(names):
        share = count // len(names) + (k < count % len(names))
        pools = [
            np.nonzero(train & (data.datasets == name) & (data.labels == c))[0] for c in (0, 1)
        ]
        pools = [p for p in pools if len(p)]
        for j, pool in enumerate(pools):
            n = share // len(pools) + (j < share % len(pools))
            out.extend(_spread(pool, data.media, rng)[:n])
    return np.sort(np.array(out, np.int64))


def val_indices(data: StoreSplits, per_set: int) -> npt.NDArray[np.int64]:
    """The ``val`` crops, at most ``per_set`` per source set, evenly spaced (as the trainer's
    validation picks them)."""
    out = []
    for name in sorted(set(data.datasets.tolist())):
        idx = np.nonzero((data.datasets == name) & (data.splits == "val"))[0]
        if len(idx) > per_set:
            idx = idx[np.linspace(0, len(idx) - 1, per_set).round().astype(np.int64)]
        out.append(idx)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def aligned_crops(data: StoreSplits, idx: npt.NDArray[np.int64], size: int, margin: float) -> _U8:
    """(N, size, size, 3) uint8 RGB crops aligned as training and scanning align them."""
    from fakescope.training.train_sbi import align

    out = np.empty((len(idx), size, size, 3), np.uint8)
    for k, i in enumerate(idx):
        out[k] = align(data.store.images[int(i)], data.store.landmarks[int(i)], size, margin)[0]
    return out


class Normaliser:
    """The exact input transform of :meth:`fakescope.models.OnnxDetector._run`."""

    def __init__(self, config: Any) -> None:
        self.size = config.input_size
        self._mean = np.asarray(config.mean, dtype=np.float32) * 255.0
        self._inv_std = 1.0 / (np.asarray(config.std, dtype=np.float32) * 255.0)

    def __call__(self, crops: _U8) -> _F32:
        batch = crops.astype(np.float32) - self._mean
        batch *= self._inv_std
        return batch.transpose(0, 3, 1, 2).copy()


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


# --------------------------------------------------------------------------------------------
# quantization


def _producers(model: Any) -> dict[str, Any]:
    return {o: n for n in model.graph.node for o in n.output}


def _ancestors(model: Any, tensor: str) -> set[str]:
    """Names of the nodes ``tensor`` depends on."""
    prod = _producers(model)
    seen: set[str] = set()
    stack = [tensor]
    while stack:
        node = prod.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        stack.extend(node.input)
    return seen


def exclusion_nodes(model: Any, parts: Sequence[str]) -> list[str]:
    """Node names of the named parts: ``stem`` the first conv (on the graph input), ``head``
    the classifier after the pooled features (``embedding``, or the last ReduceMean), ``mask``
    the nodes only the ``mask`` output needs."""
    names: set[str] = set()
    nodes = list(model.graph.node)
    outputs = [o.name for o in model.graph.output]
    score = outputs[0]  # fake_probability / logit
    if "stem" in parts:
        first = next(n for n in nodes if n.op_type == "Conv" and "input" in n.input)
        names.add(first.name)
    if "head" in parts:
        pooled = [n for n in nodes if n.op_type == "ReduceMean"][-1]
        names |= _ancestors(model, score) - _ancestors(model, pooled.output[0])
    if "mask" in parts and "mask" in outputs:
        shared = set().union(*(_ancestors(model, o) for o in outputs if o != "mask"))
        names |= _ancestors(model, "mask") - shared
    return sorted(n for n in names if n)


@dataclass(frozen=True)
class QuantSettings:
    method: str = "minmax"
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    reduce_range: bool = False
    percentile: float = 99.999

    def describe(self) -> str:
        ex = "+".join(self.exclude) or "none"
        extra = f" p={self.percentile}" if self.method == "percentile" else ""
        return f"{self.method}{extra}, float: {ex}, reduce_range={self.reduce_range}"


def quantize(
    src: Path, dst: Path, inputs: _F32, settings: QuantSettings, cache_dir: Path | None = None
) -> None:
    """``quant_pre_process`` + ``quantize_static`` (QDQ, per-channel S8 weights, U8
    activations) of ``src`` into ``dst``, calibrated on ``inputs``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

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
    if cache_dir is not None:  # ranges depend only on model, data and method: reuse them
        cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(inputs.tobytes()).hexdigest()[:12]
        cache = cache_dir / f"{src.stem}-{settings.method}-{settings.percentile}-{digest}.json"
    with tempfile.TemporaryDirectory(prefix="fakescope-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
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


def _interface(path: Path) -> list[tuple[str, list[Any]]]:
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    return [
        (v.name, [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim])
        for v in [*g.input, *g.output]
    ]


def float_outputs(path: Path) -> int:
    """Rewrite ``path`` so that no graph output is the output of a DequantizeLinear: the
    quantizer puts a Q/DQ pair on graph outputs (the probability and mask of the output
    Sigmoids, the embedding when the Gemm after it is quantized), which rounds them to 256
    levels. The output then comes straight from the float tensor before the pair; consumers
    inside the graph keep reading the DQ. Returns how many outputs were rewired."""
    import onnx

    model = onnx.load(str(path))
    nodes = list(model.graph.node)
    prod = {o: n for n in nodes for o in n.output}
    changed = 0
    for out in model.graph.output:
        dq = prod.get(out.name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = prod.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        x, dq_name = q.input[0], out.name + "_dq"
        for n in nodes:  # in-graph readers of the output go on reading the DQ
            n.input[:] = [dq_name if i == out.name else i for i in n.input]
        dq.output[0] = dq_name
        for n in nodes:  # the float tensor takes the output's name
            n.input[:] = [out.name if i == x else i for i in n.input]
            n.output[:] = [out.name if o == x else o for o in n.output]
        changed += 1
    if changed:
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return changed


def check_interface(fp32: Path, int8: Path) -> None:
    """The int8 file must have the float file's inputs and outputs: names, order, shapes."""
    a, b = _interface(fp32), _interface(int8)
    if a != b:
        raise SystemExit(f"{int8}: interface changed: {b} != {a}")


# --------------------------------------------------------------------------------------------
# measurement


def session(model: Any) -> Any:
    """A CPU session as the brief (and fakescope's runtime) builds it: 2 intra-op threads,
    no spinning. ``model`` is a path or serialised bytes."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        model if isinstance(model, bytes) else str(model), opts, providers=["CPUExecutionProvider"]
    )


def with_logit(path: Path) -> tuple[bytes, str | None]:
    """The model with the pre-sigmoid score added as an output (for the logit correlation),
    and that output's name (None if the score output is not a Sigmoid)."""
    import onnx

    model = onnx.load(str(path))
    score = model.graph.output[0].name
    node = _producers(model).get(score)
    if node is None or node.op_type != "Sigmoid":
        return model.SerializeToString(), None
    logit = node.input[0]
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(logit))
    return model.SerializeToString(), logit


def run_all(sess: Any, inputs: _F32, names: list[str]) -> list[npt.NDArray[np.float64]]:
    parts: list[list[Any]] = [[] for _ in names]
    for start in range(0, len(inputs), BATCH):
        res = sess.run(names, {"input": inputs[start : start + BATCH]})
        for p, r in zip(parts, res, strict=True):
            p.append(np.asarray(r, np.float64))
    return [np.concatenate(p) for p in parts]


def ms_per_crop(paths: Sequence[Path], inputs: _F32, rounds: int = 30) -> list[float]:
    """Median ms per crop at batch 16 of each model, rounds interleaved (a shared machine's
    load then hits all models alike)."""
    sessions = [session(p) for p in paths]
    batch = {"input": inputs[:BATCH]}
    for s in sessions:
        for _ in range(3):
            s.run(None, batch)
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(rounds):
        for s, t in zip(sessions, times, strict=True):
            start = time.perf_counter()
            s.run(None, batch)
            t.append((time.perf_counter() - start) * 1000 / BATCH)
    return [float(np.median(t)) for t in times]


def compare(
    fp32: Path,
    int8: Path,
    inputs: _F32,
    labels: npt.NDArray[np.int64],
    datasets: npt.NDArray[np.str_],
) -> dict[str, Any]:
    """Per source set and overall: AUC fp32/int8, Pearson r of logits, |delta p|; and mask /
    embedding deltas."""
    from fakescope.evaluation import roc_auc_or_none

    outs = [o for o, _ in _interface(fp32)[1:]]
    res = []
    for path in (fp32, int8):
        blob, logit = with_logit(path)
        names = outs + ([logit] if logit else [])
        got = dict(zip(names, run_all(session(blob), inputs, names), strict=True))
        if logit:
            got["_logit"] = got[logit].reshape(-1)
        else:  # the score output is itself a logit
            got["_logit"] = got[outs[0]].reshape(-1)
            got[outs[0]] = 1 / (1 + np.exp(-got["_logit"]))
        res.append(got)
    a, b = res
    p32, p8 = a[outs[0]].reshape(-1), b[outs[0]].reshape(-1)
    rows = {}
    for name in [*sorted(set(datasets.tolist())), "all"]:
        keep = np.ones(len(labels), bool) if name == "all" else datasets == name
        auc32 = roc_auc_or_none(labels[keep], p32[keep])
        auc8 = roc_auc_or_none(labels[keep], p8[keep])
        d = np.abs(p32[keep] - p8[keep])
        rows[name] = {
            "n": int(keep.sum()),
            "fake": int(labels[keep].sum()),
            "auc_fp32": auc32,
            "auc_int8": auc8,
            "r_logit": float(np.corrcoef(a["_logit"][keep], b["_logit"][keep])[0, 1]),
            "dp_mean": float(d.mean()),
            "dp_max": float(d.max()),
        }
    extra = {}
    if "mask" in a:
        extra["mask_dmean"] = float(np.abs(a["mask"] - b["mask"]).mean())
        extra["mask_dmax"] = float(np.abs(a["mask"] - b["mask"]).max())
    if "embedding" in a:
        ea, eb = a["embedding"], b["embedding"]
        cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
        extra["emb_cos_min"] = float(cos.min())
        extra["emb_cos_mean"] = float(cos.mean())
    return {"sets": rows, **extra}


def _f(x: float | None, fmt: str = ".4f") -> str:
    return "n/a" if x is None else format(x, fmt)


def print_table(name: str, result: dict[str, Any], speed: tuple[float, float]) -> None:
    print(
        f"\n{name}: fp32 {speed[0]:.2f} ms/crop, int8 {speed[1]:.2f} ms/crop "
        f"(x{speed[0] / speed[1]:.2f}) at batch {BATCH}, {THREADS} threads"
    )
    head = (
        f"{'set':<17}{'n':>5}{'fake':>5}{'AUC fp32':>10}{'AUC int8':>10}{'dAUC':>9}"
        f"{'r logit':>9}{'mean|dp|':>10}{'max|dp|':>9}"
    )
    print(head)
    print("-" * len(head))
    for set_name, r in result["sets"].items():
        d = None if r["auc_fp32"] is None else r["auc_int8"] - r["auc_fp32"]
        print(
            f"{set_name:<17}{r['n']:>5}{r['fake']:>5}{_f(r['auc_fp32']):>10}"
            f"{_f(r['auc_int8']):>10}{_f(d, '+.4f'):>9}{r['r_logit']:>9.4f}"
            f"{r['dp_mean']:>10.4f}{r['dp_max']:>9.4f}"
        )
    if "mask_dmean" in result:
        print(f"mask: mean |d| {result['mask_dmean']:.4f}, max |d| {result['mask_dmax']:.4f}")
    if "emb_cos_mean" in result:
        print(
            f"embedding cosine fp32 vs int8: mean {result['emb_cos_mean']:.4f}, "
            f"min {result['emb_cos_min']:.4f}"
        )


# --------------------------------------------------------------------------------------------
# the whole-image synthesis network


def _guard(path: Path) -> Path:
    if NEVER_READ in Path(path).as_posix():
        raise SystemExit(f"{path}: the FF++ c40 development set is never read")
    return path


def _manifest_paths(root: Path) -> dict[str, tuple[Path, int]]:
    """File name -> (path, label) of a generated-image set's MANIFEST.tsv."""
    import csv

    with (_guard(root) / "MANIFEST.tsv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out: dict[str, tuple[Path, int]] = {}
    for r in rows:
        name = Path(r["file"]).name
        if name in out:
            raise SystemExit(f"{root}: file name {name} is not unique")
        out[name] = (root / r["file"], int(r["label"].strip().lower() == "fake"))
    return out


def synth_split(data_root: Path, splits_file: Path, split: str) -> list[tuple[Path, int]]:
    """(path, label) of the images of ``split`` in a synthesis run's ``splits.tsv``
    (``file``, ``label``, ``split``), in the file's order."""
    import csv

    known = _manifest_paths(data_root)
    with _guard(splits_file).open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["split"] == split]
    out = []
    for r in rows:
        path, label = known[r["file"]]
        if label != int(r["label"]):
            raise SystemExit(f"{splits_file}: {r['file']} has label {r['label']}, manifest {label}")
        out.append((_guard(path), label))
    return out


def synth_test_items(test_file: Path, data_root: Path) -> list[tuple[Path, int]]:
    """(path, label) of a run's ``test.tsv`` (fakescope manifest: ``path``, ``label``
    real/fake, ``dataset``). A path that does not exist here (the run was made in another
    work tree) is taken relative to ``data_root`` when the row's dataset is its folder."""
    import csv

    with _guard(test_file).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = []
    for r in rows:
        path = Path(r["path"])
        if not path.is_file():
            parts = path.parts
            if r["dataset"] != data_root.name or r["dataset"] not in parts:
                raise SystemExit(f"{test_file}: cannot find {path}")
            k = len(parts) - 1 - parts[::-1].index(r["dataset"])
            path = data_root.joinpath(*parts[k + 1 :])
        label = {"real": 0, "fake": 1}[r["label"].strip().lower()]
        out.append((_guard(path), label))
    return out


def read_rgb(path: Path) -> _U8:
    """An image file as RGB uint8 (OpenCV, as :func:`fakescope.io` decodes still images)."""
    import cv2

    bgr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot decode {path}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def synth_normalise(detector: Any, patches: _U8) -> _F32:
    """The exact input transform of :meth:`CnnSynthesisDetector._run`."""
    x = (patches.transpose(0, 3, 1, 2).astype(np.float32) - detector._mean) / detector._std
    return np.ascontiguousarray(x)


def synth_calibration_patches(
    detector: Any, items: list[tuple[Path, int]], count: int, seed: int = SEED
) -> tuple[_U8, list[str]]:
    """``count`` patches of ``items`` cut by ``detector.patches``: half (rounded up) from
    real, half from generated images; within a class, picks are spread over images (every
    image gives one patch before any gives two), fixed ``seed``. Returns the patches (real
    ones first) and a summary per class."""
    rng = np.random.default_rng(seed)
    cut = {i: detector.patches(read_rgb(path)) for i, (path, _) in enumerate(items)}
    labels = np.array([label for _, label in items], np.int64)
    picks: list[tuple[int, int]] = []
    summary = []
    for c in (0, 1):
        n = count // 2 + (c == 0 and count % 2 == 1)
        pool = [(int(i), k) for i in np.nonzero(labels == c)[0] for k in range(len(cut[int(i)]))]
        owner = np.array([f"{i}" for i, _ in pool])
        order = _spread(np.arange(len(pool), dtype=np.int64), owner, rng)[:n]
        chosen = sorted(pool[j] for j in order)
        picks += chosen
        summary.append(
            f"{len(chosen)} {'real' if c == 0 else 'generated'} patches of "
            f"{len({i for i, _ in chosen})} images"
        )
    return np.stack([cut[i][k] for i, k in picks]), summary


def synth_weights_json(src_json: Path, int8: Path, dst_json: Path) -> Path:
    """A copy of the weight config ``src_json`` for the network ``int8`` (its file name
    relative to ``dst_json``'s folder when it is there, else absolute; its sha256)."""
    data = json.loads(src_json.read_text(encoding="utf-8"))
    file = int8.name if int8.parent.resolve() == dst_json.parent.resolve() else str(int8.resolve())
    data.update(
        file=file,
        sha256=sha256_of(int8),
        name=f"{data['name']}-int8",
        architecture=f"{data['architecture']}; static INT8 (QDQ) of {data['file']}",
    )
    dst_json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return dst_json


def _ms_per_image(detectors: Sequence[Any], images: Sequence[_U8], rounds: int = 3) -> list[float]:
    """Median ms of ``detector.score([image])`` per detector, interleaved."""
    for d in detectors:
        d.score(images[:2])
    times: list[list[float]] = [[] for _ in detectors]
    for _ in range(rounds):
        for image in images:
            for d, t in zip(detectors, times, strict=True):
                start = time.perf_counter()
                d.score([image])
                t.append((time.perf_counter() - start) * 1000)
    return [float(np.median(t)) for t in times]


def synth_compare(
    fp32_json: Path, int8_json: Path, items: list[tuple[Path, int]], timing_images: int = 24
) -> dict[str, Any]:
    """fp32 vs int8 detectors (each built by ``create_synthesis_detector`` from its weight
    JSON) on ``items``: image AUC of the raw score, Pearson r of the raw scores, |delta
    calibrated probability|, patch embedding cosine; ms per image on ``THREADS`` threads."""
    from fakescope.evaluation import roc_auc_or_none
    from fakescope.synthesis import CnnSynthesisDetector, create_synthesis_detector

    images = [read_rgb(p) for p, _ in items]
    labels = np.array([label for _, label in items], np.int64)
    raw, prob, emb = [], [], []
    for path in (fp32_json, int8_json):
        det = create_synthesis_detector(str(path))
        assert isinstance(det, CnnSynthesisDetector), type(det)
        r = det.score(images)
        raw.append(r)
        prob.append(det.probability(r))
        emb.append(np.concatenate([det.embeddings(det.patches(im)) for im in images]))
    d = np.abs(prob[0] - prob[1])
    ea, eb = emb
    cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
    threshold = json.loads(fp32_json.read_text(encoding="utf-8"))["threshold"]
    flips = int(((prob[0] >= threshold) != (prob[1] >= threshold)).sum())
    # timing with exactly THREADS intra-op threads (create_synthesis_detector lets
    # onnxruntime pick), on the first `timing_images` images
    timed = [CnnSynthesisDetector.from_json(p, THREADS) for p in (fp32_json, int8_json)]
    sizes = sorted({im.shape[:2] for im in images[:timing_images]})
    speed = _ms_per_image(timed, images[:timing_images])
    return {
        "n": len(items),
        "fake": int(labels.sum()),
        "auc_fp32": roc_auc_or_none(labels, raw[0]),
        "auc_int8": roc_auc_or_none(labels, raw[1]),
        "r_raw": float(np.corrcoef(raw[0], raw[1])[0, 1]),
        "raw_dmean": float(np.abs(raw[0] - raw[1]).mean()),
        "raw_dmax": float(np.abs(raw[0] - raw[1]).max()),
        "dp_mean": float(d.mean()),
        "dp_max": float(d.max()),
        "decision_flips": flips,
        "emb_cos_mean": float(cos.mean()),
        "emb_cos_min": float(cos.min()),
        "ms_per_image": {"fp32": speed[0], "int8": speed[1]},
        "timing_sizes": [f"{w}x{h}" for h, w in sizes],
    }


def print_synth_table(name: str, r: dict[str, Any]) -> None:
    f32, i8 = r["ms_per_image"]["fp32"], r["ms_per_image"]["int8"]
    sizes = ", ".join(r["timing_sizes"])
    print(
        f"\n{name}: fp32 {f32:.1f} ms/image, int8 {i8:.1f} ms/image (x{f32 / i8:.2f}), "
        f"{sizes} images, one a call, {THREADS} threads"
    )
    head = (
        f"{'split':<8}{'n':>4}{'fake':>5}{'AUC fp32':>10}{'AUC int8':>10}{'dAUC':>9}"
        f"{'r raw':>8}{'mean|dp|':>10}{'max|dp|':>9}{'flips':>7}"
    )
    print(head)
    print("-" * len(head))
    print(
        f"{'test':<8}{r['n']:>4}{r['fake']:>5}{_f(r['auc_fp32']):>10}{_f(r['auc_int8']):>10}"
        f"{_f(r['auc_int8'] - r['auc_fp32'], '+.4f'):>9}{r['r_raw']:>8.4f}"
        f"{r['dp_mean']:>10.4f}{r['dp_max']:>9.4f}{r['decision_flips']:>7}"
    )
    print(
        f"raw score (mean patch logit): mean |d| {r['raw_dmean']:.4f}, max |d| {r['raw_dmax']:.4f};"
        f" patch embedding cosine: mean {r['emb_cos_mean']:.4f}, min {r['emb_cos_min']:.4f}"
    )


def run_synth(
    args: argparse.Namespace, models: Sequence[str], settings: QuantSettings, report: dict[str, Any]
) -> None:
    from fakescope.synthesis import CnnSynthesisDetector

    for m in models:
        src_json = _assets() / f"{m}.json"
        fp32_det = CnnSynthesisDetector.from_json(src_json, THREADS)  # checks the sha256
        fp32 = fp32_det.network_path
        dst = args.out / f"{m}_int8.onnx"
        dst_json = args.out / f"{m}_int8.json"
        pairs = list(zip(args.synth_data, args.synth_splits, strict=True))
        if not args.measure_only:
            train = [x for d, s in pairs for x in synth_split(d, s, "train")]
            patches, summary = synth_calibration_patches(
                fp32_det, train, args.calib_count, args.seed
            )
            inputs = synth_normalise(fp32_det, patches)
            # the input transform here must be the detector's own
            ref = fp32_det.logits(patches[:BATCH])
            mine = run_all(session(fp32), inputs[:BATCH], ["logit"])[0]
            if not np.allclose(ref, mine.reshape(-1), atol=1e-6):
                raise SystemExit(f"{m}: preprocessing differs from CnnSynthesisDetector")
            print(
                f"calibration: {', '.join(summary)} of the {len(train)} train images of "
                f"{', '.join(str(s) for s in args.synth_splits)}; {settings.describe()}"
            )
            start = time.perf_counter()
            quantize(fp32, dst, inputs, settings, args.calib_cache)
            synth_weights_json(src_json, dst, dst_json)
            print(
                f"{dst}: {dst.stat().st_size} bytes ({dst.stat().st_size / 2**20:.2f} MiB, fp32 "
                f"{fp32.stat().st_size / 2**20:.2f} MiB), sha256 {sha256_of(dst)} "
                f"[{time.perf_counter() - start:.0f} s]; weights {dst_json}"
            )
        if args.measure or args.measure_only:
            check_interface(fp32, dst)
            if not dst_json.is_file():
                synth_weights_json(src_json, dst, dst_json)
            items = synth_test_items(args.synth_test, args.synth_data[0])
            expected = {p.name for d, s in pairs for p, _ in synth_split(d, s, "test")}
            if {p.name for p, _ in items} != expected:
                raise SystemExit(f"{args.synth_test} is not the test split of {args.synth_splits}")
            result = synth_compare(src_json, dst_json, items)
            result["int8_file"] = {"bytes": dst.stat().st_size, "sha256": sha256_of(dst)}
            report["models"][m] = result
            print_synth_table(m, result)


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=Path("cache/faces_v2"))
    parser.add_argument("--splits", type=Path, default=Path("runs/sbi_v3/splits.json"))
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
        default=[Path("../shared/data/stylegan2_ffhq")],
        help="generated-image set(s) of the synthesis run (MANIFEST.tsv), one per --synth-splits",
    )
    parser.add_argument(
        "--synth-splits",
        type=Path,
        nargs="+",
        default=[Path("runs/synth_cnn_v1/splits.tsv")],
        help="each set's splits.tsv (file, label, split), in --synth-data's order",
    )
    parser.add_argument("--synth-test", type=Path, default=Path("runs/synth_cnn_v1/test.tsv"))
    parser.add_argument("--calib-cache", type=Path, default=None, help="reuse ranges from here")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)

    import cv2

    cv2.setNumThreads(THREADS)
    from fakescope.models import OnnxDetector
    from fakescope.models._config import WeightConfig

    settings = QuantSettings(
        args.method, tuple(args.float_parts), args.reduce_range, args.percentile
    )
    report: dict[str, Any] = {"settings": settings.describe(), "models": {}}
    synth = [m for m in args.models if m in SYNTH_MODELS]
    args.models = [m for m in args.models if m not in SYNTH_MODELS]
    if synth:
        run_synth(args, synth, settings, report)
    if not args.models:
        if args.json:
            args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
        return
    data = load_splits(args.store, args.splits)
    configs = {m: WeightConfig.from_json(_assets() / f"{m}.json") for m in args.models}
    for m, cfg in configs.items():
        if sha256_of(_assets() / cfg.file) != cfg.sha256:
            raise SystemExit(f"{cfg.file}: sha256 does not match {m}.json")
    crops: dict[tuple[int, float, str], _U8] = {}

    def crops_for(cfg: WeightConfig, idx: npt.NDArray[np.int64], tag: str) -> _U8:
        key = (cfg.input_size, cfg.margin, tag)
        if key not in crops:
            crops[key] = aligned_crops(data, idx, cfg.input_size, cfg.margin)
        return crops[key]

    if not args.measure_only:
        cidx = calibration_indices(data, args.calib_count, args.seed)
        assert (data.splits[cidx] == "train").all()
        summary = ", ".join(
            f"{d} {int(((data.datasets[cidx] == d) & (data.labels[cidx] == 0)).sum())}r/"
            f"{int(((data.datasets[cidx] == d) & (data.labels[cidx] == 1)).sum())}f"
            for d in sorted(set(data.datasets[cidx].tolist()))
        )
        print(f"calibration: {len(cidx)} train crops ({summary}); {settings.describe()}")
        for m, cfg in configs.items():
            inputs = Normaliser(cfg)(crops_for(cfg, cidx, "calib"))
            dst = args.out / f"{m}_int8.onnx"
            start = time.perf_counter()
            quantize(_assets() / cfg.file, dst, inputs, settings, args.calib_cache)
            print(
                f"{dst}: {dst.stat().st_size} bytes ({dst.stat().st_size / 2**20:.2f} MiB, fp32 "
                f"{(_assets() / cfg.file).stat().st_size / 2**20:.2f} MiB), sha256 "
                f"{sha256_of(dst)} [{time.perf_counter() - start:.0f} s]"
            )
    if args.measure or args.measure_only:
        vidx = val_indices(data, args.val_per_set)
        assert (data.splits[vidx] == "val").all()
        for m, cfg in configs.items():
            val_crops = crops_for(cfg, vidx, "val")
            inputs = Normaliser(cfg)(val_crops)
            fp32, int8 = _assets() / cfg.file, args.out / f"{m}_int8.onnx"
            check_interface(fp32, int8)
            # the input transform here must be the scanner's own
            ref = OnnxDetector(cfg, THREADS).predict(val_crops[:BATCH])
            mine = run_all(session(fp32), inputs[:BATCH], [_interface(fp32)[1][0]])[0]
            if not np.allclose(ref, mine.reshape(-1), atol=1e-6):
                raise SystemExit(f"{m}: preprocessing differs from OnnxDetector")
            result = compare(fp32, int8, inputs, data.labels[vidx], data.datasets[vidx])
            speed = ms_per_crop([fp32, int8], inputs)
            result["ms_per_crop"] = {"fp32": speed[0], "int8": speed[1]}
            result["int8_file"] = {
                "bytes": int8.stat().st_size,
                "sha256": sha256_of(int8),
            }
            report["models"][m] = result
            print_table(m, result, (speed[0], speed[1]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

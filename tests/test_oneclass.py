"""The feature-space one-class trainer (issue 12 item 1, second attempt; not shipped): fitted on
the reals of the train split only, every variant reported, and an export that computes the
documented score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tiny_store import tiny_store


def test_oneclass_fits_reals_only_reports_variants_and_exports(tmp_path: Path) -> None:
    from fakescope._runtime import onnx_session
    from fakescope.training import oneclass

    store = tiny_store(tmp_path / "store", groups=6, frames=4)
    groups = {f"g{g}": ("train" if g < 4 else "val") for g in range(6)}
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"groups": groups}))
    out = tmp_path / "run"
    args = ["--store", str(store.root), "--splits", str(splits), "--out", str(out)]
    args += ["--size", "64", "--features", "final", "stats", "--latent", "4", "--hidden", "16"]
    report = oneclass.main([*args, "--epochs", "2", "--export", "final/gauss/maha"])
    assert report["train_reals"] == 4 * 4  # 4 train groups x 4 real frames; no fake
    assert report["val_crops"] == 2 * 2 * 4
    variants = report["variants"]
    for kind in ("final", "stats"):
        assert {f"{kind}/gauss/maha", f"{kind}/vae/rec", f"{kind}/vae/elbo"} <= set(variants)
    # the tiny store's fakes are 40 levels brighter: the low-level statistics see it
    assert variants["stats/gauss/maha"]["auc"]["tiny_videos"] > 0.9
    assert variants["stats/vae/elbo"]["auc"]["tiny_videos"] > 0.9
    assert report["export"]["max_abs_diff"] < 1e-4
    assert (out / "features").is_dir() and json.loads((out / "report.json").read_text())
    rng = np.random.default_rng(0)
    crops = rng.normal(size=(3, 3, 64, 64)).astype(np.float32)
    (probs,) = onnx_session(out / "model.onnx", 1).run(None, {"input": crops})
    assert probs.shape == (3,) and np.all(np.isfinite(probs))
    assert np.all(probs >= 0.5) and np.all(probs <= 1)  # noise is nothing like the reals

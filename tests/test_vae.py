"""The one-class VAE detector's trainer: reals of the train split only, resumable, and an
ONNX export that computes exactly the documented score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tiny_store import tiny_store


def test_vae_trains_on_reals_only_exports_and_resumes(tmp_path: Path) -> None:
    import torch

    from fakescope._runtime import onnx_session
    from fakescope.training import vae
    from fakescope.training.crops import aligned_crops
    from fakescope.training.engine import train

    store = tiny_store(tmp_path / "store", groups=6, frames=4)
    groups = {f"g{g}": ("train" if g < 4 else "val") for g in range(6)}
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"groups": groups}))
    out = tmp_path / "run"
    config = {
        "recipe": "vae",
        "data": {"store": str(store.root), "splits": str(splits), "size": 32},
        "model": {"latent": 8},
        "optim": {"batch": 4, "epochs": 1},
        "run": {"out": str(out), "threads": 1},
    }
    report = train(config).metrics
    assert report["train_reals"] == 4 * 4  # 4 train groups x 4 real frames; no fake
    assert set(report["val_crop_auc"]) == {"tiny_videos"}
    assert report["val_crop_auc"]["tiny_videos"]["n"] == 2 * 2 * 4
    assert json.loads((out / "report.json").read_text()) == report
    again = train(out / "config.yaml", ["optim.epochs=2"]).metrics  # resumes after epoch 0
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1
    assert again["train_reals"] == 16

    # the exported graph is sigmoid((log MSE of the mean-code reconstruction - m) / s)
    model = vae.VAE(32, 8).eval()
    model.load_state_dict(torch.load(out / "last.pt", weights_only=True)["model"])
    crops = aligned_crops(store, range(0, 48, 8), 32, 0.125)  # reals and fakes, aligned
    x = vae._normalise(crops)
    with torch.no_grad():
        recon = model.decode(model.encode(x)[0]).numpy()
    log_mse = np.log(((recon - x.numpy()) ** 2).mean(axis=(1, 2, 3)) + 1e-8)
    assert vae._log_errors(model, crops) == pytest.approx(log_mse, abs=1e-5)
    expected = 1 / (1 + np.exp(-(log_mse - again["log_error_mean"]) / again["log_error_std"]))
    session = onnx_session(out / "model.onnx", 1)
    (got,) = session.run(["fake_probability"], {"input": x.numpy()})
    assert got.shape == (6,) and ((got >= 0) & (got <= 1)).all()
    assert got == pytest.approx(expected, abs=1e-4)

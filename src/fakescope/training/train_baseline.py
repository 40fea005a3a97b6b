"""Fine-tune EfficientNet-Lite0 (ImageNet) on cached FF++ crops and export it to ONNX.

    python -m fakescope.training.prepare ../shared/data/ffpp_face_crops \
        --size 192 --margin 0.0 --out cache/ffpp_crops_192.npz
    python -m fakescope.training.train_baseline cache/ffpp_crops_192.npz --out runs/baseline

Trains on the ``train_`` split only; the ``test_`` split is reported after every epoch
(no model selection on it: the last epoch is exported). Seeds are fixed; the resolved
arguments are saved as ``runs/.../config.json``; each epoch writes a resumable checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from fakescope.evaluation import roc_auc
from fakescope.training.degrade import jpeg_roundtrip
from fakescope.training.effnet_lite import imagenet_lite0

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Real-world degradations: flip, shift, colour, blur, noise, JPEG re-compression."""
    if rng.random() < 0.5:
        img = img[:, ::-1]
    size = img.shape[0]
    if rng.random() < 0.5:
        dx, dy = rng.integers(-6, 7, size=2)
        scale = rng.uniform(0.92, 1.08)
        m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-6, 6), scale)
        m[:, 2] += (dx, dy)
        img = cv2.warpAffine(
            np.ascontiguousarray(img), m, (size, size), borderMode=cv2.BORDER_REPLICATE
        )
    img = img.astype(np.float32)
    if rng.random() < 0.6:
        img = img * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.2:
        img = cv2.resize(cv2.resize(img, (size // 2, size // 2)), (size, size))
    if rng.random() < 0.2:
        img = img + rng.normal(0, rng.uniform(1, 6), img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:  # RGB in, RGB out (cv2's codec itself is BGR)
        img = jpeg_roundtrip(img, int(rng.integers(30, 96)))
    return img


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    x = (batch.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(
        memory_format=torch.channels_last
    )


@torch.no_grad()
def predict(model: nn.Module, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    model.eval()
    out = [
        torch.sigmoid(model(to_tensor(crops[i : i + batch]))[:, 0]).numpy()
        for i in range(0, len(crops), batch)
    ]
    return np.concatenate(out)


class Exportable(nn.Module):
    """The exported graph: normalised NCHW float -> fake probability (N,)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(x)[:, 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cache", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=6e-4)
    parser.add_argument("--freeze-blocks", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(
        json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2)
    )
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    data = np.load(args.cache)
    crops, labels, splits, methods = data["crops"], data["labels"], data["splits"], data["methods"]
    train = np.nonzero(splits == "train")[0]
    test = np.nonzero(splits == "test")[0]
    print(f"train {len(train)} ({labels[train].sum()} fake), test {len(test)}")

    model = imagenet_lite0(1).to(memory_format=torch.channels_last)
    frozen = [model._conv_stem, model._bn0, *model._blocks[: args.freeze_blocks]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad = False
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.15
    )
    n_fake = labels[train].sum()
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(train) - n_fake) / n_fake))

    start_epoch = 0
    ckpt_path = args.out / "last.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        start_epoch = int(ckpt["epoch"]) + 1
        print(f"resumed after epoch {start_epoch}")

    log = []
    t0 = time.time()
    for epoch in range(start_epoch, args.epochs):
        model.train()
        for module in frozen:
            module.eval()
        order = rng.permutation(train)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch : (step + 1) * args.batch]
            batch = np.stack([augment(crops[i], rng) for i in idx])
            y = torch.from_numpy(labels[idx].astype(np.float32))
            loss = loss_fn(model(to_tensor(batch))[:, 0], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        probs = predict(model, crops[test])
        auc = roc_auc(labels[test], probs)
        per_method = {
            m: roc_auc(
                labels[test][(methods[test] == m) | (labels[test] == 0)],
                probs[(methods[test] == m) | (labels[test] == 0)],
            )
            for m in sorted(set(methods[test]) - {"real"})
        }
        entry = {
            "epoch": epoch,
            "loss": total / len(train),
            "test_auc": float(auc),
            "test_auc_per_method": per_method,
            "elapsed_s": round(time.time() - t0, 1),
        }
        log.append(entry)
        print(json.dumps(entry), flush=True)
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch,
            },
            ckpt_path,
        )
    with (args.out / "log.jsonl").open("a") as fh:
        for entry in log:
            fh.write(json.dumps(entry) + "\n")

    model.eval()
    size = int(crops.shape[1])
    torch.onnx.export(
        Exportable(model),
        (torch.zeros(1, 3, size, size),),
        str(args.out / "model.onnx"),
        input_names=["input"],
        output_names=["fake_probability"],
        dynamic_axes={"input": {0: "n"}, "fake_probability": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    print(f"exported {args.out / 'model.onnx'}")


if __name__ == "__main__":
    main()

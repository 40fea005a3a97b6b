"""The resumable-run checkpoint shared by the small trainers: ``last.pt`` holds the model and
optimizer state and the last finished epoch (tensors and numbers only: it loads with
``torch.load(weights_only=True)``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn, optim

__all__ = ["resume", "save_checkpoint"]


def resume(path: Path, model: nn.Module, opt: optim.Optimizer) -> int:
    """Load ``path`` into ``model`` and ``opt`` when it exists; returns the first epoch still
    to run (0 for a fresh run)."""
    import torch

    if not path.is_file():
        return 0
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    start = int(state["epoch"]) + 1
    print(f"resumed after epoch {start - 1}", flush=True)
    return start


def save_checkpoint(path: Path, model: nn.Module, opt: optim.Optimizer, epoch: int) -> None:
    """Write the state after ``epoch`` (to a temporary name first, so a kill mid-write keeps
    the previous checkpoint)."""
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch}, tmp)
    tmp.replace(path)

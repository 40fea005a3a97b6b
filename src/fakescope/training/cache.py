"""Small on-disk caches the trainers share: content keys, ``.npz`` files tagged with the
metadata that made them (read with ``allow_pickle=False``), and a face store's identity split.
No torch: scikit-learn trainers use it too."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fakescope.training.store import FaceStore, split_groups

__all__ = ["content_key", "load_cache", "save_cache", "split_assignment", "store_key"]


def content_key(obj: Any) -> str:
    """16 hex digits of the sha256 of ``obj`` as sorted JSON."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def load_cache(path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The arrays of ``path`` when it was written with the same ``meta``, else None."""
    import numpy as np

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(str(data["meta"])) != json.loads(json.dumps(meta)):
                return None
            return {k: data[k] for k in data.files if k != "meta"}
    except (OSError, ValueError, KeyError):
        return None


def save_cache(path: Path, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Write ``arrays`` with ``meta`` to ``path`` atomically (temporary file, then rename)."""
    import numpy as np

    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    os.replace(tmp, path)


def store_key(store: FaceStore) -> str:
    """A key that changes whenever the store's version, parameters or shards do."""
    index = json.loads((store.root / "index.json").read_text(encoding="utf-8"))
    return content_key([index.get("version"), index.get("params"), index.get("shards")])


def split_assignment(store: FaceStore, run: Path | None) -> tuple[dict[str, str], str]:
    """``{identity group: split}`` from a detector run's ``splits.json`` (``run`` is the run
    folder or that file), else drawn by :func:`~fakescope.training.store.split_groups`; and
    where it came from."""
    path = run if run is None or run.is_file() else run / "splits.json"
    if path is not None and path.is_file():
        groups = json.loads(path.read_text(encoding="utf-8"))["groups"]
        return dict(groups), str(path)
    return split_groups(store.rows, (0.7, 0.15, 0.15), 0), "split_groups(0.7/0.15/0.15, seed 0)"

"""tools/extend_split.py: a pinned identity split extended by the groups of more sets."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from conftest import load_tool


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_tool("extend_split")


def _set(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    rows = ["file\tlabel\tgenerator_method"]
    for name, label in files.items():
        cv2.imwrite(str(root / name), np.zeros((8, 8, 3), np.uint8))
        rows.append(f"{name}\t{label}\t{'' if label == 'real' else 'swap'}")
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_adds_every_group_of_the_new_set_and_keeps_the_pinned_ones(
    tool: ModuleType, tmp_path: Path
) -> None:
    root = _set(tmp_path / "swaps", {"a.jpg": "real", "b.jpg": "real", "a__b.jpg": "fake"})
    base = {"note": "v1", "groups": {"old:1": "val", "old:2": "train"}, "crops": {"old": {}}}
    out = tool.extend(base, [root], "train", "plus swaps")
    assert out["groups"] == {
        "old:1": "val",
        "old:2": "train",
        "swaps:a": "train",
        "swaps:a__b": "train",
        "swaps:b": "train",
    }
    assert out["note"] == "v1 | plus swaps" and out["crops"]["swaps"] == {"train": 3}
    assert base["groups"] == {"old:1": "val", "old:2": "train"}  # not changed in place
    # a group already pinned to another split must not move into training
    with pytest.raises(SystemExit, match="another split"):
        tool.extend({"groups": {"swaps:a": "val"}}, [root], "train", "x")

"""A pinned identity split (``configs/splits/*.json``) with every identity group of more data
sets added to one split, the groups already pinned left as they are.

    python3 tools/extend_split.py configs/splits/faces_v5.json /tmp/ffhq_swaps_train \
        --split train --note "..." --out configs/splits/faces_v6.json

Groups are named as the face store names them (:func:`fakescope.training.store.grouped_items`
over the given roots). A group the file already pins elsewhere is an error: a set made from
held-out faces must not slip into training.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from fakescope.training.store import grouped_items


def extend(base: dict[str, Any], roots: list[Path], split: str, note: str) -> dict[str, Any]:
    """``base`` with every group of ``roots`` in ``split``; ``crops`` gets each new set's item
    count (one crop per photo), the store's own count being known only after a build."""
    groups = dict(base["groups"])
    items, names = grouped_items(roots)
    clash = sorted({g for g in names if groups.get(g, split) != split})
    if clash:
        raise SystemExit(f"already pinned to another split: {clash[:5]} ({len(clash)})")
    groups.update(dict.fromkeys(names, split))
    crops = dict(base.get("crops", {}))
    for dataset, count in Counter(item.dataset for item in items).items():
        crops[dataset] = {split: count}
    return {**base, "note": f"{base.get('note', '')} | {note}", "crops": crops, "groups": groups}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", type=Path, help="the pinned split to extend")
    parser.add_argument("roots", nargs="+", type=Path, help="data sets whose groups to add")
    parser.add_argument("--split", required=True, choices=("train", "val", "calib", "test"))
    parser.add_argument("--note", required=True, help="what was added and why")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    base = json.loads(args.base.read_text(encoding="utf-8"))
    out = extend(base, args.roots, args.split, args.note)
    args.out.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(out['groups'])} groups")


if __name__ == "__main__":
    main()

"""``fakescope people``: a local gallery of known people, stored as face embeddings only.

    fakescope people add NAME PHOTOS_OR_VIDEOS...   # embeds the largest face of each frame
    fakescope people list [--json]
    fakescope people remove NAME

The gallery lives in ``--gallery DIR`` (default ``$FAKESCOPE_GALLERY``, else
``$XDG_DATA_HOME/fakescope/people``, else ``~/.local/share/fakescope/people``). Embeddings are
biometric data: they stay in that folder, are never sent anywhere, and ``remove`` deletes a
person's embeddings from disk.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fakescope.cli._common import UsageError, default_gallery, stdout_console

__all__ = ["add_people_parser", "default_gallery", "run_people"]


def add_people_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "people", help="a local gallery of known people (face embeddings only)"
    )
    p.add_argument(
        "--gallery", type=Path, help="gallery folder (default $FAKESCOPE_GALLERY or XDG data)"
    )
    actions = p.add_subparsers(dest="people_action", required=True)
    add = actions.add_parser("add", help="add a person's reference photos or videos")
    add.add_argument("name")
    add.add_argument("files", nargs="+", metavar="PHOTO_OR_VIDEO")
    listing = actions.add_parser("list", help="list the people in the gallery")
    listing.add_argument("--json", action="store_true")
    remove = actions.add_parser("remove", help="forget a person (deletes their embeddings)")
    remove.add_argument("name")
    return p


def run_people(args: argparse.Namespace) -> int:
    from fakescope.identity import Gallery, reference_embeddings

    gallery = Gallery(args.gallery or default_gallery())
    out = stdout_console()
    if args.people_action == "list":
        rows = [{"name": n, "embeddings": len(gallery.embeddings(n))} for n in gallery.names()]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for r in rows:
                out.print(f"{r['name']}\t{r['embeddings']} reference face(s)", markup=False)
            if not rows:
                out.print("the gallery is empty")
        return 0
    if args.people_action == "remove":
        try:
            gallery.remove(args.name)
        except KeyError:
            raise UsageError(f"{args.name!r} is not in the gallery") from None
        out.print(f"removed {args.name} and their embeddings", markup=False)
        return 0
    embeddings, notes = reference_embeddings([Path(f) for f in args.files])
    for note in notes:
        out.print(f"skipped {note}", markup=False)
    if len(embeddings) == 0:
        raise UsageError(f"no face found in the files given for {args.name!r}")
    gallery.add(args.name, embeddings, {"files": len(args.files)})
    out.print(
        f"added {len(embeddings)} reference face(s) for {args.name} "
        f"({len(gallery.embeddings(args.name))} in all)",
        markup=False,
    )
    return 0

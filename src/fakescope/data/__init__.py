"""Dataset adapters: turn public deepfake datasets on disk into :class:`MediaItem` lists.

``load_dataset(name, root, **options)`` runs the adapter registered as ``name`` in
:data:`DATASETS` (``"ffpp"``, ``"celebdf"``, ``"dfdc"``, ``"deepfaketimit"``, ``"folder"``,
``"manifest"``; ``"auto"`` asks :func:`detect_layout`). Adapters only look at names and
metadata, never decode media. :func:`write_manifest`/:func:`read_manifest` store item lists as
TSV; :func:`identity_disjoint_split` re-splits items so no person appears in two splits.
"""

from __future__ import annotations

# Adapter modules register themselves on import.
from fakescope.data import _celebdf, _dfdc, _ffpp, _folder, _table, _timit  # noqa: F401
from fakescope.data._ffpp import FFPP_METHODS
from fakescope.data._items import (
    DEV_ONLY,
    DatasetWarning,
    MediaItem,
)
from fakescope.data._manifest import read_manifest, write_manifest
from fakescope.data._registry import DATASETS, detect_layout, load_dataset
from fakescope.data._split import identity_disjoint_split, identity_groups
from fakescope.io import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS

__all__ = [
    "DATASETS",
    "DEV_ONLY",
    "FFPP_METHODS",
    "IMAGE_EXTENSIONS",
    "MEDIA_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DatasetWarning",
    "MediaItem",
    "detect_layout",
    "identity_disjoint_split",
    "identity_groups",
    "load_dataset",
    "read_manifest",
    "write_manifest",
]

"""The dataset-adapter registry, :func:`load_dataset` and :func:`detect_layout`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fakescope.data._items import MediaItem, check_unique
from fakescope.errors import ConfigError, InputError
from fakescope.registry import Registry

Adapter = Callable[..., list[MediaItem]]

#: Adapters by name. Each registered factory is an adapter ``(root, **options) -> items``.
DATASETS: Registry[list[MediaItem]] = Registry("dataset")


def register_adapter(name: str) -> Callable[[Adapter], Adapter]:
    """Register ``adapter(root, **options)`` as ``name``; unknown options raise ConfigError."""

    def decorator(adapter: Adapter) -> Adapter:
        signature = inspect.signature(adapter)

        @functools.wraps(adapter)
        def checked(root: Path, **options: Any) -> list[MediaItem]:
            try:
                signature.bind(root, **options)
            except TypeError as exc:
                raise ConfigError(f"dataset {name!r}: {exc}") from None
            return adapter(root, **options)

        DATASETS.register(name)(checked)
        return adapter

    return decorator


def load_dataset(name: str, root: Path | str, **options: Any) -> list[MediaItem]:
    """The dataset at ``root`` read by adapter ``name`` (``"auto"``: :func:`detect_layout`).

    Unknown names or options raise :class:`ConfigError`; a missing root, an unusable layout or
    duplicate ids raise :class:`InputError`.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"dataset root {root} does not exist")
    if name == "auto":
        name = detect_layout(root)
    items = DATASETS.create(name, root=root, **options)
    check_unique(items)
    return items


# (adapter, what it looks for, test) in priority order: the most specific layout wins.
_LAYOUTS: list[tuple[str, str, Callable[[Path], bool]]] = [
    (
        "manifest",
        "a .tsv/.csv file or MANIFEST.tsv/MANIFEST.csv",
        lambda r: (
            (r.is_file() and r.suffix.lower() in {".tsv", ".csv"})
            or (r / "MANIFEST.tsv").is_file()
            or (r / "MANIFEST.csv").is_file()
        ),
    ),
    (
        "ffpp",
        "original_sequences/ or manipulated_sequences/",
        lambda r: (r / "original_sequences").is_dir() or (r / "manipulated_sequences").is_dir(),
    ),
    (
        "celebdf",
        "Celeb-real/, Celeb-synthesis/ or YouTube-real/",
        lambda r: any((r / d).is_dir() for d in ("Celeb-real", "Celeb-synthesis", "YouTube-real")),
    ),
    (
        "dfdc",
        "metadata.json or dfdc_train_part_*/metadata.json",
        lambda r: (r / "metadata.json").is_file() or any(r.glob("dfdc_train_part_*/metadata.json")),
    ),
    (
        "deepfaketimit",
        "higher_quality/ or lower_quality/",
        lambda r: (r / "higher_quality").is_dir() or (r / "lower_quality").is_dir(),
    ),
    ("folder", "real/ or fake/", lambda r: (r / "real").is_dir() or (r / "fake").is_dir()),
]


def detect_layout(root: Path | str) -> str:
    """Guess the adapter name for ``root`` from its folder structure (files are not opened)."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"dataset root {root} does not exist")
    for name, _, test in _LAYOUTS:
        if test(root):
            return name
    looked = "; ".join(f"{name}: {what}" for name, what, _ in _LAYOUTS)
    raise InputError(f"no known dataset layout in {root} (looked for {looked})")

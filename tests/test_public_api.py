"""Keep ``__all__`` honest: every listed name exists and every public name is listed."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "fakescope",
    "fakescope.io",
    "fakescope.faces",
    "fakescope.models",
    "fakescope.inference",
    "fakescope.evaluation",
    "fakescope.data",
    "fakescope.provenance",
    "fakescope.server",
    "fakescope.synthesis",
    "fakescope.batch",
    "fakescope.identity",
]
MODULES = [
    *PACKAGES,
    "fakescope.types",
    "fakescope.errors",
    "fakescope.config",
    "fakescope.registry",
    "fakescope.cli",
    "fakescope.calibration",
    "fakescope.decision",
    "fakescope.fusion",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_complete_and_exact(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    for member in exported:
        assert hasattr(module, member), f"{name}.{member} listed but missing"
    if name not in PACKAGES:
        return
    # A package's namespace is its public API: nothing public may be left out of __all__.
    public = {
        k
        for k, v in vars(module).items()
        if not k.startswith("_")
        and not isinstance(v, types.ModuleType)
        and getattr(v, "__module__", name).startswith("fakescope")
        and k not in {"annotations"}
    }
    assert public <= exported, f"{name}: public but unlisted: {public - exported}"


def test_scanning_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fakescope, fakescope.cli._scan, fakescope.inference; "
        "fakescope.Scanner(); assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'mediapipe' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

"""Can this CPU run the shipped int8 networks exactly? And so: int8 weight or its float twin?

The int8 networks (uint8 activations x int8 weights, ``tools/quantize_detectors.py``) run on
onnxruntime's MLAS. On x86 with AVX512-VNNI or AVX-VNNI, MLAS multiplies them with
``vpdpbusd`` (four u8 x s8 products summed straight into int32: exact). Without VNNI (AVX2
only, or AVX512 without VNNI) it uses ``vpmaddubsw``, which saturates each pair of products
into int16: the scores then drift from the float network's by up to 0.28 in probability.
Other machines (ARM: widening multiplies or ``sdot``) are exact.

So every int8 weight declares its float twin (same network in float32, calibrated on the same
split on its own scores: the same probability scale), and a factory builds the twin instead
when :func:`int8_exact` is False. ``FAKESCOPE_INT8`` chooses: ``auto`` (the default: the int8
weight where exact, else its twin), ``always`` (the int8 weight, even where it saturates) or
``never`` (always the twin).
"""

from __future__ import annotations

import functools
import importlib
import os
import platform
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal

from fakescope.errors import ConfigError

__all__ = [
    "INT8_ENV",
    "INT8_MODES",
    "int8_exact",
    "int8_exact_on",
    "int8_mode",
    "int8_reason",
    "parse_cpuinfo",
]

INT8_ENV = "FAKESCOPE_INT8"
INT8_MODES = ("auto", "always", "never")
Int8Mode = Literal["auto", "always", "never"]

_X86 = {"x86_64", "amd64", "x64", "i386", "i486", "i586", "i686", "x86"}
# MLAS takes its AVX512-VNNI kernels only with AVX512 core (F, BW, DQ, VL) present too
_NUMPY_AVX512_VNNI = ("AVX512F", "AVX512BW", "AVX512DQ", "AVX512VL", "AVX512VNNI")
_FLAGS_AVX512_VNNI = ("avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni")


def int8_mode() -> Int8Mode:
    """``$FAKESCOPE_INT8`` (``auto`` when unset or empty); any other value is a
    :class:`ConfigError`."""
    value = os.environ.get(INT8_ENV, "").strip().lower() or "auto"
    modes: dict[str, Int8Mode] = {"auto": "auto", "always": "always", "never": "never"}
    if value in modes:
        return modes[value]
    raise ConfigError(
        f"{INT8_ENV} must be one of {', '.join(INT8_MODES)}, got {os.environ[INT8_ENV]!r}"
    )


def int8_exact_on(
    machine: str,
    numpy_features: Mapping[str, bool] | None,
    cpuinfo_flags: Collection[str] | None,
) -> bool:
    """Whether onnxruntime runs u8 x s8 products exactly on a CPU described by ``machine``
    (``platform.machine()``), numpy's CPU features (``__cpu_features__``: cpuid and the OS's
    saved register state, on every OS) and the ``flags`` of ``/proc/cpuinfo`` (Linux; None
    elsewhere). Not x86: True. x86: AVX512-VNNI (with AVX512 F/BW/DQ/VL) where every source
    given agrees, or AVX-VNNI (``avx_vnni``, which only ``/proc/cpuinfo`` reports, with AVX2
    where numpy is asked too). Neither source: False (unsure; the float twin is always exact)."""
    if machine.strip().lower() not in _X86:
        return True
    if numpy_features is None and cpuinfo_flags is None:
        return False
    avx512_vnni = True
    if numpy_features is not None:
        avx512_vnni = all(numpy_features.get(f, False) for f in _NUMPY_AVX512_VNNI)
    if cpuinfo_flags is not None:
        flags = set(cpuinfo_flags)
        avx512_vnni = avx512_vnni and all(f in flags for f in _FLAGS_AVX512_VNNI)
        avx2 = numpy_features is None or bool(numpy_features.get("AVX2", False))
        if "avx_vnni" in flags and "avx2" in flags and avx2:
            return True
    return avx512_vnni


def _numpy_features() -> Mapping[str, bool] | None:
    """numpy's runtime CPU features (numpy 2: ``numpy._core``; 1.x: ``numpy.core``)."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            features = getattr(importlib.import_module(module), "__cpu_features__", None)
        except ImportError:
            continue
        if isinstance(features, dict):
            return {str(k): bool(v) for k, v in features.items()}
    return None


def parse_cpuinfo(text: str) -> set[str] | None:
    """The flags every processor in a ``/proc/cpuinfo`` lists (None when it lists none)."""
    common: set[str] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            flags = set(value.split())
            common = flags if common is None else common & flags
    return common


def _cpuinfo_flags(path: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    try:
        return parse_cpuinfo(path.read_text(errors="replace"))
    except OSError:
        return None


@functools.cache
def int8_exact() -> bool:
    """Whether this machine runs the int8 networks exactly (see :func:`int8_exact_on`);
    asked once per process."""
    return int8_exact_on(platform.machine(), _numpy_features(), _cpuinfo_flags())


def int8_reason(name: str, twin: str | None) -> str | None:
    """Why the int8 weight ``name`` should be replaced by its float ``twin`` here (a sentence
    for the verdict's ``model``), or None to run ``name`` as asked (no twin, ``always``, or
    ``auto`` on a CPU that runs it exactly)."""
    if twin is None:
        return None
    mode = int8_mode()
    if mode == "always":
        return None
    if mode == "never":
        return f"{INT8_ENV}=never: {name} runs as its float twin {twin}"
    if int8_exact():
        return None
    return (
        f"this CPU has neither AVX512-VNNI nor AVX-VNNI, so onnxruntime's int8 kernels would "
        f"saturate and drift {name}'s scores: it runs as its float twin {twin}, on the same "
        f"calibrated scale ({INT8_ENV}=always runs {name} anyway)"
    )

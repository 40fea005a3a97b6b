"""Int8 weights or their float twins: the CPU check (fed made-up flag sets), the
``FAKESCOPE_INT8`` override forced both ways, and what the verdict records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakescope import _cpu
from fakescope._cpu import INT8_ENV, int8_exact_on, int8_mode, parse_cpuinfo
from fakescope.errors import ConfigError
from fakescope.models import DETECTORS, asset_path, create_detector
from fakescope.synthesis import SYNTHESIS_DETECTORS, create_synthesis_detector

AVX512_VNNI = {f: True for f in ("AVX2", "AVX512F", "AVX512BW", "AVX512DQ", "AVX512VL")}
AVX512_VNNI["AVX512VNNI"] = True
SKYLAKE_X = {**AVX512_VNNI, "AVX512VNNI": False}  # AVX512 without VNNI: vpmaddubsw
HASWELL = {"AVX2": True, "FMA3": True, "AVX512F": False, "AVX512VNNI": False}
FLAGS_AVX512_VNNI = {"avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"}
FLAGS_HASWELL = {"sse4_2", "avx", "avx2", "fma"}


def test_int8_mode_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INT8_ENV, raising=False)
    assert int8_mode() == "auto"
    for value, mode in (("", "auto"), (" Always ", "always"), ("NEVER", "never")):
        monkeypatch.setenv(INT8_ENV, value)
        assert int8_mode() == mode
    monkeypatch.setenv(INT8_ENV, "fast")
    with pytest.raises(ConfigError, match="FAKESCOPE_INT8 must be one of auto, always, never"):
        int8_mode()
    with pytest.raises(ConfigError, match="'fast'"):
        create_detector("fused-v4-int8")
    with pytest.raises(ConfigError, match="'fast'"):
        create_synthesis_detector("cnn-v3-int8")


@pytest.mark.parametrize(
    ("machine", "features", "flags", "exact"),
    [
        ("aarch64", None, None, True),  # not x86: MLAS's ARM kernels do not saturate
        ("arm64", {"AVX2": False}, set(), True),
        ("x86_64", AVX512_VNNI, FLAGS_AVX512_VNNI, True),  # Ice Lake, Zen 4, this CI box
        ("AMD64", AVX512_VNNI, None, True),  # Windows: numpy alone
        ("x86_64", None, FLAGS_AVX512_VNNI, True),  # numpy's table unavailable
        ("x86_64", HASWELL, FLAGS_HASWELL, False),  # AVX2 only: the EPYC that failed CI
        ("x86_64", SKYLAKE_X, FLAGS_AVX512_VNNI - {"avx512_vnni"}, False),
        ("x86_64", {**AVX512_VNNI, "AVX512BW": False}, None, False),  # MLAS wants BW too
        # emulated Haswell on a VNNI host: the host's /proc/cpuinfo says VNNI, cpuid not
        ("x86_64", HASWELL, FLAGS_AVX512_VNNI, False),
        ("x86_64", AVX512_VNNI, FLAGS_HASWELL, False),  # sources disagree: unsure
        ("x86_64", HASWELL, FLAGS_HASWELL | {"avx_vnni"}, True),  # Alder Lake: AVX-VNNI
        ("x86_64", None, FLAGS_HASWELL | {"avx_vnni"}, True),
        ("x86_64", {"AVX2": False}, {"avx_vnni", "avx2"}, False),  # AVX2 unusable here
        ("x86_64", None, None, False),  # nothing to go on: the float twin is always exact
        ("i686", HASWELL, None, False),
    ],
)
def test_int8_exact_on(
    machine: str, features: dict[str, bool] | None, flags: set[str] | None, exact: bool
) -> None:
    assert int8_exact_on(machine, features, flags) is exact


def test_parse_cpuinfo_keeps_the_flags_every_processor_has() -> None:
    text = (
        "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n\n"
        "processor\t: 1\nflags\t\t: fpu avx2 avx512f\nbugs\t\t: spectre_v1\n"
    )
    assert parse_cpuinfo(text) == {"fpu", "avx2", "avx512f"}
    assert parse_cpuinfo("processor : 0\nFeatures : fp asimd asimddp\n") is None


def test_this_machine_is_judged_from_its_own_sources() -> None:
    import platform

    expected = int8_exact_on(platform.machine(), _cpu._numpy_features(), _cpu._cpuinfo_flags())
    assert _cpu.int8_exact() is expected


def test_every_int8_weight_declares_a_float_twin_on_its_scale() -> None:
    for registry in (DETECTORS, SYNTHESIS_DETECTORS):
        for name in registry.names():
            twin = registry.float_twin(name)
            assert (twin is not None) == name.endswith("-int8"), name
            if twin is not None:
                assert twin == name.removesuffix("-int8") and twin in registry
                assert registry.float_twin(twin) is None
    for name in DETECTORS.names():
        twin = DETECTORS.float_twin(name)
        if twin is None:
            continue
        a, b = DETECTORS.create(name).config, DETECTORS.create(twin).config
        for key in ("input_size", "margin", "alignment", "mean", "std", "threshold"):
            assert getattr(a, key) == getattr(b, key), (name, key)
        # each calibrated on its own scores of the same split: the same probability scale
        assert a.calibration and b.calibration and set(a.calibration) == set(b.calibration)


@pytest.mark.parametrize("name", ["fused-v4-int8", "effnet-lite0-v4-int8"])
def test_never_builds_the_float_twin_and_says_so(
    name: str, monkeypatch: pytest.MonkeyPatch, example_face: np.ndarray
) -> None:
    twin = DETECTORS.float_twin(name)
    assert twin is not None
    crops = np.random.default_rng(1).integers(0, 255, (3, 192, 192, 3), dtype=np.uint8)

    monkeypatch.setenv(INT8_ENV, "never")
    detector = create_detector(name, threads=1)
    info = detector.info
    assert detector.config.name == info.name == twin and info.resolved_from == name
    assert info.resolution is not None and "FAKESCOPE_INT8=never" in info.resolution
    plain = DETECTORS.create(twin, threads=1)
    assert info.sha256 == plain.info.sha256 and info.version == plain.info.version
    np.testing.assert_array_equal(detector.predict(crops), plain.predict(crops))
    assert info.to_dict() == {
        "name": twin,
        "sha256": plain.info.sha256,
        "version": plain.info.version,
        "resolved_from": name,
        "resolution": info.resolution,
    }

    monkeypatch.setenv(INT8_ENV, "always")
    forced = create_detector(name, threads=1)
    assert forced.info.name == name and forced.info.resolved_from is None
    assert forced.info.to_dict()["resolved_from"] is None  # the key is always there
    assert forced.info.to_dict()["resolution"] is None


def test_auto_follows_the_cpu_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INT8_ENV, raising=False)
    monkeypatch.setattr(_cpu, "int8_exact", lambda: False)
    info = create_detector("fused-v4-int8", threads=1).info
    assert info.name == "fused-v4" and info.resolved_from == "fused-v4-int8"
    assert info.resolution is not None and "AVX512-VNNI" in info.resolution
    assert create_detector("fused-v4", threads=1).info.resolved_from is None  # float: as is
    synth = create_synthesis_detector("cnn-v3-int8").info
    assert synth.name == "cnn-v3" and synth.resolved_from == "cnn-v3-int8"

    monkeypatch.setattr(_cpu, "int8_exact", lambda: True)
    assert create_detector("fused-v4-int8", threads=1).info.name == "fused-v4-int8"
    assert create_synthesis_detector("cnn-v3-int8").info.name == "cnn-v3-int8"


def test_never_builds_the_float_synthesis_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INT8_ENV, "never")
    detector = create_synthesis_detector("cnn-v3-int8")
    assert detector.info.name == "cnn-v3" and detector.info.resolved_from == "cnn-v3-int8"
    assert detector.info.sha256 == SYNTHESIS_DETECTORS.create("cnn-v3").info.sha256
    monkeypatch.setenv(INT8_ENV, "always")
    assert create_synthesis_detector("cnn-v3-int8").info.name == "cnn-v3-int8"


def test_an_ensemble_file_with_int8_members_says_which_ran_as_twins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = json.loads(asset_path("fused_v4_int8.json").read_text())
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({**raw, "name": "mine"}))
    monkeypatch.setenv(INT8_ENV, "never")
    info = create_detector(str(path), threads=1).info
    assert info.name == "mine" and info.resolved_from is None
    assert info.resolution is not None
    for member in raw["members"]:
        assert f"{member} runs as its float twin" in info.resolution
    monkeypatch.setenv(INT8_ENV, "always")
    assert create_detector(str(path), threads=1).info.resolution is None


def test_the_verdict_records_what_ran(face_image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fakescope import ScanConfig, Scanner
    from fakescope.calibration import calibrator_from_dict

    monkeypatch.setenv(INT8_ENV, "never")
    config = ScanConfig()
    scanner = Scanner(config)
    twin = DETECTORS.float_twin(config.detector)
    assert twin is not None and scanner.detector.config.name == twin
    # the twin's own calibrators: the int8 weight's were fitted on the int8 scores
    shipped = DETECTORS.create(twin).config.calibration
    assert shipped is not None
    for level, data in shipped.items():
        expected = calibrator_from_dict(data).predict_proba([0.3, 0.7])[:, 1]
        got = scanner.calibrators[level].predict_proba([0.3, 0.7])[:, 1]
        np.testing.assert_allclose(got, expected)
    verdict = scanner.scan(face_image).to_dict()
    assert verdict["model"]["name"] == twin
    assert verdict["model"]["resolved_from"] == config.detector
    synth = verdict["synthesis"]["model"]
    assert synth["name"] == "cnn-v3" and synth["resolved_from"] == config.synthesis_detector


def test_the_catalogue_says_what_runs_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakescope.cli import main

    monkeypatch.setenv(INT8_ENV, "never")
    assert main(["models", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    fused = entries["fused-v4-int8"]
    assert fused["float_twin"] == fused["runs_as"] == "fused-v4"
    assert "FAKESCOPE_INT8=never" in fused["resolution"]
    assert fused["sha256"] == DETECTORS.create("fused-v4-int8").info.sha256  # its own file
    assert entries["cnn-v3-int8"]["runs_as"] == "cnn-v3"
    plain = entries["fused-v4"]
    assert plain["float_twin"] is None and plain["runs_as"] == "fused-v4"
    assert plain["resolution"] is None
    assert main(["models"]) == 0
    assert "runs as fused-v4 here" in capsys.readouterr().out


def test_eval_report_says_which_weight_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakescope import ScanConfig, Scanner
    from fakescope.cli._eval import _scanner_decision
    from fakescope.evaluation import decisions_markdown

    monkeypatch.setenv("FAKESCOPE_INT8", "never")
    decision = _scanner_decision(Scanner(ScanConfig(synthesis_detector=None)))
    assert decision["runs_as"] == "fused-v4" and decision["resolution"]
    text = decisions_markdown({"fused-v4-int8": {"set": {"decision": decision}}})
    assert "ran as fused-v4" in text
    monkeypatch.setenv("FAKESCOPE_INT8", "always")
    decision = _scanner_decision(Scanner(ScanConfig(synthesis_detector=None)))
    assert "runs_as" not in decision
    assert "ran as" not in decisions_markdown({"fused-v4-int8": {"set": {"decision": decision}}})

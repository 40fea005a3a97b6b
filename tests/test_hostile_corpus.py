"""The hostile corpus (tests/hostile_corpus.py) through ``fakescope scan --json`` as a user runs
it: one process for the whole batch, then invariants on its output and its peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hostile_corpus import build_corpus

# Peak RSS of the scanning process over the whole corpus. A normal scan of a small clip with
# the default ensemble peaks near 0.8 GB; the 8192x8192 10-bit clip once took 2.15 GB.
RSS_LIMIT_MB = 1400

_MEASURE = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
sys.stdout.buffer.write(proc.stdout)
sys.stderr.buffer.write(proc.stderr)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(f"\\nPEAK_RSS_KB={peak_kb} EXIT={proc.returncode}\\n")
"""


@pytest.fixture(scope="module")
def corpus_run(
    tmp_path_factory: pytest.TempPathFactory, face_clip: Path, face_image: Path
) -> tuple[list[Any], list[dict[str, Any]], str, int, int]:
    root = tmp_path_factory.mktemp("corpus")
    cases = build_corpus(root / "in", face_clip, face_image)
    cmd = [sys.executable, "-m", "fakescope", "scan", "--json", "--frames", "4", "--"]
    cmd += [c.arg for c in cases]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd],
        capture_output=True,
        timeout=900,
        env=env,
        cwd=root,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    tail = stderr.rsplit("PEAK_RSS_KB=", 1)[1]
    peak_kb, code = (int(part.split("=")[-1]) for part in tail.split())
    lines = proc.stdout.decode("utf-8").splitlines()  # strict: the output must be valid UTF-8
    return cases, [json.loads(line) for line in lines], stderr, peak_kb, code


def test_one_verdict_per_input_in_order(
    corpus_run: tuple[list[Any], list[dict[str, Any]], str, int, int],
) -> None:
    cases, verdicts, stderr, _, code = corpus_run
    assert code == 0, stderr[-2000:]
    assert len(verdicts) == len(cases), Counter(v["status"] for v in verdicts)
    for case, v in zip(cases, verdicts, strict=True):
        name = case.path.name
        if name.isprintable() and name.encode("utf-8", "surrogateescape").isascii():
            assert v["path"].endswith(name), (v["path"], name)


def test_no_generic_error_and_no_score_on_unusable_input(
    corpus_run: tuple[list[Any], list[dict[str, Any]], str, int, int],
) -> None:
    cases, verdicts, _, _, _ = corpus_run
    errors = [
        (c.path.name, v["reason"])
        for c, v in zip(cases, verdicts, strict=True)
        if v["status"] == "error"
    ]
    assert errors == []
    for case, v in zip(cases, verdicts, strict=True):
        assert v["reason"], case.path.name
        if v["status"] != "ok":
            assert v["fake_probability"] is None, case.path.name
            assert v["raw_score"] is None, case.path.name
            assert v["faces"] == [], case.path.name


def test_special_files_are_unsupported_and_valid_files_still_scan(
    corpus_run: tuple[list[Any], list[dict[str, Any]], str, int, int],
) -> None:
    cases, verdicts, _, _, _ = corpus_run
    by_family: dict[str, list[dict[str, Any]]] = {}
    for case, v in zip(cases, verdicts, strict=True):
        by_family.setdefault(case.family, []).append(v)
    assert {v["status"] for v in by_family["special"]} == {"unsupported"}
    # every odd name holds the valid face photo: each is scanned
    assert {v["status"] for v in by_family["name"]} == {"ok"}
    statuses = {c.path.name: v["status"] for c, v in zip(cases, verdicts, strict=True)}
    assert statuses["latin1_title.mp4"] == "ok"
    assert statuses["huge_444p10.mp4"] == "too_large"
    assert statuses["wide_2000x1.png"] in {"unsupported", "no_face"}


def test_stderr_is_fakescope_only_and_memory_is_bounded(
    corpus_run: tuple[list[Any], list[dict[str, Any]], str, int, int],
) -> None:
    _, _, stderr, peak_kb, _ = corpus_run
    assert "Traceback" not in stderr
    for noise in ("libpng", "libjpeg", "imdecode", "Corrupt JPEG", "[h264 @", "[mov,mp4"):
        assert noise not in stderr, noise
    assert peak_kb / 1024 < RSS_LIMIT_MB, f"peak RSS {peak_kb / 1024:.0f} MB"

"""``fakescope batch``: inputs, the results folder, resume, failure isolation, kill -9.

Most tests use :class:`FakeScanner` (a scanner factory the spawned workers import from this
module) whose behaviour follows the file name: ``hang*`` never returns, ``crash*`` kills its
own process, ``boom*`` raises, ``mem*`` holds 600 MB, ``slow*`` takes 0.25 s; every scan is
counted in ``$FAKESCOPE_TEST_SCANS`` (one line per scan). One test runs the real scanner
through the CLI on the shipped example clip, a photo and an undecodable file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("pyarrow")

from conftest import write_image
from fakescope.batch import (
    BatchItem,
    BatchOptions,
    collect_items,
    read_results,
    read_verdicts,
    run_batch,
)
from fakescope.batch._store import ResultStore
from fakescope.config import ScanConfig
from fakescope.errors import InputError
from fakescope.evaluation import MEDIA_LEVEL, ScoreTable
from fakescope.types import Label, ModelInfo, Status, Verdict

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.mp4"
CONFIG = ScanConfig(synthesis_detector=None)


class _Info:
    info = ModelInfo("fake-detector", "0" * 64, "1")


class FakeScanner:
    """A scanner whose behaviour follows the file name (see the module docstring)."""

    def __init__(self, config: ScanConfig) -> None:
        self.config = config
        self.detector = _Info()

    def scan(self, path: Path | str, progress: Any = None) -> Verdict:
        name = Path(path).name
        counter = os.environ.get("FAKESCOPE_TEST_SCANS")
        if counter:
            with open(counter, "a") as fh:
                fh.write(f"{name}\n")
        if name.startswith("hang"):
            time.sleep(3600)
        if name.startswith("crash"):
            os.kill(os.getpid(), signal.SIGKILL)
        if name.startswith("boom"):
            raise RuntimeError("boom")
        if name.startswith("mem"):
            hog = np.ones(600 * 2**20, dtype=np.uint8)
            time.sleep(5 + hog[0])
        if name.startswith("slow"):
            time.sleep(0.25)
        if name.startswith("noface"):
            return Verdict(str(path), Status.NO_FACE, "no face found")
        return Verdict(str(path), Status.OK, "scored", fake_probability=0.8, label=Label.FAKE)


def _files(folder: Path, names: list[str]) -> list[BatchItem]:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for name in names:
        path = folder / name
        path.write_bytes(name.encode())  # distinct content per name
        items.append(BatchItem(path=str(path), media_id=name))
    return items


def _scans(counter: Path) -> list[str]:
    return counter.read_text().split() if counter.exists() else []


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "scans.txt"
    monkeypatch.setenv("FAKESCOPE_TEST_SCANS", str(path))
    return path


def _media_rows(table: ScoreTable) -> dict[str, str]:
    rows = [r for r in table.rows if r.track_id == MEDIA_LEVEL]
    out = {r.media_id: r.status for r in rows}
    assert len(out) == len(rows), "an item appears more than once"
    return out


# -- inputs ---------------------------------------------------------------------------------
def test_collect_items_reads_folders_globs_manifests_and_lists(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "sub").mkdir(parents=True)
    for name in ("a.mp4", "sub/b.JPG", "notes.txt", ".hidden.mp4"):
        (media / name).write_bytes(b"x")
    found = [Path(i.path).name for i in collect_items([str(media)])]
    assert found == ["a.mp4", "b.JPG"]  # media extensions only, hidden skipped, recursive
    assert [Path(i.path).name for i in collect_items([str(media / "*.mp4")])] == ["a.mp4"]

    (tmp_path / "m.csv").write_text("path,label,method\nmedia/a.mp4,fake,Deepfakes\n")
    (tmp_path / "m.tsv").write_text("file\tlabel\tgenerator_method\nmedia/sub/b.JPG\treal\tnone\n")
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"path": "media/a.mp4", "media_id": "x1", "dataset": "d", "label": 1}) + "\n"
    )
    (tmp_path / "list.txt").write_text("# a comment\nmedia/a.mp4\n\n")
    csv_item, tsv_item, jsonl_item, list_item = (
        collect_items([str(tmp_path / n)])[0] for n in ("m.csv", "m.tsv", "m.jsonl", "list.txt")
    )
    assert Path(csv_item.path) == tmp_path / "media" / "a.mp4"  # relative to the manifest
    assert (csv_item.label, csv_item.method, csv_item.dataset) == (
        "fake",
        "Deepfakes",
        tmp_path.name,
    )
    assert (tsv_item.label, tsv_item.method) == ("real", "real")
    assert (jsonl_item.media_id, jsonl_item.dataset, jsonl_item.method) == ("x1", "d", "unknown")
    assert list_item.label is None and Path(list_item.path) == media / "a.mp4"
    with pytest.raises(InputError):
        collect_items([str(tmp_path / "missing.mp4")])
    (tmp_path / "bad.csv").write_text("path,label\nmedia/a.mp4,maybe\n")
    with pytest.raises(InputError, match="label"):
        collect_items([str(tmp_path / "bad.csv")])


# -- the real scanner, through the command line -----------------------------------------------
def _cli(argv: list[str]) -> int:
    from fakescope.cli._batch import add_parser, run
    from fakescope.cli._main import _Parser

    parser = _Parser(prog="fakescope")
    add_parser(parser.add_subparsers(dest="command", parser_class=_Parser))
    args: argparse.Namespace = parser.parse_args(argv)
    return run(args)


def test_cli_scans_resumes_and_feeds_eval(
    tmp_path: Path, example_face: npt.NDArray[np.uint8], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_image(data / "face.jpg", example_face)
    (data / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    manifest = data / "manifest.csv"
    manifest.write_text(
        f"path,label,method\n{EXAMPLE},real,\nface.jpg,fake,FaceSwap\nbroken.mp4,fake,Deepfakes\n"
    )
    out = tmp_path / "out"
    argv = ["batch", str(manifest), "--out", str(out), "--frames", "4", "--workers", "2"]
    assert _cli([*argv, "--json", "-q"]) == 0  # abstentions are results
    summary = json.loads(capsys.readouterr().out)
    assert summary["scanned"] == 3 and summary["failed"] == 0, summary

    table = read_results(out)
    statuses = {
        r.media_id: r.status
        for r in table.rows
        if r.track_id == MEDIA_LEVEL and not r.detector.startswith("synthesis:")
    }
    assert statuses[str(EXAMPLE)] == "ok"
    assert statuses[str(data / "broken.mp4")] == "undecodable"
    assert len(statuses) == 3
    assert any(r.track_id >= 0 for r in table.rows)  # per-crop rows too
    labels = {r.media_id: (r.label, r.method) for r in table.media_rows()}
    assert labels[str(data / "face.jpg")] == (1, "FaceSwap")
    assert labels[str(EXAMPLE)] == (0, "real")
    # the CSV export is what `fakescope eval --from-scores` reads, and so is the folder itself
    assert len(ScoreTable.load(out / "scores.csv")) == len(table)
    from fakescope.cli import main

    report = tmp_path / "report"
    args = ["eval", "--from-scores", str(out), "--out", str(report), "--no-figures"]
    assert main([*args, "--bootstrap", "20"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())["metrics"]
    assert metrics and all(name in metrics for name in {r.detector for r in table.rows})
    capsys.readouterr()
    verdicts = read_verdicts(out)
    assert len(verdicts) == 3 and {"ok", "undecodable"} <= {v["status"] for v in verdicts}
    assert all("faces" in v and "batch" in v for v in verdicts)  # scan --json plus batch
    # the Parquet shards carry each item's overall verdict on every one of its rows
    import pyarrow.parquet as pq

    shards = sorted((out / "scores").glob("*.parquet"))
    cols = pq.read_table(shards, columns=["media_id", "overall_label", "decided_by"])
    overall = {v["path"]: v["verdict"] for v in verdicts}
    got = set(zip(*(cols[c].to_pylist() for c in cols.column_names), strict=True))
    assert got == {(m, o["label"], o["decided_by"]) for m, o in overall.items()}
    assert overall[str(data / "broken.mp4")]["label"] == "no_verdict"

    journal = sorted((out / "verdicts").glob("*.jsonl"))
    lines = sum(len(p.read_text().splitlines()) for p in journal)
    assert _cli([*argv, "--json", "-q"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["scanned"] == 0 and again["skipped"] == 3  # nothing scanned twice
    assert sum(len(p.read_text().splitlines()) for p in journal) == lines
    # other settings, same folder: refused in one line (exit 2 through fakescope's main)
    with pytest.raises(InputError, match="other scan settings"):
        _cli(["batch", str(manifest), "--out", str(out), "--frames", "5", "-q"])


# -- failure isolation and retries ------------------------------------------------------------
def test_failures_are_isolated_and_retried_across_runs(tmp_path: Path, counter: Path) -> None:
    names = ["ok1.mp4", "hang.mp4", "crash.mp4", "boom.mp4", "noface.mp4", "ok2.mp4"]
    items = _files(tmp_path / "in", names)
    out = tmp_path / "out"
    options = BatchOptions(workers=2, retries=0, timeout_s=2.0, scanner_factory=FakeScanner)
    summary = run_batch(items, CONFIG, out, options)
    statuses = _media_rows(read_results(out))
    assert statuses == {
        "ok1.mp4": "ok",
        "hang.mp4": "timeout",
        "crash.mp4": "crash",
        "boom.mp4": "error",
        "noface.mp4": "no_face",  # an abstention is a result, not a failure
        "ok2.mp4": "ok",
    }
    assert summary.failed == 3 and not summary.ok
    reasons = {v["batch"]["media_id"]: v["reason"] for v in read_verdicts(out)}
    assert "--timeout" in reasons["hang.mp4"] and "SIGKILL" in reasons["crash.mp4"]

    # one more attempt each for the three failures, then they are left alone
    retry = BatchOptions(workers=2, retries=1, timeout_s=2.0, scanner_factory=FakeScanner)
    before = len(_scans(counter))
    second = run_batch(items, CONFIG, out, retry)
    assert second.progress.scanned == 3 and second.progress.skipped == 3
    assert sorted(_scans(counter)[before:]) == ["boom.mp4", "crash.mp4", "hang.mp4"]
    third = run_batch(items, CONFIG, out, retry)
    assert third.progress.scanned == 0 and third.failed == 3
    attempts = {v["batch"]["media_id"]: v["batch"]["attempt"] for v in read_verdicts(out)}
    assert attempts["hang.mp4"] == 2 and attempts["ok1.mp4"] == 1
    assert len(_media_rows(read_results(out))) == 6


def test_memory_guard_kills_only_the_item(tmp_path: Path, counter: Path) -> None:
    items = _files(tmp_path / "in", ["mem.mp4", "ok.mp4"])
    options = BatchOptions(
        workers=1, retries=0, max_memory_mb=450, timeout_s=30, scanner_factory=FakeScanner
    )
    summary = run_batch(items, CONFIG, tmp_path / "out", options)
    assert _media_rows(read_results(tmp_path / "out")) == {"mem.mp4": "memory", "ok.mp4": "ok"}
    assert summary.failed == 1


def test_identical_content_is_scanned_once(tmp_path: Path, counter: Path) -> None:
    items = _files(tmp_path / "a", ["ok.mp4"]) + _files(tmp_path / "b", ["ok.mp4"])
    items[1] = BatchItem(path=items[1].path, media_id="copy")
    summary = run_batch(items, CONFIG, tmp_path / "out", BatchOptions(scanner_factory=FakeScanner))
    assert summary.progress.scanned == 1 and summary.progress.finished == 2 and summary.ok
    assert _scans(counter) == ["ok.mp4"]


# -- the results folder -----------------------------------------------------------------------
def _record(key: str, status: str, failed: bool, attempt: int) -> dict[str, Any]:
    row = ["m", MEDIA_LEVEL, MEDIA_LEVEL, "d", None, 1, "x", "ds", status, "", None]
    info = {"item_key": key, "status": status, "failed": failed, "attempt": attempt}
    return {"status": status, "batch": {**info, "media_id": "m", "rows": [row]}}


def test_reader_keeps_the_last_good_attempt_and_repairs_a_torn_journal(tmp_path: Path) -> None:
    out = tmp_path / "out"
    journal = out / "verdicts" / "part-00000.jsonl"
    journal.parent.mkdir(parents=True)
    lines = [
        _record("k1", "timeout", True, 1),
        _record("k1", "ok", False, 2),
        _record("k1", "crash", True, 3),  # a failure after a success does not replace it
        _record("k2", "crash", True, 1),
        _record("k2", "timeout", True, 2),  # the last failure counts
    ]
    journal.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"status": "ok", "ba')
    assert [v["status"] for v in read_verdicts(out)] == ["ok", "timeout"]
    assert [r.status for r in read_results(out).rows] == ["ok", "timeout"]  # from the journal
    store = ResultStore(out)
    store.open({"config_hash": "h"})  # a killed run's shard: torn line dropped, sealed
    store.close()
    assert journal.read_text().count("\n") == 5 and journal.read_text().endswith("}\n")
    assert (out / "scores" / "part-00000.parquet").exists()
    assert [r.status for r in read_results(out).rows] == ["ok", "timeout"]  # from Parquet
    assert store.index["k1"].good and store.index["k1"].attempts == 3
    assert not store.index["k2"].good and store.index["k2"].attempts == 2


# -- kill -9 of the batch itself --------------------------------------------------------------
_CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_batch import CONFIG, FakeScanner, BatchItem
from fakescope.batch import BatchOptions, run_batch
if __name__ == "__main__":
    items = [BatchItem(path=p, media_id=Path(p).name) for p in sys.argv[2:]]
    run_batch(items, CONFIG, sys.argv[1], BatchOptions(workers=2, shard_size=4,
              scanner_factory=FakeScanner))
"""


def test_kill_9_mid_run_then_rerun_gives_every_item_once(tmp_path: Path, counter: Path) -> None:
    items = _files(tmp_path / "in", [f"slow{i:02d}.mp4" for i in range(24)])
    out = tmp_path / "out"
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(out), *(i.path for i in items)], env=env
    )
    deadline = time.monotonic() + 60
    while len(read_verdicts(out) if (out / "verdicts").exists() else []) < 7:
        assert child.poll() is None, "the batch ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done_before = len(read_verdicts(out))
    assert 7 <= done_before < 24
    time.sleep(1.0)  # the workers notice their parent is gone within 0.5 s
    scans_after_kill = len(_scans(counter))

    summary = run_batch(items, CONFIG, out, BatchOptions(workers=2, scanner_factory=FakeScanner))
    assert summary.ok and summary.progress.skipped == done_before
    assert len(_scans(counter)) - scans_after_kill == 24 - done_before  # no rescans
    verdicts = read_verdicts(out)
    assert sorted(v["batch"]["media_id"] for v in verdicts) == sorted(i.media_id for i in items)
    assert sorted(_media_rows(read_results(out))) == sorted(i.media_id for i in items)


def test_missing_ray_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakescope.batch._ray import import_ray
    from fakescope.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"fakescope\[batch\]") as info:
        import_ray()
    assert "\n" not in str(info.value)


def test_url_inputs_are_read_through_fsspec(tmp_path: Path, counter: Path) -> None:
    pytest.importorskip("fsspec")
    _files(tmp_path / "in", ["a.mp4", "b.jpg", "notes.txt"])
    url = (tmp_path / "in").as_uri()
    items = collect_items([url])
    assert [Path(i.path).name for i in items] == ["a.mp4", "b.jpg"]  # media only
    assert all(i.path.startswith("file://") for i in items)
    out = tmp_path / "out"
    summary = run_batch(items, CONFIG, out, BatchOptions(scanner_factory=FakeScanner))
    assert summary.ok and summary.progress.scanned == 2
    assert {v["path"] for v in read_verdicts(out)} == {i.path for i in items}
    again = run_batch(items, CONFIG, out, BatchOptions(scanner_factory=FakeScanner))
    assert again.progress.scanned == 0  # keyed by the content read through fsspec


def test_batch_imports_no_optional_dependency_until_used() -> None:
    code = (
        "import sys, fakescope.batch, fakescope.cli._batch; "
        "print(sorted(m for m in ('ray', 'pyarrow', 'fsspec') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "[]", done.stderr

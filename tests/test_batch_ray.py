"""``fakescope batch --ray``: the same job on Ray actors of a local Ray the test starts
(``ray.init(num_cpus=2)``), including an actor killed in the middle of the job."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyarrow")
ray = pytest.importorskip("ray", reason="Ray is not installed (the batch extra)")

from fakescope.batch import BatchOptions, read_results, read_verdicts, run_batch  # noqa: E402
from fakescope.batch._ray import RayPool  # noqa: E402
from test_batch import CONFIG, FakeScanner, _files, _media_rows  # noqa: E402


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    paths = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "src")]
    pythonpath = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
    )
    yield ray
    ray.shutdown()


def test_ray_runs_isolates_failures_and_resumes(local_ray: Any, tmp_path: Path) -> None:
    names = ["ok1.mp4", "hang.mp4", "crash.mp4", "noface.mp4", "ok2.mp4"]
    items = _files(tmp_path / "in", names)
    out = tmp_path / "out"
    options = BatchOptions(
        workers=2, retries=0, timeout_s=3.0, ray="auto", scanner_factory=FakeScanner
    )
    summary = run_batch(items, CONFIG, out, options)
    assert summary.backend == "ray"
    assert _media_rows(read_results(out)) == {
        "ok1.mp4": "ok",
        "hang.mp4": "timeout",
        "crash.mp4": "crash",
        "noface.mp4": "no_face",
        "ok2.mp4": "ok",
    }
    again = run_batch(items, CONFIG, out, options)
    assert again.progress.scanned == 0 and again.progress.skipped == 5


def test_ray_actor_killed_mid_job_loses_and_duplicates_nothing(
    local_ray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = _files(tmp_path / "in", [f"slow{i:02d}.mp4" for i in range(16)])
    out = tmp_path / "out"
    killed: list[int] = []
    done: list[Any] = []
    original = RayPool.poll

    def poll(self: RayPool, timeout: float) -> list[Any]:
        # once 4 items are done, kill -9 the process of a busy actor
        if not killed and len(done) >= 4:
            busy = self.actor_pids(busy_only=True)
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
                time.sleep(0.2)
        events = original(self, timeout)
        done.extend(e for e in events if e.kind == "done")
        return events

    monkeypatch.setattr(RayPool, "poll", poll)
    options = BatchOptions(workers=2, retries=1, ray="auto", scanner_factory=FakeScanner)
    summary = run_batch(items, CONFIG, out, options)
    assert killed, "no actor was killed"
    assert summary.ok and summary.progress.retried >= 1
    verdicts = read_verdicts(out)
    assert sorted(v["batch"]["media_id"] for v in verdicts) == sorted(i.media_id for i in items)
    assert sorted(_media_rows(read_results(out))) == sorted(i.media_id for i in items)
    assert all(v["status"] == "ok" for v in verdicts)

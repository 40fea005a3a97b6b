"""The job queue and the worker loop, in-process: claims, stale writes, failures, restarts,
retention and the data folder's lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakescope import ScanConfig, Status, Verdict
from fakescope.server import (
    DataDirBusy,
    DataDirLock,
    JobRunner,
    JobStore,
    ServerSettings,
    create_app,
)
from fakescope.server._app import purge_expired
from fakescope.server._jobs import new_job_id
from fakescope.types import Label

Progress = Callable[[int, int], None] | None


class FakeScanner:
    """Scans instantly: raises for files whose job is in ``explode``, else no face."""

    def __init__(self, on_scan: Callable[[Path, Progress], None] | None = None) -> None:
        self.config = ScanConfig()
        self.on_scan = on_scan
        self.seen: list[ScanConfig] = []

    def scan(self, path: Path | str, progress: Progress = None) -> Verdict:
        self.seen.append(self.config)
        if self.on_scan is not None:
            self.on_scan(Path(path), progress)
        if progress is not None:
            progress(1, 1)
        return Verdict(str(path), Status.NO_FACE, "no face found in 1 sampled frame(s)")


def settings_for(tmp_path: Path, **kw: Any) -> ServerSettings:
    return ServerSettings(data_dir=tmp_path / "data", **kw)


def queue(settings: ServerSettings, store: JobStore, name: str = "clip.mp4") -> str:
    job_id = new_job_id()
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    (settings.uploads_dir / f"{job_id}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    store.create(job_id, name, f"{job_id}.mp4")
    time.sleep(0.002)  # distinct creation times, so the order is the upload order
    return job_id


def test_claims_are_atomic_and_stale_writes_are_ignored(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = JobStore(settings.db_path)
    first, second = queue(settings, store), queue(settings, store)
    claims: list[Any] = []

    def grab() -> None:
        claims.append(JobStore(settings.db_path).claim(f"w{threading.get_ident()}"))

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [c for c in claims if c is not None]
    assert sorted(c.job.id for c in taken) == sorted([first, second])  # each exactly once
    claim = next(c for c in taken if c.job.id == first)
    assert claim.job.status == "running" and claim.job.attempts == 1
    assert store.progress(claim, 0.5) and store.get(first).progress == 0.5  # type: ignore[union-attr]

    # the server restarts: the job goes back to the queue and the old claim is dead
    requeued, failed = store.requeue_running(max_attempts=3)
    assert sorted(requeued) == sorted([first, second]) and failed == []
    assert not store.progress(claim, 0.9)
    assert not store.finish(claim, {"label": "fake", "fake_probability": 0.9}, None)
    again = store.claim("w-new")
    assert again is not None and again.job.id == first and again.job.attempts == 2
    assert store.finish(again, {"label": "real", "fake_probability": 0.1}, {"c2pa": False})
    done = store.get(first)
    assert done is not None and done.status == "done" and done.progress == 1.0
    assert done.label == "real" and done.provenance == {"c2pa": False}
    assert not store.fail(again, "too late")  # finished: no longer running


def test_requeue_keeps_live_workers_and_fails_after_max_attempts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = JobStore(settings.db_path)
    alive_job, dead_job = queue(settings, store), queue(settings, store)
    assert store.claim("alive") is not None and store.claim("dead") is not None
    requeued, failed = store.requeue_running(max_attempts=3, keep=["alive"], crashed=True)
    assert requeued == [dead_job] and failed == []
    assert store.get(alive_job).status == "running"  # type: ignore[union-attr]
    for _ in range(2):  # two more deaths: three crashes in all
        assert store.claim("dead") is not None
        store.requeue_running(max_attempts=3, keep=["alive"], crashed=True)
    job = store.get(dead_job)
    assert job is not None and job.status == "failed" and job.attempts == 3
    assert job.crashes == 3
    assert job.error == "the worker died 3 times while scanning this file"


def test_a_failing_job_does_not_stop_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path)
    store = JobStore(settings.db_path)
    bad, good = queue(settings, store, "bad.mp4"), queue(settings, store, "good.mp4")

    def explode(path: Path, progress: Progress) -> None:
        if path.stem == bad:
            raise RuntimeError("decoder exploded")

    monkeypatch.setattr(
        "fakescope.server._worker.read_provenance_dict", lambda path: {"read": path.name}
    )
    scanner = FakeScanner(explode)
    runner = JobRunner(store, settings, scanner, "w0")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and store.counts()["done"] < 1:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    failed, done = store.get(bad), store.get(good)
    assert failed is not None and failed.status == "failed"
    assert failed.error == "RuntimeError: decoder exploded"
    assert done is not None and done.status == "done" and done.error is None
    assert done.result is not None and done.result["status"] == "no_face"
    assert done.result["path"] == "good.mp4"  # the display name, never the stored path
    assert done.provenance == {"read": f"{good}.mp4"}
    assert scanner.seen[-1].thumbnails_dir == str(settings.jobs_dir / good)
    assert scanner.seen[-1].heatmaps_dir is None  # the detector has no mask head
    assert not (settings.uploads_dir / f"{good}.mp4").exists()  # media not kept once scanned


def test_a_job_deleted_while_scanning_is_discarded(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = JobStore(settings.db_path)
    job_id = queue(settings, store)

    def delete_midway(path: Path, progress: Progress) -> None:
        (settings.jobs_dir / job_id / "partial.jpg").write_bytes(b"x")
        store.delete(job_id)  # what DELETE /api/scans/{id} does meanwhile
        assert progress is not None
        progress(1, 2)  # the worker notices and stops

    runner = JobRunner(store, settings, FakeScanner(delete_midway), "w0", progress_every_s=0)
    assert runner.run_once()
    assert store.get(job_id) is None
    assert not (settings.jobs_dir / job_id).exists()
    assert not runner.run_once()  # queue empty


def test_running_jobs_are_requeued_when_the_server_starts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = JobStore(settings.db_path)
    interrupted, unlucky = queue(settings, store), queue(settings, store)
    assert store.claim("old-worker") is not None  # interrupted: its 1st attempt
    assert store.claim("old-worker") is not None
    with store._tx() as db:  # unlucky: its worker already crashed on it twice before
        db.execute("UPDATE jobs SET attempts = 3, crashes = 2 WHERE id = ?", (unlucky,))
    jobs = {j.id: j for j in store.recent()}
    assert jobs[unlucky].status == "running" and jobs[unlucky].attempts == 3
    with TestClient(create_app(settings, start_workers=False)) as client:
        a = client.get(f"/api/scans/{interrupted}").json()
        b = client.get(f"/api/scans/{unlucky}").json()
    assert a["status"] == "queued" and a["error"] is None and a["progress"] == 0.0
    # the server's death is not a crash of the worker: the job is tried again
    assert b["status"] == "queued" and b["error"] is None
    job = store.get(unlucky)
    assert job is not None and job.crashes == 2 and job.attempts == 3


def test_one_server_per_data_folder(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    lock = DataDirLock(settings.lock_path)
    lock.acquire()
    try:
        with pytest.raises(DataDirBusy, match="another fakescope server"):
            DataDirLock(settings.lock_path).acquire()
        with (
            pytest.raises(DataDirBusy),
            TestClient(create_app(settings, start_workers=False)),
        ):
            pass
    finally:
        lock.release()
    with TestClient(create_app(settings, start_workers=False)) as client:
        assert client.get("/api/health").status_code == 200


def test_expired_jobs_are_deleted_with_their_files(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, retention_hours=1.0)
    store = JobStore(settings.db_path)
    old, new = queue(settings, store), queue(settings, store)
    (settings.jobs_dir / old).mkdir(parents=True)
    (settings.jobs_dir / old / f"{old}_track0.jpg").write_bytes(b"x")
    stray = settings.uploads_dir / f"{new_job_id()}.png"
    stray.write_bytes(b"x")
    with store._tx() as db:  # make `old` two hours old
        db.execute("UPDATE jobs SET created_at = created_at - 7200 WHERE id = ?", (old,))
    assert purge_expired(settings, store) == 1
    assert store.get(old) is None and store.get(new) is not None
    assert not (settings.jobs_dir / old).exists()
    assert not (settings.uploads_dir / f"{old}.mp4").exists()
    assert (settings.uploads_dir / f"{new}.mp4").exists()
    assert stray.exists()  # recent: may be an upload in progress
    assert purge_expired(settings, store, now=time.time() + 7200) == 1
    assert not stray.exists() and store.recent() == []


def test_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        "FAKESCOPE_DATA_DIR": str(tmp_path / "d"),
        "FAKESCOPE_API_TOKEN": "",
        "FAKESCOPE_WORKERS": "2",
        "FAKESCOPE_MAX_IMAGE_MB": "1.5",
    }
    s = ServerSettings.from_env(env, workers=3, host=None)
    assert s.data_dir == tmp_path / "d" and s.api_token is None
    assert s.workers == 3 and s.host == "127.0.0.1"  # explicit values win; None is "unset"
    assert s.max_image_bytes == round(1.5 * 1024 * 1024)
    assert s.max_video_bytes == 250 * 1024 * 1024 and s.retention_hours == 24
    assert s.rate_limit_per_minute == 60 and s.scan == ScanConfig()
    assert ServerSettings.from_env({}).data_dir == Path("fakescope-data")
    assert ServerSettings.from_env({"FAKESCOPE_API_TOKEN": "t"}).api_token == "t"
    from fakescope.errors import ConfigError

    with pytest.raises(ConfigError, match="FAKESCOPE_WORKERS"):
        ServerSettings.from_env({"FAKESCOPE_WORKERS": "many"})


# -- no finished verdict thrown away for an optional extra ------------------------------------
class NotedScanner(FakeScanner):
    """Finds a fake face; its verdict carries the scanner's own note (an optional stage that
    failed, as the Scanner reports one)."""

    def scan(self, path: Path | str, progress: Progress = None) -> Verdict:
        self.seen.append(self.config)
        note = "evidence failed and were left out: OSError: [Errno 28] No space left on device"
        return Verdict(
            str(path), Status.OK, "face 1 looks manipulated", 0.93, Label.FAKE, notes=(note,)
        )


def test_an_output_folder_that_cannot_be_made_is_a_note(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = JobStore(settings.db_path)
    job_id = queue(settings, store)
    settings.jobs_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.jobs_dir.write_text("a file where the folder should be")
    scanner = NotedScanner()
    assert JobRunner(store, settings, scanner, "w0").run_once()
    job = store.get(job_id)
    assert job is not None and job.status == "done" and job.error is None
    assert job.result is not None and job.result["status"] == "ok"
    assert job.result["verdict"]["label"] == "manipulated"
    # the scanner's note first, then the server's own
    scanners, servers = job.result["notes"]
    assert scanners.startswith("evidence failed and were left out")
    assert servers.startswith("Face previews and heatmaps could not be saved on the server")
    (config,) = scanner.seen
    assert config.thumbnails_dir is None and config.heatmaps_dir is None
    assert not (settings.uploads_dir / f"{job_id}.mp4").exists()  # done: the media is gone


def test_claims_record_when_a_scan_started_and_the_server_can_stop_it(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = JobStore(settings.db_path)
    job_id = queue(settings, store)
    assert store.get(job_id).started_at is None  # type: ignore[union-attr]
    before = time.time()
    claim = store.claim("w0")
    assert claim is not None and claim.job.started_at is not None
    assert before <= claim.job.started_at <= time.time()
    assert [j.id for j in store.running()] == [job_id]
    assert not store.stop_running(job_id, "someone-else", "too long")
    assert store.stop_running(job_id, "w0", "The scan took too long.")
    job = store.get(job_id)
    assert job is not None and job.status == "failed" and job.error == "The scan took too long."
    assert not store.progress(claim, 0.5)  # the worker's claim died with it
    assert not store.finish(claim, {"label": "fake"}, None)
    assert store.running() == []


# -- the reference person of an upload --------------------------------------------------------
def test_each_job_is_checked_against_its_own_reference(
    tmp_path: Path, face_clip: Path, example_face: Any
) -> None:
    import dataclasses

    from fakescope.inference import Scanner
    from test_identity_scan import _reference_gallery

    folder = tmp_path / "people"
    _reference_gallery(folder, example_face)
    scan = ScanConfig(gallery=str(folder), synthesis_detector=None, num_frames=6)
    settings = dataclasses.replace(settings_for(tmp_path), scan=scan)
    store = JobStore(settings.db_path)
    scanner = Scanner(scan)
    identifier = scanner.identifier
    jobs = {}
    for reference in ("stranger", None, "eileen"):
        job_id = new_job_id()
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        (settings.uploads_dir / f"{job_id}.mp4").write_bytes(face_clip.read_bytes())
        store.create(job_id, "face.mp4", f"{job_id}.mp4", reference)
        time.sleep(0.002)
        jobs[reference] = job_id
    runner = JobRunner(store, settings, scanner, "w0")
    while runner.run_once():
        pass
    assert scanner.identifier is identifier and scanner.config == scan

    def reference_check(job_id: str) -> list[dict[str, Any]]:
        job = store.get(job_id)
        assert job is not None and job.status == "done" and job.result is not None
        assert job.result["status"] == "ok", job.result["reason"]
        face = job.result["faces"][0]
        assert face["identity"]["name"] == "eileen"  # the gallery names her either way
        return [e for e in face["evidence"] if e["name"] == "reference-v1"]

    (other,) = reference_check(jobs["stranger"])
    assert other["fake_probability"] > 0.8 and "does not look like stranger" in other["summary"]
    assert reference_check(jobs[None]) == []
    (own,) = reference_check(jobs["eileen"])
    assert own["fake_probability"] < 0.2
    assert store.get(jobs["eileen"]).reference == "eileen"  # type: ignore[union-attr]

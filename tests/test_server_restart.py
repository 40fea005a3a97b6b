"""A real ``python -m fakescope serve``: SIGKILL it in the middle of a scan; its worker must
exit by itself, and the next server must finish the same job."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakescope.server import JobStore

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")

FPS = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """Pids of the live processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may wait for a reaper that never comes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_for(what: str, check: Callable[[], Any], timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; server log:\n{log.read_text()[-4000:]}")


class Servers:
    """Starts ``python -m fakescope serve`` processes on one data folder; :meth:`close` kills
    them and any worker pid recorded in ``spawned``."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.started: list[subprocess.Popen[bytes]] = []
        self.spawned: list[int] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FAKESCOPE_")}

    def start(self, port: int) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.tmp_path / f"server{len(self.started)}.log"
        cmd = [sys.executable, "-m", "fakescope", "serve", "--port", str(port)]
        cmd += ["--data-dir", str(self.data_dir), "--fps", str(FPS), "--threads", "1"]
        with log.open("wb") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env)
        self.started.append(proc)
        return proc, log

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)
        for pid in self.spawned:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    pool = Servers(tmp_path)
    try:
        yield pool
    finally:
        pool.close()


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still running after waiting up to ``timeout`` seconds for them to exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(running(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if running(pid)]


def test_killed_server_leaves_no_worker_and_the_job_survives(
    servers: Servers, long_clip: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server, log = servers.start(port)
    with httpx.Client(base_url=base, timeout=30) as client:
        wait_for("the server", lambda: client.get("/api/health").json()["workers"] == 1, 120, log)
        with long_clip.open("rb") as fh:
            r = client.post("/api/scans", files={"file": ("long.mp4", fh, "video/mp4")})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        url = f"/api/scans/{job_id}"

        def mid_scan() -> bool:
            job = client.get(url).json()
            assert job["status"] in ("queued", "running"), job
            return bool(job["status"] == "running" and 0 < job["progress"] < 0.5)

        wait_for("the scan to start", mid_scan, 180, log)
        workers = children(server.pid)
        servers.spawned.extend(workers)
        assert workers, "the server has no child process"
        server.send_signal(signal.SIGKILL)
        server.wait(30)

    # the worker (and multiprocessing's helper) notice on their own
    assert wait_gone(workers, 20) == [], "a worker outlived the server"
    stuck = JobStore(tmp_path / "data" / "fakescope.db").get(job_id)
    assert stuck is not None and stuck.status == "running"

    port = free_port()
    server, log = servers.start(port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = client.get(url).json()
            return job if job["status"] in ("done", "failed") else None

        job = wait_for("the requeued job to finish", finished, 300, log)
        assert job["status"] == "done", job["error"]
        assert job["result"]["status"] == "ok", job["result"]["reason"]
        assert job["result"]["faces"] and job["result"]["path"] == "long.mp4"
        assert job["result"]["media"]["kind"] == "video"
        thumb = client.get(job["result"]["faces"][0]["thumbnail"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    stored = JobStore(tmp_path / "data" / "fakescope.db").get(job_id)
    assert stored is not None and stored.attempts == 2
    workers = children(server.pid)
    servers.spawned.extend(workers)
    server.send_signal(signal.SIGINT)  # a graceful stop (Ctrl-C) ends its workers too
    assert server.wait(60) == 0
    assert wait_gone(workers, 20) == []


def test_a_worker_killed_mid_scan_is_replaced_and_the_job_rerun(
    long_clip: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from fakescope import ScanConfig
    from fakescope.server import ServerSettings, create_app

    settings = ServerSettings(
        data_dir=tmp_path / "data",
        scan=ScanConfig(fps=FPS, threads=1),
        supervise_interval_s=0.2,
    )
    log = tmp_path / "none.log"
    log.write_text("(in-process server)")
    app = create_app(settings)
    with TestClient(app) as client:
        with long_clip.open("rb") as fh:
            r = client.post("/api/scans", files={"file": ("long.mp4", fh, "video/mp4")})
        url = r.json()["url"]

        def mid_scan() -> bool:
            job = client.get(url).json()
            assert job["status"] in ("queued", "running"), job
            return bool(job["status"] == "running" and 0 < job["progress"] < 0.5)

        wait_for("the scan to start", mid_scan, 180, log)
        (pid,) = app.state.pool.pids()
        os.kill(pid, signal.SIGKILL)

        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = client.get(url).json()
            return job if job["status"] in ("done", "failed") else None

        job = wait_for("the job to be rerun", finished, 300, log)
        assert job["status"] == "done", job["error"]
        assert job["result"]["status"] == "ok"
        (new_pid,) = app.state.pool.pids()
        assert new_pid != pid
        assert client.get("/api/health").json()["workers"] == 1
    stored = JobStore(settings.db_path).get(job["id"])
    assert stored is not None and stored.attempts == 2

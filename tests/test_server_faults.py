"""Hostile clients and hard failures against ``fakescope serve`` (issue 15): slow-loris
connections and uploads, uploads in progress per client, server kills versus worker crashes,
and the permissions of the data folder."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import sqlite3
import stat
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from fakescope.server import JobStore, ServerSettings, WorkerPool, create_app
from test_server_restart import Servers, children, free_port, running, wait_for, wait_gone

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 4.0
BODY_IDLE_TIMEOUT = 1.5
MAX_UPLOADS = 2
SLACK = 6.0
"""How much later than its deadline the server may act on a loaded machine."""

JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100)
"""Enough of a JPEG for the upload to be sniffed and its file opened."""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- a server with short deadlines ------------------------------------------------------------
class Guarded:
    """A running ``fakescope serve`` without workers and with 2-4 s deadlines."""

    def __init__(self, servers: Servers) -> None:
        servers.env.update(
            FAKESCOPE_WORKERS="0",
            FAKESCOPE_RATE_LIMIT_PER_MINUTE="0",
            FAKESCOPE_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT),
            FAKESCOPE_BODY_TIMEOUT_S=str(BODY_TIMEOUT),
            FAKESCOPE_BODY_IDLE_TIMEOUT_S=str(BODY_IDLE_TIMEOUT),
            FAKESCOPE_MAX_UPLOADS_PER_CLIENT=str(MAX_UPLOADS),
        )
        self.port = free_port()
        self.process, self.log = servers.start(self.port)
        self.uploads_dir = servers.data_dir / "uploads"
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        wait_for("the server", lambda: self.client.get("/api/health").is_success, 120, self.log)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def upload(self, data: bytes = JPEG_HEAD) -> httpx.Response:
        return self.client.post("/api/scans", files={"file": ("a.jpg", data, "image/jpeg")})

    def slow_upload(self) -> socket.socket:
        """A connection that sent an upload's headers and the start of its file."""
        part = (
            b"--b0undary\r\n"
            b'Content-Disposition: form-data; name="file"; filename="slow.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + JPEG_HEAD
        )
        head = (
            "POST /api/scans HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=b0undary\r\n"
            "Content-Length: 100000\r\n\r\n"
        )
        sock = self.connect()
        sock.sendall(head.encode() + part)
        return sock


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    servers = Servers(tmp_path_factory.mktemp("guarded"))
    try:
        server = Guarded(servers)
        yield server
        server.client.close()
    finally:
        servers.close()


class Watched:
    """A raw connection whose answer and closing time are recorded."""

    def __init__(self, sock: socket.socket, trickle: bytes = b"") -> None:
        self.sock = sock
        self.trickle = trickle
        self.opened = time.monotonic()
        self.data = b""
        self.closed_after: float | None = None

    def poll(self) -> None:
        """Read what came; then send the next byte of ``trickle``, if any."""
        if self.closed_after is not None:
            return
        try:
            while select.select([self.sock], [], [], 0)[0]:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionResetError
                self.data += chunk
            if self.trickle:
                self.sock.send(self.trickle[:1])
                self.trickle = self.trickle[1:]
        except OSError:  # closed by the server (a reset if our last byte crossed its close)
            self.closed_after = time.monotonic() - self.opened
            self.sock.close()


def watch(conns: list[Watched], seconds: float, every: float = 0.2) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(c.closed_after is None for c in conns):
        for conn in conns:
            conn.poll()
        time.sleep(every)


def test_slow_request_heads_are_cut_off_while_others_are_served(guarded: Guarded) -> None:
    line = b"GET /api/health HTTP/1.1\r\n"
    headers = b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    silent = [Watched(guarded.connect()) for _ in range(4)]
    tricklers = [Watched(guarded.connect(), trickle=line + headers) for _ in range(4)]
    in_headers = []
    for _ in range(4):
        sock = guarded.connect()
        sock.sendall(line)
        in_headers.append(Watched(sock, trickle=headers))
    conns = silent + tricklers + in_headers
    watch(conns, 0.6)
    # meanwhile a normal client gets its answers, on one keep-alive connection
    for _ in range(3):
        r = guarded.client.get("/api/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"
    watch(conns, HEADER_TIMEOUT + SLACK)
    assert all(c.closed_after is not None for c in conns), guarded.log.read_text()[-2000:]
    for conn in conns:
        assert conn.closed_after is not None
        assert HEADER_TIMEOUT - 0.2 <= conn.closed_after <= HEADER_TIMEOUT + SLACK
    for conn in tricklers + in_headers:
        assert conn.trickle, "the whole request went through: it should have been cut off"
    for conn in silent:
        assert conn.data.startswith(b"HTTP/1.1 408 "), conn.data
    assert guarded.client.get("/api/health").status_code == 200


def test_a_slow_upload_body_gets_a_408(guarded: Guarded) -> None:
    before = set(guarded.uploads_dir.iterdir())
    stalled = Watched(guarded.slow_upload())  # sends nothing more
    trickler = Watched(guarded.slow_upload(), trickle=b"x" * 10_000)  # 5 bytes a second
    watch([stalled, trickler], BODY_TIMEOUT + SLACK)
    assert stalled.closed_after is not None and trickler.closed_after is not None
    assert BODY_IDLE_TIMEOUT - 0.2 <= stalled.closed_after <= BODY_IDLE_TIMEOUT + SLACK
    assert stalled.data.startswith(b"HTTP/1.1 408 "), stalled.data
    assert b"no data for 1.5 s" in stalled.data
    assert BODY_TIMEOUT - 0.2 <= trickler.closed_after <= BODY_TIMEOUT + SLACK
    assert trickler.data.startswith(b"HTTP/1.1 408 "), trickler.data
    assert b"must arrive within 4 s" in trickler.data
    assert set(guarded.uploads_dir.iterdir()) == before  # the partial files are deleted


def test_uploads_in_progress_are_capped_per_client(guarded: Guarded) -> None:
    slow = [Watched(guarded.slow_upload(), trickle=b"x" * 10_000) for _ in range(MAX_UPLOADS)]
    watch(slow, 0.6)  # both are being received now (and trickle within the idle limit)
    r = guarded.upload()
    assert r.status_code == 429, r.text
    assert "in progress" in r.json()["detail"] and r.headers["Retry-After"]
    for conn in slow:  # the slow clients give up: their slots are released
        conn.sock.close()
    deadline = time.monotonic() + 10
    while (r := guarded.upload()).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.status_code == 202, r.text


# -- server kills versus worker crashes -------------------------------------------------------
def test_a_server_killed_three_times_does_not_fail_the_job(
    servers: Servers, long_clip: Path
) -> None:
    job_id = ""
    for kill in range(4):
        port = free_port()
        server, log = servers.start(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_for("the server", lambda: client.get("/api/health").json()["workers"], 120, log)
            if not job_id:
                with long_clip.open("rb") as fh:
                    r = client.post("/api/scans", files={"file": ("long.mp4", fh, "video/mp4")})
                assert r.status_code == 202, r.text
                job_id = r.json()["id"]
            url = f"/api/scans/{job_id}"
            if kill == 3:
                break

            def scanning(client: httpx.Client = client, url: str = url) -> bool:
                job = client.get(url).json()
                assert job["status"] in ("queued", "running"), job
                return bool(job["status"] == "running")

            wait_for("the scan to start", scanning, 120, log)
        workers = children(server.pid)
        servers.spawned.extend(workers)
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        assert wait_gone(workers, 20) == []  # the worker exits because its server died

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = client.get(url).json()
            return job if job["status"] in ("done", "failed") else None

        job = wait_for("the job to finish", finished, 180, log)
    servers.spawned.extend(children(server.pid))
    assert job["status"] == "done", job["error"]
    assert job["result"]["status"] == "ok"
    stored = JobStore(servers.data_dir / "fakescope.db").get(job_id)
    assert stored is not None and stored.attempts == 4 and stored.crashes == 0


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    pool = Servers(tmp_path)
    try:
        yield pool
    finally:
        pool.close()


def crashing_worker(
    settings: ServerSettings, worker_id: str, parent_pid: int, stop_reader: Connection
) -> None:
    """Stands in for ``worker_main`` in a worker process: dies as soon as it has a job, the
    way a decoder crash (a segfault) would take a real worker down."""
    store = JobStore(settings.db_path)
    while os.getppid() == parent_pid:
        if store.claim(worker_id) is not None:
            os._exit(70)
        try:
            if stop_reader.poll(0.05):
                return
        except (OSError, EOFError):
            return


def test_a_worker_crashing_three_times_fails_the_job_and_deletes_its_upload(
    tmp_path: Path, face_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the pool spawns `worker_main` by name, so the child runs this module's function
    monkeypatch.setattr("fakescope.server._worker.worker_main", crashing_worker)
    monkeypatch.setattr(WorkerPool, "restart_backoff_s", 0.2)
    settings = ServerSettings(data_dir=tmp_path / "data", supervise_interval_s=0.2)
    app = create_app(settings)
    with TestClient(app) as client:
        r = client.post("/api/scans", files={"file": ("face.jpg", face_image.read_bytes())})
        assert r.status_code == 202, r.text
        url = r.json()["url"]
        (upload,) = settings.uploads_dir.iterdir()

        def failed() -> dict[str, Any] | None:
            job: dict[str, Any] = client.get(url).json()
            assert job["status"] != "done", job
            return job if job["status"] == "failed" else None

        job = wait_for("the job to fail", failed, 60, tmp_path / "none.log")
    assert job["error"] == "the worker died 3 times while scanning this file"
    assert not upload.exists(), "the upload of a failed job is kept"
    assert not (settings.jobs_dir / job["id"]).exists()
    stored = JobStore(settings.db_path).get(job["id"])
    assert stored is not None and stored.crashes == 3 and stored.attempts == 3


def stuck_worker(
    settings: ServerSettings, worker_id: str, parent_pid: int, stop_reader: Connection
) -> None:
    """Stands in for ``worker_main``: takes a job and never finishes it, the way a decoder
    stuck in a loop would; with ``FAKESCOPE_TEST_ALLOCATE_MB`` set it first fills that much
    memory (a scan that balloons)."""
    store = JobStore(settings.db_path)
    hog = b""
    while os.getppid() == parent_pid:
        if store.claim(worker_id) is not None:
            hog = b"x" * (int(os.environ.get("FAKESCOPE_TEST_ALLOCATE_MB", "0")) * 2**20)
        try:
            if stop_reader.poll(0.05):
                return
        except (OSError, EOFError):
            return
    del hog


def _stopped_job(
    tmp_path: Path, face_image: Path, monkeypatch: pytest.MonkeyPatch, **limits: Any
) -> tuple[dict[str, Any], list[int], list[int], ServerSettings]:
    """Run one upload on a pool of ``stuck_worker``s under ``limits``; the job as the API
    shows it once it failed, the worker pids before and after, and the settings."""
    monkeypatch.setattr("fakescope.server._worker.worker_main", stuck_worker)
    settings = ServerSettings(data_dir=tmp_path / "data", supervise_interval_s=0.2, **limits)
    app = create_app(settings)
    with TestClient(app) as client:
        pool = app.state.pool
        wait_for("the worker", lambda: pool.pids(), 60, tmp_path / "none.log")
        before = pool.pids()
        r = client.post("/api/scans", files={"file": ("face.jpg", face_image.read_bytes())})
        assert r.status_code == 202, r.text
        url = r.json()["url"]

        def failed() -> dict[str, Any] | None:
            job: dict[str, Any] = client.get(url).json()
            assert job["status"] != "done", job
            return job if job["status"] == "failed" else None

        job = wait_for("the job to be stopped", failed, 60, tmp_path / "none.log")
        wait_for(
            "a new worker", lambda: pool.pids() and pool.pids() != before, 30, tmp_path / "none.log"
        )
        after = pool.pids()
        listed = client.get("/api/scans").json()["scans"][0]
        assert listed["status"] == "failed" and listed["error"] == job["error"]
        assert listed["verdict"] is None and listed["result_status"] is None
    return job, before, after, settings


def test_a_scan_over_the_time_limit_is_stopped_and_its_worker_replaced(
    tmp_path: Path, face_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = time.monotonic()
    job, before, after, settings = _stopped_job(
        tmp_path, face_image, monkeypatch, scan_timeout_s=1.0
    )
    assert time.monotonic() - start < 1.0 + SLACK + 10
    assert job["error"] == (
        "The scan took longer than 1 s, this server's limit per file, and was stopped."
    )
    assert len(after) == 1 and set(after).isdisjoint(before)
    assert not [p for p in before if running(p)], "the overdue worker is still running"
    assert list(settings.uploads_dir.iterdir()) == []  # the media is not kept
    stored = JobStore(settings.db_path).get(job["id"])
    assert stored is not None and stored.crashes == 0 and stored.attempts == 1  # not retried


def test_a_scan_over_the_memory_cap_is_stopped_and_its_worker_replaced(
    tmp_path: Path, face_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKESCOPE_TEST_ALLOCATE_MB", "700")
    job, before, after, settings = _stopped_job(
        tmp_path, face_image, monkeypatch, max_memory_mb=400
    )
    assert re.fullmatch(
        r"The scan needed more memory than this server allows \(\d+ MB, limit 400 MB\) "
        r"and was stopped\.",
        job["error"],
    ), job["error"]
    assert len(after) == 1 and set(after).isdisjoint(before)
    assert list(settings.uploads_dir.iterdir()) == []
    stored = JobStore(settings.db_path).get(job["id"])
    assert stored is not None and stored.crashes == 0


# -- permissions ------------------------------------------------------------------------------
def test_the_data_folder_is_private(servers: Servers, face_image: Path) -> None:
    data = servers.data_dir
    servers.env["FAKESCOPE_WORKERS"] = "0"  # the upload stays in uploads/ to be looked at
    port = free_port()
    server, log = servers.start(port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        wait_for("the server", lambda: client.get("/api/health").is_success, 120, log)
        r = client.post("/api/scans", files={"file": ("face.jpg", face_image.read_bytes())})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        (upload,) = (data / "uploads").iterdir()
        for folder in (data, data / "uploads", data / "jobs"):
            assert mode(folder) == 0o700, folder
        names = ["fakescope.db", "fakescope.db-wal", "fakescope.db-shm", "server.lock"]
        for file in [upload, *(data / name for name in names)]:
            assert mode(file) == 0o600, file
    server.send_signal(signal.SIGINT)
    assert server.wait(60) == 0

    del servers.env["FAKESCOPE_WORKERS"]  # now scan it: the worker's outputs are private too
    port = free_port()
    server, log = servers.start(port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = client.get(f"/api/scans/{job_id}").json()
            return job if job["status"] in ("done", "failed") else None

        job = wait_for("the scan", finished, 180, log)
        assert job["status"] == "done" and job["result"]["faces"], job
        outputs = data / "jobs" / job_id
        assert mode(outputs) == 0o700
        files = list(outputs.iterdir())
        assert files and all(mode(f) == 0o600 for f in files), [(f, mode(f)) for f in files]
        servers.spawned.extend(children(server.pid))


_OLD_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0,
    filename TEXT NOT NULL, upload TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, worker TEXT, claim TEXT,
    error TEXT, result TEXT, provenance TEXT, label TEXT, fake_probability REAL
);
"""


def test_an_older_data_folder_is_tightened_and_migrated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    for folder in (data, data / "uploads", data / "jobs"):
        folder.mkdir()
        folder.chmod(0o755)
    db = sqlite3.connect(data / "fakescope.db")
    db.executescript(_OLD_SCHEMA)
    db.execute(
        "INSERT INTO jobs (id, status, filename, upload, created_at, updated_at, attempts) "
        "VALUES (?, 'running', 'a.jpg', ?, ?, ?, 3)",
        ("a" * 32, "a" * 32 + ".jpg", time.time(), time.time()),
    )
    db.commit()
    db.close()
    (data / "fakescope.db").chmod(0o644)
    settings = ServerSettings(data_dir=data)
    with TestClient(create_app(settings, start_workers=False)) as client:
        job = client.get(f"/api/scans/{'a' * 32}").json()
    assert job["status"] == "queued"  # interrupted by a server restart: not a crash
    assert mode(data / "uploads") == mode(data / "jobs") == 0o700
    assert mode(data / "fakescope.db") == 0o600
    assert mode(data) == 0o755  # the user's folder: left alone, with a warning
    assert "open to other users" in caplog.text
    stored = JobStore(settings.db_path).get("a" * 32)
    assert stored is not None and stored.crashes == 0 and stored.attempts == 3


def test_limits_come_from_the_environment() -> None:
    from fakescope.errors import ConfigError

    env = {
        "FAKESCOPE_HEADER_TIMEOUT_S": "2.5",
        "FAKESCOPE_BODY_TIMEOUT_S": "30",
        "FAKESCOPE_BODY_IDLE_TIMEOUT_S": "5",
        "FAKESCOPE_MAX_UPLOADS_PER_CLIENT": "0",
    }
    s = ServerSettings.from_env(env)
    assert (s.header_timeout_s, s.body_timeout_s, s.body_idle_timeout_s) == (2.5, 30.0, 5.0)
    assert s.max_uploads_per_client == 0  # no cap
    limits = ServerSettings.from_env(
        {"FAKESCOPE_SCAN_TIMEOUT_S": "90", "FAKESCOPE_MAX_MEMORY_MB": "1.5"}
    )
    assert limits.scan_timeout_s == 90.0 and limits.max_memory_mb == 1.5
    assert limits.max_memory_bytes == round(1.5 * 2**20)
    assert ServerSettings.from_env({"FAKESCOPE_MAX_MEMORY_MB": "0"}).max_memory_mb is None
    assert ServerSettings.from_env({}, scan_timeout_s=5.0).scan_timeout_s == 5.0  # flags win
    defaults = ServerSettings()
    assert defaults.header_timeout_s == 10 and defaults.max_uploads_per_client == 4
    assert defaults.scan_timeout_s == 600 and defaults.max_memory_mb is None
    with pytest.raises(ConfigError, match="scan_timeout_s"):
        ServerSettings(scan_timeout_s=0)
    with pytest.raises(ConfigError, match="max_memory_mb"):
        ServerSettings(max_memory_mb=-5)
    with pytest.raises(ConfigError, match="header_timeout_s"):
        ServerSettings(header_timeout_s=0)
    with pytest.raises(ConfigError, match="FAKESCOPE_BODY_TIMEOUT_S"):
        ServerSettings.from_env({"FAKESCOPE_BODY_TIMEOUT_S": "soon"})

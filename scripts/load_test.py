#!/usr/bin/env python3
"""Load test for ``fakescope serve``: N concurrent uploads, then poll every scan to the end.

By default it starts its own server (temporary data dir, upload rate limit off) and stops it
afterwards; ``--url`` targets a running server instead. Prints a table and exits 1 unless
every upload was accepted and finished with a result.

    python scripts/load_test.py                  # 50 uploads of examples/astronaut.mp4
    python scripts/load_test.py -n 200 --workers 2
    python scripts/load_test.py --url http://127.0.0.1:8000 --token "$FAKESCOPE_API_TOKEN"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = REPO / "examples" / "astronaut.mp4"


@dataclass
class Outcome:
    """What happened to one upload."""

    upload_s: float | None = None
    """Seconds from starting the POST to its response (only when accepted)."""
    result_s: float | None = None
    """Seconds from starting the POST to seeing the scan done or failed."""
    http_status: int | None = None
    scan_status: str | None = None
    verdict_status: str | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.http_status == 202

    @property
    def has_result(self) -> bool:
        return self.scan_status == "done" and self.verdict_status is not None


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100]; NaN for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            r = httpx.get(f"{base}/api/health", timeout=2.0)
            if r.status_code == 200:
                return dict(r.json())
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{base}/api/health did not answer within {timeout_s:.0f} s")
        time.sleep(0.3)


@contextlib.contextmanager
def own_server(args: argparse.Namespace) -> Iterator[tuple[str, dict]]:
    """Start ``python -m fakescope serve`` on a free port with a temporary data dir."""
    with tempfile.TemporaryDirectory(prefix="fakescope-load-") as tmp:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k != "FAKESCOPE_API_TOKEN"}
        env["FAKESCOPE_RATE_LIMIT_PER_MINUTE"] = "0"  # 0 = no upload rate limit
        env["FAKESCOPE_MAX_UPLOADS_PER_CLIENT"] = "0"  # every load-test client is 127.0.0.1
        cmd = [sys.executable, "-m", "fakescope", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--data-dir", str(Path(tmp) / "data")]
        cmd += ["--workers", str(args.workers)]
        if args.detector:
            cmd += ["--detector", args.detector]
        log_path = Path(tmp) / "server.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                health = _wait_healthy(base, proc, args.start_timeout)
            except SystemExit:
                sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
                raise
            yield base, health
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


async def one_scan(
    client: httpx.AsyncClient,
    name: str,
    data: bytes,
    poll_s: float,
    deadline: float,
) -> Outcome:
    out = Outcome()
    t0 = time.perf_counter()
    try:
        r = await client.post("/api/scans", files={"file": (name, data, "video/mp4")})
    except httpx.HTTPError as exc:
        out.error = f"upload: {type(exc).__name__}: {exc}"
        return out
    out.http_status = r.status_code
    if r.status_code != 202:
        with contextlib.suppress(ValueError):
            out.error = f"upload HTTP {r.status_code}: {r.json().get('detail')}"
        return out
    out.upload_s = time.perf_counter() - t0
    scan_url = f"/api/scans/{r.json()['id']}"
    while time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
        try:
            r = await client.get(scan_url)
        except httpx.HTTPError:
            continue  # a transient error while polling is not the scan's fault
        if r.status_code != 200:
            continue
        scan = r.json()
        if scan.get("status") in ("done", "failed"):
            out.result_s = time.perf_counter() - t0
            out.scan_status = scan["status"]
            result = scan.get("result")
            if isinstance(result, dict):
                out.verdict_status = str(result.get("status"))
            out.error = scan.get("error")
            return out
    out.error = "timed out while polling"
    return out


async def run(base: str, args: argparse.Namespace) -> tuple[list[Outcome], float]:
    data = args.file.read_bytes()
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    limits = httpx.Limits(max_connections=args.n + 8, max_keepalive_connections=args.n + 8)
    timeout = httpx.Timeout(120.0, connect=30.0)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=timeout
    ) as client:
        deadline = time.monotonic() + args.timeout
        t0 = time.perf_counter()
        outcomes = await asyncio.gather(
            *(
                one_scan(client, f"load-{i:04d}-{args.file.name}", data, args.poll, deadline)
                for i in range(args.n)
            )
        )
        wall = time.perf_counter() - t0
    return list(outcomes), wall


def report(outcomes: list[Outcome], wall: float, n: int, workers: str, health: dict) -> bool:
    accepted = [o for o in outcomes if o.accepted]
    with_result = [o for o in outcomes if o.has_result]
    failed = [o for o in accepted if o.scan_status == "failed"]
    unfinished = [o for o in accepted if o.scan_status is None]
    uploads = [o.upload_s for o in accepted if o.upload_s is not None]
    results = [o.result_s for o in outcomes if o.result_s is not None]

    def sec(x: float) -> str:
        return "n/a" if math.isnan(x) else f"{x:.2f} s"

    rows = [
        ("server", f"fakescope {health.get('version', '?')}, detector {health.get('detector')}"),
        ("workers", workers),
        ("uploads sent", str(n)),
        ("uploads accepted (202)", str(len(accepted))),
        ("done with result", str(len(with_result))),
        ("failed", str(len(failed))),
        ("unfinished / rejected", f"{len(unfinished)} / {n - len(accepted)}"),
        ("upload latency p50", sec(percentile(uploads, 50))),
        ("upload latency p95", sec(percentile(uploads, 95))),
        ("time to result p50", sec(percentile(results, 50))),
        ("time to result p95", sec(percentile(results, 95))),
        ("time to result max", sec(max(results) if results else math.nan)),
        ("total wall time", sec(wall)),
        ("throughput", f"{len(with_result) / wall * 60:.1f} scans/min" if wall > 0 else "n/a"),
    ]
    verdicts = Counter(o.verdict_status for o in with_result)
    if verdicts:
        rows.append(("verdict statuses", ", ".join(f"{k}: {v}" for k, v in verdicts.items())))
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    errors = Counter(o.error for o in outcomes if o.error)
    for err, count in errors.most_common(5):
        print(f"error x{count}: {err}")
    return len(with_result) == n


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("-n", "--uploads", dest="n", type=int, default=50, help="uploads (50)")
    p.add_argument("--workers", type=int, default=1, help="scan workers of the own server (1)")
    p.add_argument("--url", help="target this running server instead of starting one")
    p.add_argument(
        "--token",
        default=os.environ.get("FAKESCOPE_API_TOKEN") or None,
        help="API token for --url (default: $FAKESCOPE_API_TOKEN)",
    )
    p.add_argument("--file", type=Path, default=DEFAULT_FILE, help="the file to upload")
    p.add_argument("--detector", help="--detector for the own server")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between polls (0.5)")
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="give up on unfinished scans after this many seconds (3600)",
    )
    p.add_argument(
        "--start-timeout",
        type=float,
        default=240.0,
        help="seconds to wait for the own server's /api/health (240)",
    )
    args = p.parse_args(argv)
    if args.n < 1:
        p.error("-n must be >= 1")
    if not args.file.is_file():
        p.error(f"{args.file} is not a file")

    if args.url:
        base = args.url.rstrip("/")
        health = _wait_healthy(base, None, args.start_timeout)
        print(f"target {base}, {args.n} uploads of {args.file.name}", flush=True)
        outcomes, wall = asyncio.run(run(base, args))
        ok = report(outcomes, wall, args.n, str(health.get("workers", "?")), health)
    else:
        args.token = None
        with own_server(args) as (base, health):
            print(f"own server {base}, {args.n} uploads of {args.file.name}", flush=True)
            outcomes, wall = asyncio.run(run(base, args))
            ok = report(outcomes, wall, args.n, str(args.workers), health)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

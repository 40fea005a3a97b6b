"""End to end: ``fakescope serve`` in a subprocess, the web page in headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Without
them the tests skip, except under ``CI=true`` (CI installs them), where they fail.
Screenshots land in ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from conftest import in_ci

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_SELENIUM = False

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.mp4"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

SERVER_START_S = 240.0
VERDICT_S = 240.0
VERDICT_RE = re.compile(r"^(Likely manipulated|Likely authentic|Uncertain) — \d{1,3}%$")
SYNTH_RE = re.compile(r"(Likely generated|No sign of generation|Uncertain) — \d{1,3}%")
TOKEN = "e2e-secret-token"


def _missing_browser() -> str | None:
    if not HAVE_SELENIUM:
        return "selenium is not installed"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


def _require_browser() -> None:
    reason = _missing_browser()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true but the browser test cannot run: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def _serve(data_dir: Path, token: str | None = None, extra: Sequence[str] = ()) -> Iterator[str]:
    """Run ``python -m fakescope serve`` until the block ends; yields its base URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKESCOPE_")}
    env["FAKESCOPE_RATE_LIMIT_PER_MINUTE"] = "0"
    if token is not None:
        env["FAKESCOPE_API_TOKEN"] = token
    log = data_dir.parent / f"{data_dir.name}-server.log"
    cmd = [sys.executable, "-m", "fakescope", "serve", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--data-dir", str(data_dir), "--workers", "1", *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                if httpx.get(f"{base}/api/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not healthy after {SERVER_START_S:.0f} s:\n{_tail(log)}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()


def _wait(driver: Any, seconds: float, what: str, cond: Callable[[Any], Any]) -> Any:
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.25).until(cond)
    except WebDriverException as exc:
        messages = driver.find_element(By.ID, "messages").text
        verdict = driver.find_element(By.ID, "verdict").text
        raise AssertionError(
            f"timed out after {seconds:.0f} s waiting for {what}; "
            f"#messages={messages!r} #verdict={verdict!r} url={driver.current_url}"
        ) from exc


def _severe_console_errors(driver: Any) -> list[str]:
    try:
        entries = driver.get_log("browser")
    except Exception:  # not every driver exposes the log
        return []
    return [str(e.get("message")) for e in entries if e.get("level") == "SEVERE"]


def _screenshot(driver: Any, name: str, width: int, height: int, mobile: bool) -> Path:
    """A full-page screenshot at a ``width`` x ``height`` viewport."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    time.sleep(0.5)  # let layout and the images settle
    full = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {**metrics, "height": max(height, full)}
    )
    time.sleep(0.3)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), path
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return path


def _upload_example(driver: Any) -> tuple[str, str]:
    """Pick examples/astronaut.mp4 in the file input; wait for the verdict. Returns the scan
    id (from the URL hash) and the verdict text."""
    driver.find_element(By.ID, "file-input").send_keys(str(EXAMPLE.resolve()))
    _wait(driver, 30, "the scan URL", lambda d: "#/scans/" in d.current_url)
    scan_id = str(driver.current_url.rsplit("/", 1)[-1])
    assert re.fullmatch(r"[0-9a-f]{32}", scan_id), driver.current_url
    match = _wait(
        driver,
        VERDICT_S,
        "a verdict",
        lambda d: VERDICT_RE.match(d.find_element(By.ID, "verdict").text.strip()),
    )
    return scan_id, str(match.group(0))


def _image_loaded(driver: Any, selector: str) -> bool:
    return bool(
        driver.execute_script(
            "var i = document.querySelector(arguments[0]);"
            "return !!i && i.complete && i.naturalWidth > 0;",
            selector,
        )
    )


def test_upload_scan_and_result_page(browser: Any, tmp_path: Path) -> None:
    driver = browser
    with _serve(tmp_path / "data") as base:
        driver.get(base + "/")
        assert "fakescope" in driver.title

        scan_id, verdict = _upload_example(driver)
        assert driver.find_element(By.ID, "messages").text.strip() == ""

        # one card per face track, each with a timeline drawn from its frames
        cards = driver.find_elements(By.CSS_SELECTOR, ".face-card")
        assert len(cards) >= 1
        card = cards[0]
        assert card.find_elements(By.CSS_SELECTOR, "svg.timeline polyline, svg.timeline path")
        assert len(card.find_elements(By.CSS_SELECTOR, "svg.timeline circle")) >= 2
        axis = " ".join(t.text for t in card.find_elements(By.CSS_SELECTOR, "svg.timeline text"))
        assert "0 s" in axis and "50%" in axis, axis
        assert card.find_elements(By.CSS_SELECTOR, ".heatmap") or "No heatmap" in card.text
        _wait(
            driver,
            30,
            "the face thumbnail to load",
            lambda d: _image_loaded(d, ".face-card img.thumbnail"),
        )
        heatmaps_ok = driver.execute_script(
            "return Array.from(document.querySelectorAll('img.heatmap'))"
            ".every(function (i) { return i.complete && i.naturalWidth > 0; });"
        )
        assert heatmaps_ok

        # model, media and timings beside the verdict; provenance in its own panel
        meta = driver.find_element(By.ID, "result-meta").text
        from fakescope.models import DEFAULT_DETECTOR

        assert "Model" in meta and DEFAULT_DETECTOR in meta, meta
        assert "Video" in meta and "1280" in meta, meta
        assert re.search(r"Decision\s+threshold 0\.\d\d, uncertain within ±0\.10 \(", meta), meta
        provenance = driver.find_element(By.ID, "provenance").text
        assert "No content credentials" in provenance, provenance
        # the whole-image synthesis verdict in its own panel, with its own model
        from fakescope.synthesis import DEFAULT_SYNTHESIS_DETECTOR

        synthesis = driver.find_element(By.ID, "synthesis").text
        assert SYNTH_RE.search(synthesis) and DEFAULT_SYNTHESIS_DETECTOR in synthesis, synthesis

        # the recent list links to this scan
        _wait(
            driver,
            15,
            "the scan in the recent list",
            lambda d: d.find_elements(By.CSS_SELECTOR, f'#recent a[href="#/scans/{scan_id}"]'),
        )

        assert _severe_console_errors(driver) == []
        _screenshot(driver, "e2e_result.png", 1280, 1000, mobile=False)
        _screenshot(driver, "e2e_phone.png", 390, 844, mobile=True)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"the page scrolls sideways at 390 px ({overflow} px)"

        # the result is linkable: a reload of the hash URL shows it again
        driver.refresh()
        _wait(
            driver,
            30,
            "the verdict after a reload",
            lambda d: d.find_element(By.ID, "verdict").text.strip() == verdict,
        )

        # delete from the recent list: gone from the list and from the server
        item = driver.find_element(By.CSS_SELECTOR, f'#recent li[data-scan-id="{scan_id}"]')
        item.find_element(By.CSS_SELECTOR, "button.delete").click()
        _wait(
            driver,
            15,
            "the scan to leave the recent list",
            lambda d: not d.find_elements(By.CSS_SELECTOR, f'#recent li[data-scan-id="{scan_id}"]'),
        )
        assert not driver.find_element(By.ID, "result").is_displayed()
        assert httpx.get(f"{base}/api/scans/{scan_id}", timeout=10).status_code == 404


def test_token_prompt_errors_and_abstention(browser: Any, tmp_path: Path) -> None:
    driver = browser
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a video\n" * 50)
    with _serve(tmp_path / "data", token=TOKEN) as base:
        driver.get(base + "/")
        # the recent-scans request gets 401: the token field appears
        _wait(
            driver,
            15,
            "the token form",
            lambda d: d.find_element(By.ID, "token-form").is_displayed(),
        )

        # an upload without the token is refused, in words, in the live region
        driver.find_element(By.ID, "file-input").send_keys(str(bad))
        message = _wait(
            driver, 15, "the 401 message", lambda d: d.find_element(By.ID, "messages").text
        )
        assert "access token" in message.lower(), message
        live = driver.find_element(By.ID, "messages").get_attribute("aria-live")
        assert live in ("assertive", "polite")

        field = driver.find_element(By.ID, "token-input")
        field.clear()
        field.send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
        _wait(
            driver,
            15,
            "the token form to close",
            lambda d: not d.find_element(By.ID, "token-form").is_displayed(),
        )
        assert driver.execute_script("return localStorage.getItem('fakescope.token')") == TOKEN
        _wait(
            driver,
            15,
            "the empty recent list",
            lambda d: d.find_element(By.ID, "recent-empty").is_displayed(),
        )

        # with the token, a text file is refused for its type
        driver.find_element(By.ID, "file-input").send_keys(str(bad))
        _wait(
            driver,
            15,
            "the 415 message",
            lambda d: "not supported" in d.find_element(By.ID, "messages").text,
        )
        assert driver.find_element(By.ID, "result").is_displayed() is False

        # a real upload works with the token; its images load through ?token=
        _upload_example(driver)
        _wait(driver, 30, "the thumbnail to load", lambda d: _image_loaded(d, ".thumbnail"))
        src = driver.find_element(By.CSS_SELECTOR, ".thumbnail").get_attribute("src")
        assert f"token={TOKEN}" in src, src

        # a photo without a face: no verdict, and the page says why
        noface = tmp_path / "landscape.jpg"
        rng = np.random.default_rng(0)
        noise = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 8)
        assert cv2.imwrite(str(noface), noise)
        driver.find_element(By.ID, "file-input").send_keys(str(noface))
        _wait(
            driver,
            VERDICT_S,
            "the abstention",
            lambda d: d.find_element(By.ID, "verdict").text.strip() == "No verdict",
        )
        assert "No face" in driver.find_element(By.ID, "verdict-explain").text
        assert not driver.find_elements(By.CSS_SELECTOR, ".face-card")
        assert "Photo" in driver.find_element(By.ID, "result-meta").text
        # ... but the whole image still gets its synthesis verdict
        assert SYNTH_RE.search(driver.find_element(By.ID, "synthesis").text)


def test_heatmap_of_a_detector_with_a_mask_head(browser: Any, tmp_path: Path) -> None:
    driver = browser
    with _serve(tmp_path / "data", extra=["--detector", "effnet-lite0-sbi"]) as base:
        driver.get(base + "/")
        _upload_example(driver)
        card = driver.find_elements(By.CSS_SELECTOR, ".face-card")[0]
        assert "sbi" in driver.find_element(By.ID, "result-meta").text
        assert card.find_elements(By.CSS_SELECTOR, "img.heatmap")
        assert "No heatmap" not in card.text
        _wait(driver, 30, "the heatmap to load", lambda d: _image_loaded(d, ".face-card .heatmap"))
        _wait(
            driver, 30, "the thumbnail to load", lambda d: _image_loaded(d, ".face-card .thumbnail")
        )
        assert _severe_console_errors(driver) == []
        _screenshot(driver, "e2e_heatmap.png", 1280, 1000, mobile=False)


def test_api_docs_render_offline(browser: Any, tmp_path: Path) -> None:
    """/docs is Swagger UI from assets the app serves itself (no CDN on an air-gapped host)."""
    driver = browser
    with _serve(tmp_path / "data") as base:
        driver.get(base + "/docs")
        _wait(
            driver,
            60,
            "Swagger UI to list the scan endpoints",
            lambda d: "/api/scans" in d.find_element(By.TAG_NAME, "body").text,
        )
        assert "fakescope" in driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info").text
        assert _severe_console_errors(driver) == []
        _screenshot(driver, "e2e_docs.png", 1280, 900, mobile=False)

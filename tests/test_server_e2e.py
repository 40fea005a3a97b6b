"""End to end: ``fakescope serve`` in a subprocess, the web page in headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Without
them the tests skip, except under ``CI=true`` (CI installs them), where they fail; so does the
test that needs ../shared/data (a generated portrait). Screenshots land in
``test-artifacts/`` at the repository root.
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
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_SELENIUM = False

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.mp4"
SHARED_DATA = REPO.parent / "shared" / "data"
GENERATED_PORTRAIT = SHARED_DATA / "stylegan2_ffhq" / "fake" / "tpdne_fake_1.jpg"
# a camera video (FF++ c40 dev set, real): the default reads its face at 9% (tests/test_quality)
CAMERA_VIDEO = SHARED_DATA / "ffpp_c40_videos" / "real" / "actors_13__talking_against_wall.mp4"
"""A StyleGAN2 face (thispersondoesnotexist.com): the default models call it generated (the
whole-image detector: 100%), while its face alone is too close to call."""
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

SERVER_START_S = 240.0
VERDICT_S = 240.0
VERDICT_RE = re.compile(
    r"^(Manipulated|Generated|Authentic|Uncertain)\n\d{1,3}% likely not authentic$|^No verdict$"
)
"""The headline: the overall verdict, and the probability that the media is not authentic."""
SYNTH_RE = re.compile(
    r"(Yes, likely|No sign of it|Too close to call)\n\d{1,3}% probability the whole image was "
    r"generated"
)
TONES = {
    "Manipulated": "tone-fake",
    "Generated": "tone-fake",
    "Authentic": "tone-real",
    "Uncertain": "tone-neutral",
    "No verdict": "tone-neutral",
}
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


def _wait(
    driver: Any,
    seconds: float,
    what: str,
    cond: Callable[[Any], Any],
    ignored: tuple[Any, ...] = (),
) -> Any:
    try:
        return WebDriverWait(
            driver, seconds, poll_frequency=0.25, ignored_exceptions=ignored or None
        ).until(cond)
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


def _upload_example(driver: Any, path: Path = EXAMPLE) -> tuple[str, str]:
    """Pick ``path`` (default examples/astronaut.mp4) in the file input; wait for the
    verdict. Returns the scan id (from the URL hash) and the verdict text."""
    before = driver.current_url
    driver.find_element(By.ID, "file-input").send_keys(str(path.resolve()))
    _wait(
        driver,
        30,
        "the scan URL",
        lambda d: "#/scans/" in d.current_url and d.current_url != before,
    )
    scan_id = str(driver.current_url.rsplit("/", 1)[-1])
    assert re.fullmatch(r"[0-9a-f]{32}", scan_id), driver.current_url
    match = _wait(
        driver,
        VERDICT_S,
        "a verdict",
        lambda d: VERDICT_RE.match(d.find_element(By.ID, "verdict").text.strip()),
    )
    return scan_id, str(match.group(0))


def _headline(driver: Any) -> tuple[str, str]:
    """The overall verdict's label (first line of the headline) and its card's classes."""
    text = driver.find_element(By.ID, "verdict").text.strip()
    classes = str(driver.find_element(By.ID, "verdict-card").get_attribute("class"))
    return text.split("\n", 1)[0], classes


def _technical(driver: Any) -> str:
    """The "Technical details" text (opened first: it is folded by default)."""
    details = driver.find_element(By.ID, "technical")
    assert details.get_attribute("open") is None, "technical details are open by default"
    details.find_element(By.TAG_NAME, "summary").click()
    return str(driver.find_element(By.ID, "result-meta").text)


def _click(driver: Any, selector: str) -> None:
    """Click ``selector`` once it is there, looking it up again if the page re-rendered it
    between the lookup and the click (the recent list is redrawn when its fetch returns)."""
    _wait(
        driver,
        10,
        f"a click on {selector}",
        lambda d: d.find_element(By.CSS_SELECTOR, selector).click() is None,
        (NoSuchElementException, StaleElementReferenceException),
    )


def _delete_from_recent(driver: Any, scan_id: str) -> None:
    """Delete a scan with its button in the recent list: the page asks first; saying no
    keeps it, saying yes removes it."""
    item = f'#recent li[data-scan-id="{scan_id}"]'
    _click(driver, f"{item} button.delete")
    alert = _wait(driver, 10, "the confirmation", lambda d: d.switch_to.alert)
    assert "Delete the scan" in alert.text
    alert.dismiss()
    time.sleep(0.5)
    assert driver.find_elements(By.CSS_SELECTOR, item), "deleted without confirmation"
    _click(driver, f"{item} button.delete")
    _wait(driver, 10, "the confirmation", lambda d: d.switch_to.alert).accept()
    _wait(
        driver,
        15,
        "the scan to leave the recent list",
        lambda d: not d.find_elements(By.CSS_SELECTOR, item),
    )


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
        label, classes = _headline(driver)
        assert TONES[label] in classes.split(), classes

        # one card per face track, each with a timeline drawn from its frames
        cards = driver.find_elements(By.CSS_SELECTOR, ".face-card")
        assert len(cards) >= 1
        card = cards[0]
        assert card.find_elements(By.CSS_SELECTOR, "svg.timeline polyline, svg.timeline path")
        assert len(card.find_elements(By.CSS_SELECTOR, "svg.timeline circle")) >= 2
        axis = " ".join(t.text for t in card.find_elements(By.CSS_SELECTOR, "svg.timeline text"))
        assert "0 s" in axis and "50%" in axis, axis
        if card.find_elements(By.CSS_SELECTOR, ".heatmap"):
            assert card.find_elements(By.CSS_SELECTOR, ".heat-legend")
        else:
            assert "no localized region" in card.text
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

        # model, media, timings and thresholds folded under "Technical details"
        meta = _technical(driver)
        from fakescope.models import DEFAULT_DETECTOR

        assert "Model" in meta and DEFAULT_DETECTOR in meta, meta
        assert "Video" in meta and "1280" in meta, meta
        assert re.search(r"Decision\s+threshold 0\.\d\d, uncertain within ±0\.10 \(", meta), meta
        assert "sha256" in meta and "Analysis time" in meta and "How faces combine" in meta
        provenance = driver.find_element(By.ID, "provenance").text
        assert "No content credentials" in provenance, provenance
        # the whole-image synthesis verdict in its own panel, with its own model
        from fakescope.synthesis import DEFAULT_SYNTHESIS_DETECTOR

        synthesis = driver.find_element(By.ID, "synthesis").text
        assert SYNTH_RE.search(synthesis), synthesis
        assert DEFAULT_SYNTHESIS_DETECTOR in driver.find_element(By.ID, "synthesis-meta").text

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

        # delete from the recent list (after a confirmation): gone from the list and the server
        _delete_from_recent(driver, scan_id)
        assert not driver.find_element(By.ID, "result").is_displayed()
        assert httpx.get(f"{base}/api/scans/{scan_id}", timeout=10).status_code == 404


def test_headline_is_the_overall_verdict(browser: Any, tmp_path: Path) -> None:
    """A generated portrait reads "Generated" in red, a real video "Authentic" in green (not
    the face question's answer); each percentage is the probability of fake, in words; a
    refused upload takes the previous verdict off the page."""
    for needed in (GENERATED_PORTRAIT, CAMERA_VIDEO):
        if not needed.is_file():
            pytest.skip(f"needs ../shared/data ({needed} is missing)")
    driver = browser
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a photo\n" * 50)
    with _serve(tmp_path / "data") as base:
        driver.get(base + "/")

        portrait_id, verdict = _upload_example(driver, GENERATED_PORTRAIT)
        label, classes = _headline(driver)
        assert label == "Generated", verdict
        assert {"verdict-generated", "tone-fake"} <= set(classes.split()), classes
        assert re.fullmatch(r"Generated\n\d{1,3}% likely not authentic", verdict), verdict
        # the two questions beneath, each with its own probability of fake
        synthesis = driver.find_element(By.ID, "synthesis")
        assert "tone-fake" in str(synthesis.get_attribute("class")).split()
        assert SYNTH_RE.search(synthesis.text) and "Yes, likely" in synthesis.text
        face_q = driver.find_element(By.ID, "face-question").text
        assert "Was a face swapped or re-enacted?" in face_q
        assert re.search(r"\d{1,3}% probability a face was manipulated", face_q), face_q
        reasons = driver.find_element(By.ID, "verdict-reasons").text
        assert "Generated" in reasons, reasons
        # a photo's face: its heatmap with a legend, or the sentence that nothing stood out
        card = driver.find_elements(By.CSS_SELECTOR, ".face-card")[0]
        if card.find_elements(By.CSS_SELECTOR, "img.heatmap"):
            legend = card.find_element(By.CSS_SELECTOR, ".heat-legend").text
            assert "strongest influence" in legend
            _wait(driver, 30, "the heatmap", lambda d: _image_loaded(d, ".face-card .heatmap"))
        else:
            assert "no localized region" in card.text
        _screenshot(driver, "e2e_generated.png", 1280, 1000, mobile=False)

        video_id, verdict = _upload_example(driver, EXAMPLE)
        label, classes = _headline(driver)
        assert label == "Authentic", verdict
        assert {"verdict-authentic", "tone-real"} <= set(classes.split()), classes
        # the face's number drawn on its frames' timeline, on the same scale
        card = driver.find_elements(By.CSS_SELECTOR, ".face-card")[0]
        assert card.find_elements(By.CSS_SELECTOR, "svg.timeline line.tl-face")
        texts = [t.text for t in card.find_elements(By.CSS_SELECTOR, "svg.timeline text")]
        assert any(re.fullmatch(r"face \d{1,3}%", t) for t in texts), texts
        _screenshot(driver, "e2e_authentic.png", 1280, 1000, mobile=False)

        # a camera video, not one made from a still: authentic too
        camera_id, verdict = _upload_example(driver, CAMERA_VIDEO)
        label, classes = _headline(driver)
        assert label == "Authentic", verdict
        assert re.fullmatch(r"Authentic\n\d{1,3}% likely not authentic", verdict), verdict

        # the recent list carries the overall verdicts, not the face question's labels
        def badge(scan_id: str) -> Any:
            return driver.find_element(
                By.CSS_SELECTOR, f'#recent li[data-scan-id="{scan_id}"] .badge'
            )

        _wait(
            driver,
            15,
            "the three scans listed",
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recent li")) == 3,
        )
        assert badge(portrait_id).get_attribute("data-verdict") == "generated"
        assert "badge-fake" in str(badge(portrait_id).get_attribute("class"))
        assert re.fullmatch(r"generated · \d{1,3}% likely not authentic", badge(portrait_id).text)
        assert badge(video_id).get_attribute("data-verdict") == "authentic"
        assert badge(camera_id).get_attribute("data-verdict") == "authentic"
        assert "badge-real" in str(badge(video_id).get_attribute("class"))

        assert _severe_console_errors(driver) == []

        # a refused upload clears the verdict on screen: it must not pass for the new file's
        driver.find_element(By.ID, "file-input").send_keys(str(bad))
        _wait(
            driver,
            15,
            "the 415 message",
            lambda d: "not supported" in d.find_element(By.ID, "messages").text,
        )
        assert not driver.find_element(By.ID, "result").is_displayed()
        assert driver.find_element(By.ID, "verdict").text == ""
        assert "#/scans/" not in driver.current_url


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
            "the face question to abstain",
            lambda d: "Not answered" in d.find_element(By.ID, "face-question").text,
        )
        assert "No face" in driver.find_element(By.ID, "face-question").text
        assert not driver.find_elements(By.CSS_SELECTOR, ".face-card")
        # ... the whole image still gets its synthesis verdict, so the overall verdict can
        # never be authentic (one question was not answered)
        assert SYNTH_RE.search(driver.find_element(By.ID, "synthesis").text)
        label, classes = _headline(driver)
        assert label in ("Uncertain", "Generated") and TONES[label] in classes.split()
        assert "Photo" in _technical(driver)
        # the recent list tells the abstain apart from an uncertain score
        _wait(
            driver,
            15,
            "the abstain in the recent list",
            lambda d: "no face" in d.find_element(By.CSS_SELECTOR, "#recent .badge").text,
        )


def test_heatmap_of_a_detector_with_a_mask_head(browser: Any, tmp_path: Path) -> None:
    driver = browser
    with _serve(tmp_path / "data", extra=["--detector", "effnet-lite0-sbi"]) as base:
        driver.get(base + "/")
        _upload_example(driver)
        card = driver.find_elements(By.CSS_SELECTOR, ".face-card")[0]
        assert "sbi" in _technical(driver)
        assert card.find_elements(By.CSS_SELECTOR, "img.heatmap")
        assert "no localized region to show" not in card.text
        assert "strongest influence" in card.find_element(By.CSS_SELECTOR, ".heat-legend").text
        _wait(driver, 30, "the heatmap to load", lambda d: _image_loaded(d, ".face-card .heatmap"))
        _wait(
            driver, 30, "the thumbnail to load", lambda d: _image_loaded(d, ".face-card .thumbnail")
        )
        assert _severe_console_errors(driver) == []
        _screenshot(driver, "e2e_heatmap.png", 1280, 1000, mobile=False)


def test_api_docs_render_offline(browser: Any, tmp_path: Path) -> None:
    """/docs is Swagger UI from assets the app serves itself (no CDN on an air-gapped host);
    its Authorize button takes the API token, and a request tried from the docs sends it."""
    driver = browser
    with _serve(tmp_path / "data", token=TOKEN) as base:
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

        driver.find_element(By.CSS_SELECTOR, ".swagger-ui .auth-wrapper .authorize").click()
        field = _wait(
            driver,
            15,
            "the bearer token field",
            lambda d: d.find_element(By.CSS_SELECTOR, ".modal-ux .auth-container input"),
        )
        assert "bearer" in driver.find_element(By.CSS_SELECTOR, ".modal-ux").text.lower()
        field.send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper .authorize").click()
        driver.find_element(By.CSS_SELECTOR, ".modal-ux .btn-done").click()

        (listing,) = [
            op
            for op in driver.find_elements(By.CSS_SELECTOR, ".opblock.opblock-get")
            if op.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text.strip()
            == "/api/scans"
        ]
        listing.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        _wait(
            driver,
            15,
            "Try it out",
            lambda d: listing.find_element(By.CSS_SELECTOR, ".try-out__btn"),
        ).click()
        _wait(
            driver, 15, "Execute", lambda d: listing.find_element(By.CSS_SELECTOR, ".execute")
        ).click()
        status = _wait(
            driver,
            30,
            "the response",
            lambda d: listing.find_element(
                By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"
            ).text.strip(),
        )
        assert status == "200", listing.text  # 401 without the token
        curl = listing.find_element(By.CSS_SELECTOR, ".curl-command").text
        assert f"Authorization: Bearer {TOKEN}" in curl, curl

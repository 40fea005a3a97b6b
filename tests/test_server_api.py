"""The HTTP API of ``fakescope serve``: uploads, limits, errors, token, headers, results."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakescope.models import DEFAULT_DETECTOR
from fakescope.server import ServerSettings, create_app
from fakescope.server._uploads import RateLimiter, UploadError, display_name, receive_upload

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.mp4"
HEX = "0123456789abcdef" * 2
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'"
)


def make_settings(tmp_path: Path, **kw: Any) -> ServerSettings:
    kw.setdefault("data_dir", tmp_path / "data")
    return ServerSettings(**kw)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    """An app without workers: jobs are queued, never scanned."""
    with TestClient(create_app(make_settings(tmp_path), start_workers=False)) as client:
        yield client


def uploads(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "data" / "uploads").iterdir())


def upload(client: TestClient, data: bytes, name: str = "clip.mp4", **kw: Any) -> Any:
    return client.post("/api/scans", files={"file": (name, data, "video/mp4")}, **kw)


def wait_done(client: TestClient, url: str, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(url).json()
        if body["status"] in ("done", "failed"):
            return body
        assert 0.0 <= body["progress"] <= 1.0
        time.sleep(0.2)
    raise AssertionError(f"{url} not finished after {timeout} s: {body}")


# -- a real scan, end to end ------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    """An app with one worker process (the shipped default detector)."""
    root = tmp_path_factory.mktemp("live")
    with TestClient(create_app(make_settings(root, workers=1))) as client:
        yield client, root


def test_upload_is_scanned_and_its_result_served(live: tuple[TestClient, Path]) -> None:
    client, root = live
    r = upload(client, EXAMPLE.read_bytes(), name="my clip.mp4")
    assert r.status_code == 202, r.text
    created = r.json()
    job_id = created["id"]
    assert len(job_id) == 32 and set(job_id) <= set("0123456789abcdef")
    assert created == {"id": job_id, "status": "queued", "url": f"/api/scans/{job_id}"}

    body = wait_done(client, created["url"])
    assert body["status"] == "done", body["error"]
    assert body["progress"] == 1.0 and body["error"] is None
    assert body["filename"] == "my clip.mp4"
    assert body["created_at"].endswith("Z") and body["updated_at"] >= body["created_at"]
    assert set(body) == {
        "id",
        "status",
        "progress",
        "filename",
        "created_at",
        "updated_at",
        "error",
        "reference",
        "result",
        "provenance",
    }
    assert body["reference"] is None
    if importlib.util.find_spec("fakescope.provenance") is not None:
        assert body["provenance"]["status"] == "absent"  # no C2PA manifest in the example
    result = body["result"]
    assert result["status"] == "ok" and result["path"] == "my clip.mp4"
    assert 0.0 <= result["fake_probability"] <= 1.0 and result["label"] in {
        "fake",
        "real",
        "uncertain",
    }
    assert result["media"]["kind"] == "video" and result["model"]["name"]
    # the overall verdict leads; nothing was left out on the way
    verdict = result["verdict"]
    assert verdict["label"] in {"manipulated", "generated", "authentic", "uncertain"}
    assert 0.0 <= verdict["probability"] <= 1.0 and verdict["headline"]
    assert verdict["reasons"] and all(isinstance(r, str) for r in verdict["reasons"])
    assert result["notes"] == []
    # the whole-image synthesis verdict rides along (issue 11)
    assert result["synthesis"]["status"] == "ok" and result["synthesis"]["model"]["name"]
    assert 0.0 <= result["synthesis"]["fake_probability"] <= 1.0
    (face,) = result["faces"]
    assert face["frames"]
    # the default detector has a mask head: the heatmap of the most suspicious frame is served
    # named after the upload plus a hash of its path (two inputs never share a name)
    assert re.fullmatch(
        rf"/api/scans/{job_id}/heatmaps/{job_id}-[0-9a-f]{{10}}_track0\.png", face["heatmap"]
    )
    heat = client.get(face["heatmap"])
    assert heat.status_code == 200 and heat.headers["content-type"] == "image/png"
    assert heat.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert face["thumbnail"] == face["heatmap"].replace("heatmaps", "thumbnails")[:-4] + ".jpg"
    thumb = client.get(face["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:3] == b"\xff\xd8\xff"
    assert (root / "data" / "uploads").exists() and not list((root / "data" / "uploads").iterdir())

    listed = client.get("/api/scans").json()["scans"]
    assert listed[0]["id"] == job_id and listed[0]["status"] == "done"
    assert listed[0]["label"] == result["label"]
    assert listed[0]["fake_probability"] == result["fake_probability"]
    assert set(listed[0]) == {
        "id",
        "status",
        "filename",
        "created_at",
        "updated_at",
        "result_status",
        "verdict",
        "label",
        "fake_probability",
        "error",
    }
    # the list carries the overall verdict (not the face question's label) and the status
    assert listed[0]["result_status"] == "ok" and listed[0]["error"] is None
    assert listed[0]["verdict"] == {
        "label": verdict["label"],
        "probability": verdict["probability"],
        "decided_by": verdict["decided_by"],
        "face": verdict["face"],
        "headline": verdict["headline"],
    }

    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["workers"] == 1
    assert health["detector"] == DEFAULT_DETECTOR and health["version"]
    # what runs here: the default itself where int8 is exact, else its float twin
    assert health["detector_runs_as"] == result["model"]["name"]

    assert client.delete(created["url"]).status_code == 204
    assert client.get(created["url"]).status_code == 404
    assert client.get(face["thumbnail"]).status_code == 404
    assert not (root / "data" / "jobs" / job_id).exists()


def test_a_photo_without_a_face_is_done_not_failed(
    live: tuple[TestClient, Path], tmp_path: Path
) -> None:
    import cv2
    import numpy as np

    ok, png = cv2.imencode(".png", np.full((120, 160, 3), 90, np.uint8))
    assert ok
    client, _ = live
    r = client.post("/api/scans", files={"file": ("grey.png", png.tobytes(), "image/png")})
    assert r.status_code == 202, r.text
    body = wait_done(client, r.json()["url"])
    assert body["status"] == "done" and body["error"] is None
    assert body["result"]["status"] == "no_face" and body["result"]["fake_probability"] is None
    assert body["result"]["faces"] == []
    assert body["result"]["synthesis"]["model"]["name"]  # judged (or abstained) on its own
    # an abstain is told apart from an uncertain score in the list: its status says why
    (item,) = [s for s in client.get("/api/scans").json()["scans"] if s["id"] == body["id"]]
    assert item["status"] == "done" and item["result_status"] == "no_face"
    assert item["verdict"]["label"] == body["result"]["verdict"]["label"]
    assert item["verdict"]["label"] != "authentic"  # the faces were never checked
    assert item["label"] == "uncertain" and item["fake_probability"] is None


# -- upload limits and refusals ---------------------------------------------------------------
def test_oversize_video_is_refused_while_streaming(tmp_path: Path) -> None:
    data = EXAMPLE.read_bytes()[:150_000]  # sniffs as mp4; under limit + form overhead
    with TestClient(
        create_app(make_settings(tmp_path, max_video_bytes=100_000), start_workers=False)
    ) as client:
        r = upload(client, data)
        assert r.status_code == 413, r.text
        assert "a video may be at most" in r.json()["detail"]
        assert uploads(tmp_path) == []
        assert client.get("/api/scans").json() == {"scans": []}


def test_oversize_image_uses_the_image_limit(tmp_path: Path) -> None:
    image = b"\xff\xd8\xff\xe0" + bytes(20_000)
    settings = make_settings(tmp_path, max_image_bytes=5_000, max_video_bytes=1_000_000)
    with TestClient(create_app(settings, start_workers=False)) as client:
        r = upload(client, image, name="big.jpg")
        assert r.status_code == 413 and "an image may be at most" in r.json()["detail"]
        assert uploads(tmp_path) == []
        assert upload(client, image[:4_000], name="ok.jpg").status_code == 202
        (name,) = uploads(tmp_path)
        assert name.endswith(".jpg") and len(name) == 36


def test_oversize_by_content_length_is_refused_before_reading() -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""  # pragma: no cover

    headers = {
        "content-length": str(10**9),
        "content-type": "multipart/form-data; boundary=xyz",
    }
    with pytest.raises(UploadError) as info:
        asyncio.run(
            receive_upload(
                headers,
                never(),
                uploads_dir=Path("/nonexistent"),
                job_id=HEX,
                max_video_bytes=1000,
                max_image_bytes=1000,
            )
        )
    assert info.value.status == 413


def test_oversize_by_content_length_over_http(tmp_path: Path) -> None:
    with TestClient(
        create_app(make_settings(tmp_path, max_video_bytes=10_000), start_workers=False)
    ) as client:
        r = upload(client, EXAMPLE.read_bytes())
        assert r.status_code == 413 and "too large" in r.json()["detail"]
        assert uploads(tmp_path) == []


def test_chunked_upload_without_content_length(tmp_path: Path) -> None:
    data = EXAMPLE.read_bytes()
    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="c.mp4"\r\n'
        b"Content-Type: video/mp4\r\n\r\n" + data + b"\r\n--b0undary--\r\n"
    )

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    headers = {"content-type": "multipart/form-data; boundary=b0undary"}
    for limit, expected in ((100_000, 413), (1_000_000, 202)):
        settings = make_settings(tmp_path / str(limit), max_video_bytes=limit)
        with TestClient(create_app(settings, start_workers=False)) as client:
            r = client.post("/api/scans", content=chunks(), headers=headers)
            assert r.status_code == expected, r.text
            files = list((settings.uploads_dir).iterdir())
            if expected == 202:
                (stored,) = files
                assert stored.read_bytes() == data and stored.name == f"{r.json()['id']}.mp4"
            else:
                assert files == []


def test_text_file_is_unsupported_media(api: TestClient, tmp_path: Path) -> None:
    r = upload(api, b"this is not a video\n" * 100, name="video.mp4")
    assert r.status_code == 415 and "looks like text" in r.json()["detail"]
    assert upload(api, b"GIF89a" + bytes(100), name="a.jpg").status_code == 415
    assert uploads(tmp_path) == []


def test_missing_or_empty_file_is_a_bad_request(api: TestClient, tmp_path: Path) -> None:
    assert upload(api, b"").status_code == 400
    r = api.post("/api/scans", data={"other": "x"}, files={"nofile": ("a.mp4", b"x" * 10)})
    assert r.status_code == 400 and "file" in r.json()["detail"]
    assert api.post("/api/scans", content=b"raw bytes").status_code == 400
    bad = api.post(
        "/api/scans",
        content=b"garbage without boundaries",
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert bad.status_code == 400
    assert uploads(tmp_path) == []


def test_client_file_names_are_never_paths(api: TestClient, tmp_path: Path) -> None:
    r = upload(api, EXAMPLE.read_bytes(), name="../../etc/evil\u202ename.mp4")
    assert r.status_code == 202
    job_id = r.json()["id"]
    assert uploads(tmp_path) == [f"{job_id}.mp4"]
    assert api.get(f"/api/scans/{job_id}").json()["filename"] == "evilname.mp4"
    assert display_name(b"C:\\Users\\me\\clip.mov") == "clip.mov"
    assert display_name("a\x00b\x07c\r\nd\u2028e.jpg") == "abc d e.jpg"
    assert display_name(b"") == "upload" and display_name(None) == "upload"
    long = display_name("x" * 500 + ".webm")
    assert len(long) <= 120 and long.endswith(".webm")


# -- reading and deleting ---------------------------------------------------------------------
def test_unknown_ids_and_bad_image_names_are_404(api: TestClient) -> None:
    assert api.get(f"/api/scans/{HEX}").status_code == 404
    assert api.get("/api/scans/not-an-id").status_code == 404
    assert api.delete(f"/api/scans/{HEX}").status_code == 404
    job_id = upload(api, EXAMPLE.read_bytes()).json()["id"]
    for name in (
        "x.png",
        "..%2f..%2ffakescope.db",
        f"{job_id}-0123456789_track0.jpg",  # a thumbnail name on the heatmap route
        f"{job_id}-0123456789_track0.png",  # well-formed but not written
        f"{job_id.upper()}-0123456789_track0.png",
        f"{job_id}_track0.png",
    ):
        assert api.get(f"/api/scans/{job_id}/heatmaps/{name}").status_code == 404, name
    thumb = f"{job_id}-0123456789_track0.png"
    assert api.get(f"/api/scans/{job_id}/thumbnails/{thumb}").status_code == 404
    assert api.get(f"/api/scans/{HEX}/thumbnails/{HEX}-0123456789_track0.jpg").status_code == 404


def test_delete_removes_the_row_and_the_upload(api: TestClient, tmp_path: Path) -> None:
    r = upload(api, EXAMPLE.read_bytes())
    job = api.get(r.json()["url"]).json()
    assert job["status"] == "queued" and job["progress"] == 0.0 and job["result"] is None
    assert len(uploads(tmp_path)) == 1
    assert api.delete(r.json()["url"]).status_code == 204
    assert uploads(tmp_path) == []
    assert api.get(r.json()["url"]).status_code == 404
    assert api.delete(r.json()["url"]).status_code == 404


def test_list_is_newest_first_and_limited(api: TestClient) -> None:
    ids = [upload(api, EXAMPLE.read_bytes()[:100_000]).json()["id"] for _ in range(3)]
    scans = api.get("/api/scans").json()["scans"]
    listed = [s["id"] for s in scans]
    assert listed == ids[::-1]
    # not scanned yet: no verdict and no scan status, only the job's
    assert all(s["status"] == "queued" for s in scans)
    assert all(s["verdict"] is None and s["result_status"] is None for s in scans)
    assert [s["id"] for s in api.get("/api/scans?limit=2").json()["scans"]] == ids[:0:-1]
    assert api.get("/api/scans?limit=0").status_code == 422
    health = api.get("/api/health").json()
    assert health["queue"] == {"queued": 3, "running": 0} and health["workers"] == 0


# -- token, rate limit, headers ---------------------------------------------------------------
def test_token_is_required_except_for_health(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_token="s3cret-token")
    good = {"Authorization": "Bearer s3cret-token"}
    with TestClient(create_app(settings, start_workers=False)) as client:
        assert client.get("/api/health").status_code == 200
        r = upload(client, EXAMPLE.read_bytes())
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert (
            upload(
                client, EXAMPLE.read_bytes(), headers={"Authorization": "Bearer nope"}
            ).status_code
            == 401
        )
        assert uploads(tmp_path) == []
        r = upload(client, EXAMPLE.read_bytes(), headers=good)
        assert r.status_code == 202
        url = r.json()["url"]
        assert client.get(url).status_code == 401
        assert client.get(url, headers=good).status_code == 200
        assert client.get("/api/scans").status_code == 401
        assert client.get("/api/scans", headers=good).status_code == 200
        assert client.get(f"{url}?token=s3cret-token").status_code == 401  # images only
        image = f"{url}/thumbnails/{r.json()['id']}-0123456789_track0.jpg"
        assert client.get(image).status_code == 401
        assert client.get(f"{image}?token=wrong").status_code == 401
        assert client.get(f"{image}?token=s3cret-token").status_code == 404  # authorised
        assert client.delete(url).status_code == 401
        assert client.delete(url, headers=good).status_code == 204
        assert client.get("/").status_code in (200, 404)  # the page is public


def test_uploads_are_rate_limited_per_client(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_per_minute=2)
    with TestClient(create_app(settings, start_workers=False)) as client:
        assert upload(client, EXAMPLE.read_bytes()).status_code == 202
        assert upload(client, b"not media").status_code == 415  # refused uploads count too
        r = upload(client, EXAMPLE.read_bytes())
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert client.get("/api/scans").status_code == 200  # reading is not limited
    limiter = RateLimiter(60)
    assert all(limiter.acquire("a", now=0.0) == 0.0 for _ in range(60))
    assert limiter.acquire("a", now=0.0) == pytest.approx(1.0)
    assert limiter.acquire("b", now=0.0) == 0.0  # per client
    assert limiter.acquire("a", now=1.0) == 0.0  # one token a second
    assert RateLimiter(0).acquire("a") == 0.0


def test_security_headers_on_every_response(api: TestClient) -> None:
    for r in (
        api.get("/api/health"),
        api.get(f"/api/scans/{HEX}"),
        api.get("/"),
        api.get("/static/nothing.js"),
        api.post("/api/scans", content=b"x"),
    ):
        assert r.headers["content-security-policy"] == CSP, r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["permissions-policy"] == "camera=(), microphone=(), geolocation=()"
    assert api.get("/api/health").headers["cache-control"] == "no-store"
    docs = api.get("/docs")
    assert (
        docs.status_code == 200
        and "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    )
    # the docs work offline: every script and stylesheet is served by the app itself
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and not [a for a in assets if "://" in a]
    for asset in assets:
        if asset.endswith((".js", ".css")):
            r = api.get(asset)
            assert r.status_code == 200 and len(r.content) > 10_000, asset
            assert "cdn" not in r.headers["content-security-policy"]
    schema = api.get("/openapi.json").json()
    assert "/api/scans/{job_id}" in schema["paths"]
    assert "multipart/form-data" in schema["paths"]["/api/scans"]["post"]["requestBody"]["content"]


def test_unhandled_error_is_a_json_500_with_the_security_headers(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), start_workers=False)

    def boom() -> None:
        raise RuntimeError("secret detail /srv/data/token.txt")

    app.add_api_route("/api/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/boom")
    assert r.status_code == 500
    assert r.json() == {"detail": "internal server error"}
    assert "Traceback" not in r.text and "secret detail" not in r.text
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["permissions-policy"] == "camera=(), microphone=(), geolocation=()"
    assert r.headers["cache-control"] == "no-store"


# -- OpenAPI: the bearer scheme and documented bodies -----------------------------------------
def test_openapi_declares_the_bearer_scheme_and_the_bodies(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["bearer"]["description"],
        }
    }
    assert "FAKESCOPE_API_TOKEN" in schemes["bearer"]["description"]
    paths = schema["paths"]
    # every API route but health names it, so the docs' Authorize button sends the token
    for path, method in (
        ("/api/scans", "post"),
        ("/api/scans", "get"),
        ("/api/scans/{job_id}", "get"),
        ("/api/scans/{job_id}", "delete"),
        ("/api/scans/{job_id}/heatmaps/{name}", "get"),
        ("/api/scans/{job_id}/thumbnails/{name}", "get"),
        ("/api/people", "get"),
        ("/api/people/{name}", "post"),
        ("/api/people/{name}", "delete"),
    ):
        assert paths[path][method]["security"] == [{"bearer": []}], (path, method)
    assert "security" not in paths["/api/health"]["get"]
    # the upload's fields, and the body of POST /api/people/{name}, are documented
    scan_form = paths["/api/scans"]["post"]["requestBody"]["content"]["multipart/form-data"]
    props = scan_form["schema"]["properties"]
    assert set(props) == {"file", "reference"} and scan_form["schema"]["required"] == ["file"]
    assert "gallery" in props["reference"]["description"]
    person = paths["/api/people/{name}"]["post"]
    form = person["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    assert form["properties"]["file"]["description"] and person["description"]
    (name,) = [p for p in person["parameters"] if p["name"] == "name"]
    assert name["description"]
    listed = paths["/api/scans"]["get"]["description"]
    assert "result_status" in listed and "verdict" in listed


def test_the_bearer_scheme_keeps_the_token_rules(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_token="s3cret-token")
    with TestClient(create_app(settings, start_workers=False)) as client:
        for header in ("Bearer s3cret-token", "bearer s3cret-token", "Bearer  s3cret-token "):
            assert client.get("/api/scans", headers={"Authorization": header}).status_code == 200
        for header in ("Basic s3cret-token", "Bearer", "s3cret-token", "Bearer wrong"):
            r = client.get("/api/scans", headers={"Authorization": header})
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", header


# -- a per-upload reference person ------------------------------------------------------------
def test_reference_names_a_person_of_the_gallery(tmp_path: Path) -> None:
    import numpy as np

    from fakescope.config import ScanConfig
    from fakescope.identity import Gallery

    clip = EXAMPLE.read_bytes()

    def send(client: TestClient, reference: str) -> Any:
        files = {"file": ("clip.mp4", clip, "video/mp4")}
        return client.post("/api/scans", files=files, data={"reference": reference})

    # a server without a gallery refuses the field, and keeps nothing
    with TestClient(create_app(make_settings(tmp_path / "plain"), start_workers=False)) as c:
        r = send(c, "eileen")
        assert r.status_code == 422 and "no gallery" in r.json()["detail"]
        assert list((tmp_path / "plain" / "data" / "uploads").iterdir()) == []
        assert c.get("/api/health").json()["gallery"] is False

    folder = tmp_path / "people"
    Gallery(folder).add("eileen", np.random.default_rng(0).normal(size=(4, 128)))
    settings = make_settings(tmp_path / "g", scan=ScanConfig(gallery=str(folder)))
    with TestClient(create_app(settings, start_workers=False)) as client:
        assert client.get("/api/health").json()["gallery"] is True
        for name in ("nobody", "x" * 300):
            r = send(client, name)
            assert r.status_code == 422
            assert r.json()["detail"] == "'reference' names nobody in this server's gallery"
        assert list(settings.uploads_dir.iterdir()) == []
        r = send(client, "  eileen ")  # the form field, trimmed
        assert r.status_code == 202, r.text
        job = client.get(r.json()["url"]).json()
        assert job["reference"] == "eileen"
        r = send(client, "")  # empty: no reference check
        assert r.status_code == 202 and client.get(r.json()["url"]).json()["reference"] is None
        big = send(client, "e" * 5000)
        assert big.status_code == 413

"""The FastAPI application: the JSON API under ``/api``, the page at ``/`` and ``/static``.

``create_app(settings)`` builds it; its lifespan takes the data folder's lock, requeues the
jobs a previous server left ``running``, deletes expired jobs, starts the worker processes
and a supervisor, and stops them all on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.staticfiles import StaticFiles

from fakescope import __version__
from fakescope.server._files import private_dir
from fakescope.server._jobs import JOB_ID, DataDirLock, Job, JobStore, iso_utc, new_job_id
from fakescope.server._security import (
    BEARER,
    CSP,
    Credentials,
    HardenedApp,
    redact_access_log,
)
from fakescope.server._settings import ServerSettings
from fakescope.server._uploads import (
    RateLimiter,
    SavedUpload,
    UploadError,
    UploadSlots,
    receive_upload,
    timed_stream,
)
from fakescope.server._worker import WorkerPool, remove_job_files

__all__ = ["BEARER", "CSP", "STATIC_DIR", "create_app", "job_detail", "job_summary"]

log = logging.getLogger("fakescope.server")

STATIC_DIR = Path(__file__).resolve().parent / "static"

_DOCS_ASSETS = "/docs-assets"  # Swagger UI from the fastapi-offline wheel
_HEATMAP_NAME = re.compile(r"[0-9a-f]{32}-[0-9a-f]{10}_track[0-9]{1,6}\.png")
_THUMBNAIL_NAME = re.compile(r"[0-9a-f]{32}-[0-9a-f]{10}_track[0-9]{1,6}\.jpg")


async def _internal_error(request: Request, exc: Exception) -> Response:
    """Unhandled exceptions: a JSON 500 without a traceback (the server log keeps it)."""
    return JSONResponse({"detail": "internal server error"}, status_code=500)


# -- JSON shapes ------------------------------------------------------------------------------
def _overall(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The overall verdict of a stored result, in short (label, probability that the media
    is not authentic, what decided it, the headline); None before it is done, and for a
    result stored by a version that had no overall verdict."""
    verdict = None if result is None else result.get("verdict")
    if not isinstance(verdict, dict):
        return None
    keys = ("label", "probability", "decided_by", "face", "headline")
    return {k: verdict.get(k) for k in keys}


def job_summary(job: Job) -> dict[str, Any]:
    """One item of ``GET /api/scans``: ``verdict`` is the overall verdict in short and
    ``result_status`` the scan's own status (``ok``, or why it abstained: ``no_face``,
    ``undecodable``...), both None until the job is done; ``status`` is the job's."""
    result = job.result
    return {
        "id": job.id,
        "status": job.status,
        "filename": job.filename,
        "created_at": iso_utc(job.created_at),
        "updated_at": iso_utc(job.updated_at),
        "result_status": None if result is None else result.get("status"),
        "verdict": _overall(result),
        "label": job.label,
        "fake_probability": job.fake_probability,
        "error": job.error,
    }


def job_detail(job: Job) -> dict[str, Any]:
    """``GET /api/scans/{id}``: the stored verdict with its image names turned into URLs."""
    result = None
    if job.result is not None:
        result = copy.deepcopy(job.result)
        for face in result.get("faces", []):
            for key, kind in (("heatmap", "heatmaps"), ("thumbnail", "thumbnails")):
                name = face.get(key)
                face[key] = None if name is None else f"/api/scans/{job.id}/{kind}/{name}"
    return {
        "id": job.id,
        "status": job.status,
        "progress": 1.0 if job.status == "done" else round(job.progress, 4),
        "filename": job.filename,
        "created_at": iso_utc(job.created_at),
        "updated_at": iso_utc(job.updated_at),
        "error": job.error,
        "reference": job.reference,
        "result": result,
        "provenance": job.provenance,
    }


def purge_expired(settings: ServerSettings, store: JobStore, now: float | None = None) -> int:
    """Delete the jobs (rows and files) older than ``retention_hours``, and files in
    ``uploads/`` and ``jobs/`` that belong to no job and are as old. Returns the job count."""
    now = time.time() if now is None else now
    cutoff = now - settings.retention_hours * 3600.0
    removed = 0
    for job_id in store.expired(cutoff):
        job = store.delete(job_id)
        if job is not None:
            remove_job_files(settings, job)
            removed += 1
    known = store.ids()
    for folder in (settings.uploads_dir, settings.jobs_dir):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            stem = entry.name.split(".", 1)[0]
            with contextlib.suppress(OSError):
                if stem not in known and entry.lstat().st_mtime < cutoff:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
    if removed:
        log.info("deleted %d expired job(s)", removed)
    return removed


async def _every(seconds: float, work: Callable[[], object], what: str) -> None:
    """Run blocking ``work`` in a thread every ``seconds`` until cancelled; log failures."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await anyio.to_thread.run_sync(work)
        except Exception:
            log.exception("%s failed", what)


# -- the app ----------------------------------------------------------------------------------
def _upload_body(
    file_description: str, body: str | None = None, **fields: dict[str, Any]
) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a multipart upload: a required binary ``file`` and optional
    extra text ``fields`` (the routes read the stream themselves, so FastAPI cannot infer it)."""
    schema = {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": file_description},
            **fields,
        },
    }
    request: dict[str, Any] = {"required": True}
    if body is not None:
        request["description"] = body
    request["content"] = {"multipart/form-data": {"schema": schema}}
    return {"requestBody": request}


def create_app(settings: ServerSettings | None = None, start_workers: bool = True) -> FastAPI:
    """The web service for ``settings`` (default: from the environment). With
    ``start_workers=False`` jobs are queued but nothing scans them (tests, API-only)."""
    settings = settings or ServerSettings.from_env()
    created = private_dir(settings.data_dir, existing=False)  # the user may share it on purpose
    if not created and settings.data_dir.stat().st_mode & 0o077:
        log.warning(
            "the data folder %s is open to other users: its uploads and database are kept "
            "private, but consider 'chmod 700' on it",
            settings.data_dir,
        )
    store = JobStore(settings.db_path)
    limiter = RateLimiter(settings.rate_limit_per_minute)
    slots = UploadSlots(settings.max_uploads_per_client)
    pool = WorkerPool(settings, store) if start_workers and settings.workers > 0 else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lock = DataDirLock(settings.lock_path)
        lock.acquire()
        redact_access_log()
        tasks: list[asyncio.Task[None]] = []
        try:
            for folder in (settings.uploads_dir, settings.jobs_dir):
                private_dir(folder)  # also tightens the folders of an older version
            # the previous server died or stopped with these running: not the jobs' fault
            requeued, failed = store.requeue_running(settings.max_attempts)
            for job_id in failed:  # only with a lower max_attempts than before
                job = store.get(job_id)
                if job is not None:
                    remove_job_files(settings, job)
            if requeued or failed:
                log.warning(
                    "after a restart: %d interrupted job(s) requeued, %d failed",
                    len(requeued),
                    len(failed),
                )
            await anyio.to_thread.run_sync(purge_expired, settings, store)
            tasks.append(
                asyncio.create_task(
                    _every(
                        settings.cleanup_interval_s,
                        lambda: purge_expired(settings, store),
                        "cleanup",
                    )
                )
            )
            if pool is not None:
                pool.start()
                tasks.append(
                    asyncio.create_task(
                        _every(settings.supervise_interval_s, pool.supervise, "supervisor")
                    )
                )
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if pool is not None:
                await anyio.to_thread.run_sync(pool.stop)
            store.close()
            lock.release()

    app = HardenedApp(
        title="fakescope",
        version=__version__,
        description="Offline deepfake detector: upload a video or photo, poll its scan.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_exception_handler(Exception, _internal_error)
    app.state.settings = settings
    app.state.store = store
    app.state.pool = pool

    # -- auth ---------------------------------------------------------------------------
    def _token_ok(given: str | None) -> bool:
        token = settings.api_token
        return token is None or (
            given is not None and hmac.compare_digest(given.encode(), token.encode())
        )

    def _bearer(credentials: HTTPAuthorizationCredentials | None) -> str | None:
        return None if credentials is None else credentials.credentials.strip()

    def _unauthorized() -> HTTPException:
        return HTTPException(
            401,
            "a valid API token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )

    def require_token(credentials: Credentials) -> None:
        if not _token_ok(_bearer(credentials)):
            raise _unauthorized()

    def require_token_or_query(
        credentials: Credentials,
        token: Annotated[
            str | None,
            Query(description="the API token, for an <img> tag that cannot send a header"),
        ] = None,
    ) -> None:
        """Images also accept ``?token=`` so that an ``<img>`` tag can load them."""
        if not (_token_ok(_bearer(credentials)) or (token is not None and _token_ok(token))):
            raise _unauthorized()

    def _job(job_id: str) -> Job:
        job = store.get(job_id) if JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise HTTPException(404, "no such scan")
        return job

    authed = [Depends(require_token)]

    # -- routes -------------------------------------------------------------------------
    async def _receive(request: Request, name: str) -> SavedUpload:
        """Stream the request's multipart ``file`` into ``uploads/<name>.<ext>`` (HTTP errors
        for a bad, too large, too slow or unsupported upload)."""
        body = timed_stream(
            request.stream(),
            total_s=settings.body_timeout_s,
            idle_s=settings.body_idle_timeout_s,
        )
        try:
            return await receive_upload(
                request.headers,
                body,
                uploads_dir=settings.uploads_dir,
                job_id=name,
                max_video_bytes=settings.max_video_bytes,
                max_image_bytes=settings.max_image_bytes,
            )
        except UploadError as exc:
            # a 408 leaves the rest of the body unread: close the connection after answering
            headers = {"Connection": "close"} if exc.status == 408 else None
            raise HTTPException(exc.status, exc.detail, headers=headers) from None
        finally:
            await body.aclose()

    @app.post(
        "/api/scans",
        status_code=202,
        dependencies=authed,
        summary="Upload a video or photo to scan",
        openapi_extra=_upload_body(
            "the video or photo (its type is sniffed from the content, never taken from the name)",
            reference={
                "type": "string",
                "maxLength": 200,
                "description": "optional: the name of a person in the server's gallery (GET "
                "/api/people); every face is also checked against that person's real reference "
                "faces (like 'fakescope scan --reference NAME')",
            },
        ),
        responses={
            400: {"description": "no file, empty file or malformed form"},
            401: {"description": "API token required"},
            408: {"description": "the upload was too slow"},
            413: {"description": "file too large"},
            415: {"description": "not a supported video or image (sniffed from content)"},
            422: {"description": "'reference' names nobody in the gallery, or there is none"},
            429: {"description": "too many uploads (in progress, or a minute) from this client"},
        },
    )
    async def create_scan(request: Request) -> JSONResponse:
        client = request.client.host if request.client else "unknown"
        if not slots.acquire(client):
            raise HTTPException(
                429,
                "too many uploads in progress from this client: wait for one to finish",
                headers={"Retry-After": "5"},
            )
        try:
            return await _create_scan(request, client)
        finally:
            slots.release(client)

    async def _create_scan(request: Request, client: str) -> JSONResponse:
        wait = limiter.acquire(client)
        if wait > 0:
            raise HTTPException(
                429,
                "too many uploads: try again later",
                headers={"Retry-After": RateLimiter.retry_after(wait)},
            )
        job_id = new_job_id()
        saved = await _receive(request, job_id)
        reference = saved.fields.get("reference")
        try:
            if reference is not None:
                await anyio.to_thread.run_sync(_check_reference, reference)
            await anyio.to_thread.run_sync(
                store.create, job_id, saved.filename, saved.path.name, reference
            )
        except BaseException:
            saved.path.unlink(missing_ok=True)
            raise
        url = f"/api/scans/{job_id}"
        log.info("queued %s: %s (%s, %d bytes)", job_id, saved.filename, saved.format, saved.size)
        return JSONResponse(
            {"id": job_id, "status": "queued", "url": url},
            status_code=202,
            headers={"Location": url},
        )

    def _check_reference(name: str) -> None:
        """A scan's ``reference`` must name a person of the server's gallery (422 if not)."""
        if settings.scan.gallery is None:
            raise HTTPException(
                422, "this server has no gallery of people, so 'reference' cannot be used"
            )
        from fakescope.identity import Gallery

        if len(name) > 200 or name not in Gallery(settings.scan.gallery).names():
            raise HTTPException(422, "'reference' names nobody in this server's gallery")

    @app.get(
        "/api/scans",
        dependencies=authed,
        summary="The latest scans, newest first",
        description="Each item carries the job's `status` (queued, running, done, failed), "
        "the scan's own `result_status` (ok, or why it gave no verdict: no_face, "
        "undecodable, ...) and the overall `verdict` in short (`label`: manipulated, "
        "generated, authentic, uncertain or no_verdict; `probability` that the media is not "
        "authentic). `label`/`fake_probability` answer the face-manipulation question only.",
    )
    def list_scans(limit: Annotated[int, Query(ge=1, le=500)] = 20) -> dict[str, Any]:
        return {"scans": [job_summary(j) for j in store.recent(limit)]}

    @app.get("/api/scans/{job_id}", dependencies=authed, summary="One scan: status and result")
    def get_scan(job_id: str) -> dict[str, Any]:
        return job_detail(_job(job_id))

    @app.delete(
        "/api/scans/{job_id}",
        status_code=204,
        dependencies=authed,
        summary="Delete a scan, its upload and outputs",
    )
    def delete_scan(job_id: str) -> Response:
        job = store.delete(job_id) if JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise HTTPException(404, "no such scan")
        remove_job_files(settings, job)
        return Response(status_code=204)

    # -- people (biometric: only with a token, only when a gallery is configured) ---------
    def _people_gallery(credentials: HTTPAuthorizationCredentials | None) -> Any:
        if settings.api_token is None:
            raise HTTPException(403, "/api/people needs the server to be started with a token")
        require_token(credentials)
        if settings.scan.gallery is None:
            raise HTTPException(404, "this server has no gallery (fakescope serve --gallery DIR)")
        from fakescope.identity import Gallery

        return Gallery(settings.scan.gallery)

    @app.get("/api/people", summary="The people of the server's gallery (token required)")
    def list_people(credentials: Credentials) -> dict[str, Any]:
        gallery = _people_gallery(credentials)
        return {
            "people": [
                {"name": n, "embeddings": len(gallery.embeddings(n))} for n in gallery.names()
            ]
        }

    @app.post(
        "/api/people/{name}",
        status_code=201,
        summary="Add a person's reference photo or video (token required; only embeddings kept)",
        description="The body is a multipart form whose field `file` holds one genuine photo "
        "or video of the person (the largest face of a photo, faces of a few frames of a "
        "video). Only the face embeddings are kept; the upload is deleted at once. Adding to "
        "an existing name appends to that person's references.",
        openapi_extra=_upload_body(
            "a genuine photo or video in which the person's face is the largest one",
            body="a reference photo or video of the person",
        ),
        responses={
            400: {"description": "no file, a malformed form, or no face found in it"},
            401: {"description": "API token required"},
            403: {"description": "the server has no token: /api/people is off"},
            413: {"description": "file too large"},
            415: {"description": "not a supported video or image"},
        },
    )
    async def add_person(
        name: Annotated[str, PathParam(description="the person's name (1-200 characters)")],
        request: Request,
        credentials: Credentials,
    ) -> JSONResponse:
        gallery = _people_gallery(credentials)
        if not name.strip() or len(name) > 200:
            raise HTTPException(400, "a person's name must be 1-200 characters")
        # a 32-hex name: swept like an orphan upload if the server dies before it is deleted
        saved = await _receive(request, new_job_id())
        from fakescope.identity import reference_embeddings

        try:  # the upload is deleted once embedded: only embeddings are kept
            embeddings, notes = await anyio.to_thread.run_sync(reference_embeddings, [saved.path])
        finally:
            saved.path.unlink(missing_ok=True)
        if len(embeddings) == 0:
            why = "; ".join(n.split(": ", 1)[-1] for n in notes) or "no face found"
            raise HTTPException(400, f"no reference face for {name}: {why}")
        await anyio.to_thread.run_sync(lambda: gallery.add(name, embeddings, {"source": "api"}))
        log.info("added %d reference face(s) for a person", len(embeddings))
        return JSONResponse(
            {"name": name, "added": len(embeddings), "embeddings": len(gallery.embeddings(name))},
            status_code=201,
        )

    @app.delete(
        "/api/people/{name}",
        status_code=204,
        summary="Forget a person: their embeddings are deleted (token required)",
    )
    def delete_person(name: str, credentials: Credentials) -> Response:
        gallery = _people_gallery(credentials)
        try:
            gallery.remove(name)
        except KeyError:
            raise HTTPException(404, "no such person") from None
        return Response(status_code=204)

    def _output(job_id: str, name: str, pattern: re.Pattern[str], media_type: str) -> FileResponse:
        if not pattern.fullmatch(name):
            raise HTTPException(404, "no such image")
        _job(job_id)
        folder = (settings.jobs_dir / job_id).resolve()
        path = (folder / name).resolve()
        if path.parent != folder or not path.is_file():
            raise HTTPException(404, "no such image")
        return FileResponse(path, media_type=media_type)

    image_auth = [Depends(require_token_or_query)]

    @app.get("/api/scans/{job_id}/heatmaps/{name}", dependencies=image_auth)
    def get_heatmap(job_id: str, name: str) -> FileResponse:
        return _output(job_id, name, _HEATMAP_NAME, "image/png")

    @app.get("/api/scans/{job_id}/thumbnails/{name}", dependencies=image_auth)
    def get_thumbnail(job_id: str, name: str) -> FileResponse:
        return _output(job_id, name, _THUMBNAIL_NAME, "image/jpeg")

    @app.get("/api/health", summary="Liveness, version and queue length (no token needed)")
    def health() -> dict[str, Any]:
        counts = store.counts()
        from fakescope.models import DETECTORS
        from fakescope.synthesis import SYNTHESIS_DETECTORS

        synth = settings.scan.synthesis_detector
        return {
            "status": "ok",
            "version": __version__,
            "detector": settings.scan.detector,
            # what runs on this CPU (an int8 weight's float twin where int8 is not exact)
            "detector_runs_as": DETECTORS.resolve(settings.scan.detector)[0],
            "synthesis_detector": synth,
            "synthesis_detector_runs_as": None
            if synth is None
            else SYNTHESIS_DETECTORS.resolve(synth)[0],
            "attribution": settings.scan.attribution,
            "evidence": list(settings.scan.evidence),
            "identity": settings.scan.identity or settings.scan.gallery is not None,
            "gallery": settings.scan.gallery is not None,
            "queue": {"queued": counts["queued"], "running": counts["running"]},
            "workers": 0 if pool is None else len(pool.alive()),
        }

    # -- the page -----------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            raise HTTPException(404, "the web page is not installed")
        return FileResponse(page, media_type="text/html")

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # -- API docs, served offline -----------------------------------------------------------
    swagger = _swagger_assets()
    if swagger is not None:
        app.mount(_DOCS_ASSETS, StaticFiles(directory=swagger), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        def docs() -> Response:
            from fastapi.openapi.docs import get_swagger_ui_html

            return get_swagger_ui_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title="fakescope API",
                swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{_DOCS_ASSETS}/favicon.png",
            )

    return app


def _swagger_assets() -> Path | None:
    """Swagger UI's JS/CSS shipped inside the ``fastapi-offline`` wheel (None if missing)."""
    try:
        from importlib.resources import files

        folder = Path(str(files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        return None
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None

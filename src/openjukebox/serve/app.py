"""The REST API: jobs as JSON endpoints, a progress stream (server-sent events) and the files by name.

No endpoint takes a path: jobs are named by their id, files by one of a fixed set of names, and
every refused request gets a 4xx with ``{"detail": "<one line>"}``.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Annotated

import soundfile as sf
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from .jobs import FINISHED, MAX_UPLOAD_BYTES, JobRequest, JobStore

# The downloadable files of a job: name pattern -> path inside the job's out/ folder.
FILES = {
    re.compile(r"^level_(\d)_sample_(\d)\.wav$"): "level_{0}/sample_{1}.wav",
    re.compile(r"^sample_(\d)\.(lrc|json|png)$"): "alignment/sample_{0}.{1}",
    re.compile(r"^(codes)\.codes$"): "codes.codes",
    re.compile(r"^(metadata)\.json$"): "metadata.json",
    re.compile(r"^(spectrogram)\.png$"): "spectrogram.png",
}
FLAC = re.compile(r"^level_(\d)_sample_(\d)\.flac$")
MEDIA = {".wav": "audio/wav", ".lrc": "text/plain", ".json": "application/json", ".png": "image/png"}


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def create_app(store: JobStore) -> FastAPI:
    """The API over ``store``; the page is mounted on it by ``openjukebox.serve.ui``."""
    app = FastAPI(
        title="openjukebox",
        summary="Generate music with a Jukebox-style model: jobs, progress and files.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.store = store

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}".strip(": ")}, status_code=422)

    @app.exception_handler(ValueError)
    async def refused(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": one_line(exc)}, status_code=400)

    @app.exception_handler(LookupError)
    async def missing(request: Request, exc: LookupError) -> JSONResponse:
        return JSONResponse({"detail": one_line(exc.args[0] if exc.args else exc)}, status_code=404)

    @app.get("/api/model", summary="The model: artists, genres, lyric characters, length limits")
    def model() -> dict:
        return store.info

    @app.post("/api/jobs", status_code=201, summary="Queue a generation")
    def create(request: JobRequest) -> dict:
        return store.submit(request)

    @app.get("/api/jobs", summary="Every job, newest first")
    def jobs() -> list[dict]:
        return store.list()

    @app.get("/api/jobs/{job_id}", summary="A job's status, progress per level and ready files")
    def status(job_id: str) -> dict:
        return store.get(job_id)

    @app.post("/api/jobs/{job_id}/cancel", summary="Cancel a queued or running job")
    def cancel(job_id: str) -> dict:
        return store.cancel(job_id)

    @app.get("/api/jobs/{job_id}/events", summary="Server-sent events: the job's status until it ends")
    async def events(job_id: str) -> StreamingResponse:
        store.get(job_id)  # 404 before the stream starts

        async def stream():
            last = None
            while True:
                job = store.get(job_id)
                text = json.dumps(job)
                if text != last:
                    yield f"data: {text}\n\n"
                    last = text
                if job["status"] in FINISHED:
                    return
                await asyncio.sleep(0.25)

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.get("/api/jobs/{job_id}/files/{name}", summary="One file of a job, by its fixed name")
    def files(job_id: str, name: str) -> Response:
        out = store.folder(job_id) / "out"
        match = FLAC.match(name)
        if match:  # converted on request from the WAV
            wav = out / f"level_{match[1]}" / f"sample_{match[2]}.wav"
            if not wav.is_file():
                raise LookupError(f"{name} is not ready; GET /api/jobs/{job_id} lists the ready files")
            audio, rate = sf.read(str(wav))
            buffer = io.BytesIO()
            sf.write(buffer, audio, rate, format="FLAC")
            headers = {"Content-Disposition": f'attachment; filename="{job_id}_{name}"'}
            return Response(buffer.getvalue(), media_type="audio/flac", headers=headers)
        for pattern, template in FILES.items():
            match = pattern.match(name)
            if match:
                path = out / template.format(*match.groups())
                if not path.is_file():
                    raise LookupError(f"{name} is not ready; GET /api/jobs/{job_id} lists the ready files")
                return FileResponse(path, media_type=MEDIA.get(Path(name).suffix), filename=f"{job_id}_{name}")
        raise HTTPException(
            400,
            f"no file named {name!r}: ask for level_L_sample_I.wav or .flac, sample_I.lrc/.json/.png, codes.codes, "
            "metadata.json or spectrogram.png",
        )

    @app.post("/api/uploads", status_code=201, summary="Upload prompt audio (checked as audio); returns its id")
    async def upload(file: Annotated[UploadFile, File()]) -> dict:
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        return {"upload": store.save_upload(data, file.filename or "")}

    return app

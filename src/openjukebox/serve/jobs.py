"""Generation jobs: each one a folder on disk, run one at a time, in order, resumable after a restart.

    WORK/jobs/<id>/job.json     the request, its status, error, and the files ready so far
    WORK/jobs/<id>/input.codes  the kept candidate a continuation or re-render starts from
    WORK/jobs/<id>/lyrics.lrc   timed lyrics, when the request's lyrics are LRC
    WORK/jobs/<id>/out/         what ``openjukebox.api.sample`` writes (codes.codes is its resumable state)
    WORK/uploads/<id>.<ext>     uploaded prompt audio, checked as audio

A job still queued or running when the server stopped is queued again when it starts; sampling
resumes after the last saved window, so the codes equal those of an unbroken run.
"""

from __future__ import annotations

import json
import math
import queue
import re
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from .. import api
from ..audio.io import AudioError, load_audio
from ..codes import CodesFile
from ..compose import keep_candidate
from ..errors import UserError
from ..fileio import atomic_path
from ..sampling.bundle import Bundle

JOB_ID = re.compile(r"^[0-9a-f]{12}$")
UPLOAD_ID = re.compile(r"^[0-9a-f]{12}\.(wav|flac|ogg|opus|mp3)$")
LRC_LINE = re.compile(r"^\s*\[\d+:\d+(\.\d+)?\]", re.MULTILINE)
MAX_UPLOAD_BYTES = 20 * 2**20
FINISHED = ("done", "failed", "cancelled")


MAX_SECONDS = 900  # the longest song a job may ask for: the shipped model times songs to under 15 minutes


Guidance = Annotated[float, Field(gt=0, le=20)]
Temperature = Annotated[float, Field(gt=0, le=10)]


class JobRequest(BaseModel):
    """What to generate. ``source_job`` + ``source_sample``: start from that finished job's top-level
    codes of one song (the kept candidate): shorter than ``seconds`` it is extended, as long it is
    re-rendered below its top level (e.g. with another artist or genre; ``seconds`` may be left out)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: float | None = Field(None, gt=0, le=MAX_SECONDS)
    artist: str | None = Field(None, max_length=200)
    genre: str | None = Field(None, max_length=200)
    lyrics: str | None = Field(None, max_length=20_000, description="plain text, or LRC ([mm:ss.xx] lines)")
    seed: int | None = Field(None, ge=0, lt=2**31)
    temperature: Temperature | list[Temperature] = Field(
        0.99, description="one value for every level, or one per level from the top down (0.99, 0.9, 0.9)"
    )
    guidance: Guidance | list[Guidance] | None = Field(
        None, description="one value for every level, or one per level from the top down (3, 1, 1: the top only)"
    )
    n_samples: int = Field(1, ge=1, le=8)
    segments: int = Field(
        1, ge=1, le=64, description="sample each upsampled level in up to this many stretches side by side (faster)"
    )
    top_only: bool = Field(False, description="sample the top level only (co-composer candidates)")
    label_seconds: float | None = Field(None, gt=0, le=MAX_SECONDS, description="the finished song's length")
    source_job: str | None = Field(None, pattern=JOB_ID.pattern)
    source_sample: int = Field(0, ge=0, lt=8)
    prompt_upload: str | None = Field(None, pattern=UPLOAD_ID.pattern)
    prompt_seconds: float = Field(2.0, gt=0, le=MAX_SECONDS)


class Stopped(Exception):
    """Raised inside a running job to end it: cancelled, or the server is stopping."""


def model_info(bundle: Bundle) -> dict:
    """What the page offers: names, lyric characters and length limits of the bundle's top prior."""
    top = bundle.configs[bundle.top]
    vocab = bundle.vocabs[bundle.top]
    named = vocab is not None and not hasattr(vocab, "version")
    tokenizer = bundle.tokenizers[bundle.top]
    labels = top.labels
    return {
        "path": str(bundle.path),
        "sample_rate": top.sample_rate,
        "levels": sorted(bundle.configs, reverse=True),
        "artists": list(vocab.artists.names[1:]) if named else sorted(getattr(vocab, "artists", [])),
        "genres": list(vocab.genres.names[1:]) if named else sorted(getattr(vocab, "genres", [])),
        "lyric_characters": tokenizer.chars if tokenizer is not None else None,
        "min_seconds": labels.min_duration if labels is not None and labels.timing else None,
        "max_seconds": labels.max_duration if labels is not None and labels.timing else None,
    }


class JobStore:
    """The jobs under ``work``, and the one worker thread that runs them in order."""

    def __init__(self, model: str | Path, work: str | Path, device: str | None = None):
        self.bundle = Bundle(model)
        self.bundle.check()
        self.model, self.work, self.device = Path(model), Path(work), device
        self.jobs_dir, self.uploads_dir = self.work / "jobs", self.work / "uploads"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.info = model_info(self.bundle)
        self.progress: dict[str, dict] = {}  # per job: {level: progress}, in memory
        self._lock = threading.Lock()
        self._cancel: set[str] = set()
        self._stop = threading.Event()
        self._queue: queue.Queue[str | None] = queue.Queue()
        for job in sorted(self.list(), key=lambda j: j["created"]):
            if job["status"] in ("queued", "running"):  # interrupted by a stop or a crash: resume it
                self._update(job["id"], status="queued")
                self._queue.put(job["id"])
        self._worker = threading.Thread(target=self._run, name="openjukebox-jobs", daemon=True)
        self._worker.start()

    # --- the job files ----------------------------------------------------------------------
    def folder(self, job_id: str) -> Path:
        """The folder of an existing job; a 404-worthy LookupError for any other id."""
        if not JOB_ID.match(job_id or "") or not (self.jobs_dir / job_id / "job.json").is_file():
            raise LookupError(f"no job {job_id!r}; GET /api/jobs lists the jobs")
        return self.jobs_dir / job_id

    def get(self, job_id: str) -> dict:
        """The job's record, with its live progress."""
        job = json.loads((self.folder(job_id) / "job.json").read_text())
        return {**job, "progress": self.progress.get(job_id, job.get("progress", {}))}

    def list(self) -> list[dict]:
        jobs = [json.loads(p.read_text()) for p in self.jobs_dir.glob("*/job.json")]
        return sorted(jobs, key=lambda j: j["created"], reverse=True)

    def _write(self, job: dict) -> None:
        with atomic_path(self.jobs_dir / job["id"] / "job.json") as tmp:
            Path(tmp).write_text(json.dumps(job, indent=1))

    def _update(self, job_id: str, only_if: str | None = None, **changes) -> dict | None:
        """Change the job's record on disk (only while its status is ``only_if``, when given: a
        status check and change in one step, so that a cancel and the worker cannot cross)."""
        with self._lock:
            job = json.loads((self.jobs_dir / job_id / "job.json").read_text())
            if only_if is not None and job["status"] != only_if:
                return None
            job.update(changes)
            self._write(job)
            return job

    # --- requests -----------------------------------------------------------------------------
    def submit(self, request: JobRequest) -> dict:
        """Check ``request`` against the model and the store, then queue it; returns the job."""
        self.check(request)
        job_id = secrets.token_hex(6)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        job = {
            "id": job_id,
            "created": time.time(),
            "status": "queued",
            "request": request.model_dump(),
            "seed": seed,
            "error": None,
            "files": {},
            "progress": {},
        }
        with self._lock:
            self._write(job)
        self._queue.put(job_id)
        return job

    def check(self, request: JobRequest) -> None:
        """Refuse, with one line each, what would fail in the worker: names, lengths, sources, lyrics."""
        b = self.bundle
        b.labels(1, request.artist, request.genre)
        b.guidance(b.top, request.guidance)  # a list of the wrong length
        b.temperature(b.top, request.temperature)
        if request.source_job is None and request.seconds is None:
            raise UserError("say how long the song should be (seconds)")
        if request.seconds is not None or request.label_seconds is not None:
            from ..sampling.song import check_duration

            check_duration(b.configs, request.label_seconds or request.seconds)
        if request.source_job is not None:
            if request.prompt_upload is not None:
                raise UserError("give either source_job (a kept song) or prompt_upload (audio), not both")
            source = self.get(request.source_job) if JOB_ID.match(request.source_job) else None
            if source is None or source["status"] != "done":
                raise UserError(f"job {request.source_job} is not finished; wait until its status is done")
            if request.source_sample >= source["request"]["n_samples"]:
                raise UserError(
                    f"job {request.source_job} has samples 0 to {source['request']['n_samples'] - 1}, "
                    f"not {request.source_sample}"
                )
        if request.prompt_upload is not None and not (self.uploads_dir / request.prompt_upload).is_file():
            raise UserError(f"no upload {request.prompt_upload!r}; POST the audio to /api/uploads first")
        if request.lyrics is not None:  # an LRC is checked as the file the worker will write
            with tempfile.TemporaryDirectory() as tmp:
                lrc = Path(tmp) / "lyrics.lrc"
                lrc.write_text(request.lyrics, encoding="utf-8")
                timed = LRC_LINE.search(request.lyrics)
                b.lyrics(
                    1,
                    None if timed else request.lyrics,
                    lrc if timed else None,
                    request.label_seconds or request.seconds,
                )

    def cancel(self, job_id: str) -> dict:
        """Cancel a queued or running job (a finished one is left as it is)."""
        self.folder(job_id)
        if self._update(job_id, only_if="queued", status="cancelled", error="cancelled") is None:
            self._cancel.add(job_id)  # running (the worker stops it) or finished (nothing to do)
        return self.get(job_id)

    def save_upload(self, data: bytes, filename: str) -> str:
        """Keep uploaded prompt audio once it decodes as audio; returns its upload id."""
        suffix = Path(filename or "").suffix.lower()
        if suffix not in (".wav", ".flac", ".ogg", ".opus", ".mp3"):
            raise UserError("upload a .wav, .flac, .ogg, .opus or .mp3 file")
        if len(data) > MAX_UPLOAD_BYTES:
            raise UserError(f"the upload is over {MAX_UPLOAD_BYTES // 2**20} MB; give a shorter prompt")
        upload_id = f"{secrets.token_hex(6)}{suffix}"
        path = self.uploads_dir / upload_id
        path.write_bytes(data)
        try:
            audio = load_audio(path, self.info["sample_rate"])
        except AudioError as e:
            path.unlink()
            raise UserError(f"the upload is not usable audio: {e.reason}") from None
        if not math.isfinite(float(abs(audio).max())):
            path.unlink()
            raise UserError("the upload holds non-finite samples")
        return upload_id

    # --- the worker ----------------------------------------------------------------------------
    def close(self, timeout: float = 60.0) -> None:
        """Stop the worker; a running job stops after its current token batch and stays queued."""
        self._stop.set()
        self._queue.put(None)
        self._worker.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            job_id = self._queue.get()
            if job_id is None or self._stop.is_set():
                return
            if self._update(job_id, only_if="queued", status="running") is None:
                continue  # cancelled while it waited
            try:
                self._sample(job_id)
            except Stopped:
                stopping = self._stop.is_set() and job_id not in self._cancel
                reason = None if stopping else "cancelled"
                self._update(job_id, status="queued" if stopping else "cancelled", error=reason)
            except Exception as e:  # a crashed job is failed with its reason; the server keeps serving
                self._update(job_id, status="failed", error=" ".join(str(e).split()) or type(e).__name__)
            else:
                self._update(job_id, status="done", progress=self.progress.get(job_id, {}))
            self._cancel.discard(job_id)

    def _sample(self, job_id: str) -> None:
        job = self.get(job_id)
        request, folder = JobRequest(**job["request"]), self.jobs_dir / job_id

        def check_stop() -> None:
            if self._stop.is_set() or job_id in self._cancel:
                raise Stopped

        def on_progress(p: api.Progress) -> None:
            self.progress.setdefault(job_id, {})[str(p.level)] = {
                "done": p.done,
                "total": p.total,
                "tokens_per_s": None if p.tokens_per_s is None else round(p.tokens_per_s, 1),
                "eta_s": None if p.eta_s is None else round(p.eta_s, 1),
            }
            check_stop()

        def on_level(level: int, files: list[str]) -> None:
            ready = self.get(job_id)["files"]
            ready[str(level)] = [f"level_{level}_sample_{i}.wav" for i in range(len(files))]
            self._update(job_id, files=ready)
            check_stop()

        options = self._inputs(request, folder)
        meta = api.sample(
            self.model,
            folder / "out",
            request.seconds,
            request.artist,
            request.genre,
            request.n_samples,
            lowest=self.bundle.top if request.top_only else None,
            temperature=request.temperature,
            guidance=request.guidance,
            segments=request.segments,
            seed=job["seed"],
            device=self.device,
            label_seconds=request.label_seconds,
            on_progress=on_progress,
            on_level=on_level,
            **options,
        )
        self._update(job_id, alignment=bool(meta.get("alignment")), levels=meta["levels"])

    def _inputs(self, request: JobRequest, folder: Path) -> dict:
        """api.sample's keyword options for the request's lyrics, prompt and source song."""
        options: dict = {}
        if request.lyrics is not None and LRC_LINE.search(request.lyrics):
            options["lyrics_file"] = folder / "lyrics.lrc"
            if not options["lyrics_file"].exists():
                with atomic_path(options["lyrics_file"]) as tmp:
                    Path(tmp).write_text(request.lyrics, encoding="utf-8")
        elif request.lyrics is not None:
            options["lyrics"] = request.lyrics
        if request.prompt_upload is not None:
            options.update(prompt_audio=self.uploads_dir / request.prompt_upload, prompt_seconds=request.prompt_seconds)
        if request.source_job is not None:
            kept = folder / "input.codes"
            if not kept.exists():
                source = self.folder(request.source_job) / "out" / "codes.codes"
                keep_candidate(CodesFile.load(source), request.source_sample, self.bundle.top, kept)
            options["codes_file"] = kept
        return options

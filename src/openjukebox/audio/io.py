"""Reading and writing audio: soundfile (libsndfile) for formats, soxr for resampling.

Reads WAV, FLAC, Ogg Vorbis, Opus and MP3 (libsndfile >= 1.1), mixes to mono and resamples.
Every failure is an ``AudioError`` that names the file and the reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import UserError
from ..fileio import atomic_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")
SILENCE_PEAK = 1e-4  # -80 dBFS: a file whose peak stays below this is treated as silent


class AudioError(UserError):
    """A file that cannot be used as audio; ``reason`` says why in a few words."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


# What each container starts with; a file whose name promises one of these but whose bytes do not
# is refused before the decoder sees it (decoders print noise on garbage, e.g. mpg123 on text).
_MAGIC = {
    ".wav": (b"RIFF", b"RIFX", b"RF64"),
    ".flac": (b"fLaC", b"ID3"),
    ".ogg": (b"OggS",),
    ".oga": (b"OggS",),
    ".opus": (b"OggS",),
}
_DATA_SIZE = re.compile(r"^(?:data|SSND) : (\d+) \(should be (\d+)\)", re.MULTILINE)


def _looks_like(path: Path, head: bytes) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".mp3":  # an ID3 tag or an MPEG frame sync (11 set bits)
        return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
    return suffix not in _MAGIC or head.startswith(_MAGIC[suffix])


@contextlib.contextmanager
def _c_stderr_to(sink: list[str]) -> Iterator[None]:
    """Collect what C decoders print on file descriptor 2 (libFLAC, mpg123) instead of showing it."""
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (closed stderr): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            sink.extend(line for line in f.read().decode(errors="replace").splitlines() if line.strip())


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """Header information (sample rate, frames, channels) without decoding; raises AudioError."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file; give the path of a file")
    if not path.is_file():
        raise AudioError(path, "no such file; check the path")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise AudioError(path, f"cannot be read ({e.strerror}); check its permissions") from None
    if not head:
        raise AudioError(path, "the file is empty (0 bytes); give a file with audio in it")
    if not _looks_like(path, head):
        raise AudioError(
            path,
            f"not a readable audio file: it does not start as a {path.suffix[1:].upper()} file does (first bytes "
            f"{head[:4]!r}); check the file or its name (supported formats: WAV, FLAC, Ogg Vorbis, Opus, MP3)",
        )
    noise: list[str] = []
    try:
        with _c_stderr_to(noise):
            return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(
            path, f"not a readable audio file ({e}); supported formats: WAV, FLAC, Ogg Vorbis, Opus, MP3"
        ) from None


def _truncation(info: sf._SoundFileInfo, frames_read: int) -> str | None:
    """Why a decoded file is shorter than its header says, or None when it is whole."""
    for declared, actual in _DATA_SIZE.findall(info.extra_info or ""):
        declared, actual = int(declared), int(actual)
        if 0 < declared < 0xFFFFFFF0 and actual < declared:  # 0 and ~4 GB: a streamed file's placeholders
            return f"its header promises {declared} bytes of audio but the file holds {actual}"
    slack = max(2304, info.frames // 100)  # compressed formats' frame counts are estimates
    if frames_read < info.frames - slack:
        sr = info.samplerate
        return f"its header promises {info.frames / sr:.2f} s but only {frames_read / sr:.2f} s could be decoded"
    return None


def load_audio(
    path: str | os.PathLike,
    sample_rate: int,
    min_seconds: float = 0.0,
    allow_silent: bool = False,
) -> np.ndarray:
    """Decode a file to mono float32 at ``sample_rate``: shape (T,), values in [-1, 1].

    Raises AudioError for a missing, empty, unreadable, truncated, too short (< ``min_seconds``)
    or silent file.
    """
    info = audio_info(path)
    noise: list[str] = []
    try:
        with _c_stderr_to(noise):
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(path, f"decoding failed part-way ({e}); the file may be truncated or corrupt") from None
    if data.shape[0] == 0:
        raise AudioError(path, f"contains no audio samples ({info.format} header with 0 frames)")
    cut = _truncation(info, data.shape[0])
    if cut:
        raise AudioError(path, f"the file is truncated: {cut}; copy or export it again")
    mono = data.mean(axis=1)
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ").astype(np.float32)
    seconds = mono.shape[0] / sample_rate
    if seconds < min_seconds:
        raise AudioError(path, f"too short: {seconds:.2f} s, need at least {min_seconds:.2f} s")
    if not allow_silent and float(np.abs(mono).max()) < SILENCE_PEAK:
        raise AudioError(path, "silent (peak below -80 dBFS)")
    return np.ascontiguousarray(mono, dtype=np.float32)


def output_formats() -> dict[str, tuple[str, str]]:
    """File extension -> (libsndfile format, subtype) that ``save_audio`` can write here."""
    formats = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
    if "MPEG_LAYER_III" in sf.available_subtypes("MP3"):  # libsndfile >= 1.1 built with LAME
        formats[".mp3"] = ("MP3", "MPEG_LAYER_III")
    return formats


def check_output_format(path: str | os.PathLike) -> tuple[str, str]:
    """The (format, subtype) to write ``path`` with; an error naming the extensions that work here."""
    path = Path(path)
    formats = output_formats()
    if path.suffix.lower() not in formats:
        known = ", ".join(formats)
        missing = "" if ".mp3" in formats else " (MP3 needs libsndfile 1.1 or newer with MP3 support)"
        raise UserError(f"cannot write {path}: give a file name ending in {known}{missing}")
    return formats[path.suffix.lower()]


def save_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono (T,) or (T, C) float audio, atomically: 16-bit WAV or FLAC, Ogg Vorbis or MP3 (by
    extension; see ``output_formats``). Values are clipped to [-1, 1]; the file appears only once
    it is complete."""
    path = Path(path)
    fmt, subtype = check_output_format(path)
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(tmp, audio, sample_rate, format=fmt, subtype=subtype)
    return path

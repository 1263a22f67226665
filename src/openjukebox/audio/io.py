"""Reading and writing audio: soundfile (libsndfile) for formats, soxr for resampling.

Reads WAV, FLAC, Ogg Vorbis, Opus and MP3 (libsndfile >= 1.1), mixes to mono and resamples.
Every failure is an ``AudioError`` that names the file and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..fileio import atomic_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")
SILENCE_PEAK = 1e-4  # -80 dBFS: a file whose peak stays below this is treated as silent


class AudioError(ValueError):
    """A file that cannot be used as audio; ``reason`` says why in a few words."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """Header information (sample rate, frames, channels) without decoding; raises AudioError."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "no such file")
    if path.stat().st_size == 0:
        raise AudioError(path, "the file is empty (0 bytes)")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(
            path, f"not a readable audio file ({e}); supported formats: WAV, FLAC, Ogg Vorbis, Opus, MP3"
        ) from None


def load_audio(
    path: str | os.PathLike,
    sample_rate: int,
    min_seconds: float = 0.0,
    allow_silent: bool = False,
) -> np.ndarray:
    """Decode a file to mono float32 at ``sample_rate``: shape (T,), values in [-1, 1].

    Raises AudioError for a missing, empty, unreadable, too short (< ``min_seconds``) or silent file.
    """
    info = audio_info(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(path, f"decoding failed part-way ({e}); the file may be truncated or corrupt") from None
    if data.shape[0] == 0:
        raise AudioError(path, f"contains no audio samples ({info.format} header with 0 frames)")
    mono = data.mean(axis=1)
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ").astype(np.float32)
    seconds = mono.shape[0] / sample_rate
    if seconds < min_seconds:
        raise AudioError(path, f"too short: {seconds:.2f} s, need at least {min_seconds:.2f} s")
    if not allow_silent and float(np.abs(mono).max()) < SILENCE_PEAK:
        raise AudioError(path, "silent (peak below -80 dBFS)")
    return np.ascontiguousarray(mono, dtype=np.float32)


def save_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono (T,) or (T, C) float audio as 16-bit WAV or FLAC (by extension), atomically.

    Values are clipped to [-1, 1]; the file appears only once it is complete.
    """
    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {path}: use a .wav or .flac file name")
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(tmp, audio, sample_rate, format=fmt, subtype="PCM_16")
    return path

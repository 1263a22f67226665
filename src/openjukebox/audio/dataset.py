"""Training audio: find files, decode them once into a cache, hold out whole files, draw crops.

A data source is a folder (searched recursively) or a JSONL manifest whose lines hold at least
``{"path": ...}`` (relative to the manifest) plus labels such as artist, genre and lyrics.
Unusable files are skipped, counted and reported with their reasons; they never stop a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..fileio import atomic_path, read_text
from .io import AUDIO_EXTENSIONS, AudioError, load_audio


@dataclass(frozen=True)
class Track:
    """One usable file: its source path, decoded cache (.npy) and length in samples."""

    path: str
    cache: str
    n_samples: int
    meta: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class AudioSet:
    """Usable tracks split into train and validation files, plus what was skipped and why."""

    train: list[Track]
    val: list[Track]
    skipped: list[tuple[str, str]]  # (path, reason)

    def summary(self) -> str:
        return f"{len(self.train)} train files, {len(self.val)} validation files, {len(self.skipped)} skipped"


def read_sources(source: str | os.PathLike) -> list[dict]:
    """Entries ``{"path": abs_path, ...labels}`` from a folder or a JSONL manifest."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        if not files:
            raise UserError(
                f"{source}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)}); give a folder with "
                "audio files, or a JSONL manifest"
            )
        return [{"path": str(p)} for p in files]
    if not source.is_file():
        raise UserError(f"{source}: no such folder or manifest; check the path")
    entries = []
    for n, line in enumerate(read_text(source, "manifest").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            path = Path(entry["path"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(
                f"{source}:{n}: each manifest line must be a JSON object with a 'path' ({e}); fix that line"
            ) from None
        entry["path"] = str(path if path.is_absolute() else source.parent / path)
        entries.append(entry)
    if not entries:
        raise UserError(f"{source}: the manifest lists no files; give one JSON object with a 'path' per line")
    return entries


def _cache_name(path: str, sample_rate: int) -> str:
    st = os.stat(path)
    key = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{sample_rate}"
    return hashlib.sha256(key.encode()).hexdigest()[:24] + ".npy"


def cached_length(cache: Path) -> int | None:
    """Samples in a cache entry (.npy), or None when there is none. A damaged entry (a full disk, a
    copy cut short) is removed, so that it is built again instead of stopping the run."""
    if not cache.exists():
        return None
    try:
        array = np.load(cache, mmap_mode="r")
        if array.ndim != 1:
            raise ValueError(f"shape {array.shape}")
        return int(array.shape[0])
    except (ValueError, OSError, EOFError) as e:
        print(f"cache entry {cache} is damaged ({e}); building it again", file=sys.stderr)
        cache.unlink(missing_ok=True)
        return None


def prepare_audio(
    source: str | os.PathLike,
    sample_rate: int,
    cache_dir: str | os.PathLike,
    min_samples: int,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress=None,
) -> AudioSet:
    """Decode every file of ``source`` once into ``cache_dir`` and split train/validation by file.

    Files shorter than ``min_samples`` (one training crop), unreadable, empty or silent are skipped.
    Cached files are reused while the source file is unchanged. ``progress`` wraps the file list.
    """
    entries = read_sources(source)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tracks, skipped = [], []
    for entry in progress(entries) if progress else entries:
        path = entry["path"]
        try:
            cache = cache_dir / _cache_name(path, sample_rate)
            n = cached_length(cache)
            if n is None:
                audio = load_audio(path, sample_rate, min_seconds=min_samples / sample_rate)
                with atomic_path(cache) as tmp, open(tmp, "wb") as f:
                    np.save(f, audio)
                n = audio.shape[0]
        except (AudioError, OSError) as e:
            skipped.append((path, e.reason if isinstance(e, AudioError) else str(e)))
            continue
        meta = {k: v for k, v in entry.items() if k != "path"}
        tracks.append(Track(path, str(cache), n, meta))
    if not tracks:
        reasons = "; ".join(f"{p}: {r}" for p, r in skipped[:5])
        raise ValueError(f"no usable audio in {source} ({len(skipped)} files skipped: {reasons})")
    order = np.random.default_rng(seed).permutation(len(tracks))
    n_val = int(round(val_fraction * len(tracks))) if len(tracks) > 1 else 0
    n_val = max(n_val, 1) if val_fraction > 0 and len(tracks) > 1 else n_val
    val = [tracks[i] for i in sorted(order[:n_val])]
    train = [tracks[i] for i in sorted(order[n_val:])]
    return AudioSet(train, val, skipped)


class CropSampler:
    """Random fixed-length crops from tracks, files drawn in proportion to their length.

    A batch depends only on (seed, step, rank), so a resumed run sees exactly the same data.
    """

    def __init__(self, tracks: list[Track], length: int, seed: int = 0):
        usable = [t for t in tracks if t.n_samples >= length]
        if not usable:
            raise ValueError(f"no training file is at least {length} samples long")
        self.tracks, self.length, self.seed = usable, length, seed
        self._arrays = [np.load(t.cache, mmap_mode="r") for t in usable]
        weights = np.array([t.n_samples - length + 1 for t in usable], dtype=np.float64)
        self._p = weights / weights.sum()

    def batch(self, batch_size: int, step: int, rank: int = 0) -> torch.Tensor:
        """Audio crops (batch_size, 1, length) for this step and rank."""
        rng = np.random.default_rng([self.seed, step, rank])
        files = rng.choice(len(self.tracks), size=batch_size, p=self._p)
        out = np.empty((batch_size, 1, self.length), dtype=np.float32)
        for i, f in enumerate(files):
            start = rng.integers(0, self.tracks[f].n_samples - self.length + 1)
            out[i, 0] = self._arrays[f][start : start + self.length]
        return torch.from_numpy(out)


def fixed_crops(tracks: list[Track], length: int, per_file: int) -> torch.Tensor:
    """Evenly spaced crops (M, 1, length) from each track: the same validation set every time."""
    crops = []
    for t in tracks:
        if t.n_samples < length:
            continue
        arr = np.load(t.cache, mmap_mode="r")
        for start in np.linspace(0, t.n_samples - length, per_file).astype(int):
            crops.append(np.array(arr[start : start + length]))
    if not crops:
        raise ValueError(f"no validation file is at least {length} samples long")
    return torch.from_numpy(np.stack(crops)).unsqueeze(1)

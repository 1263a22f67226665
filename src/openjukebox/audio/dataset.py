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
    """Entries ``{"path": abs_path, "piece": ..., ...labels}`` from a folder or a JSONL manifest.

    ``piece`` is the manifest's own, else the path as the source names it (relative to the folder,
    or as written in the manifest), so that the split does not depend on where the data lives.
    """
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        if not files:
            raise UserError(
                f"{source}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)}); give a folder with "
                "audio files, or a JSONL manifest"
            )
        return [{"path": str(p), "piece": p.relative_to(source).as_posix()} for p in files]
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
        entry.setdefault("piece", path.as_posix())
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
    """Decode every file of ``source`` once into ``cache_dir`` and split train/validation by piece.

    A manifest entry's ``piece`` groups the files of one piece (renderings, formats): they land on
    the same side of the split; without it, each file is its own piece. See ``held_out_pieces``.
    A file listed twice is used once. Files shorter than ``min_samples`` (one training crop),
    unreadable, empty or silent are skipped. Cached files are reused while the source file is
    unchanged. ``progress`` wraps the file list.
    """
    entries = read_sources(source)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tracks, skipped, seen = [], [], set()
    for entry in progress(entries) if progress else entries:
        path = entry["path"]
        if os.path.abspath(path) in seen:
            skipped.append((path, "listed more than once in the data; used once"))
            continue
        seen.add(os.path.abspath(path))
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
    held = held_out_pieces([piece_of(t) for t in tracks], val_fraction, seed)
    val = [t for t in tracks if piece_of(t) in held]
    train = [t for t in tracks if piece_of(t) not in held]
    return AudioSet(train, val, skipped)


def piece_of(track: Track) -> str:
    """The piece a track renders (see ``read_sources``)."""
    return str(track.meta.get("piece") or track.path)


def held_out_pieces(pieces: list[str], val_fraction: float, seed: int = 0) -> set[str]:
    """The pieces held out for validation: each piece whose hash (with ``seed``) falls below
    ``val_fraction``, at least one and never all of them (none when there is only one piece).

    A piece's side depends only on its name and the seed, not on which other files were usable, so
    the codec and every prior trained on the same data hold out the same pieces.
    """
    distinct = sorted(set(pieces))
    if val_fraction <= 0 or len(distinct) < 2:
        return set()
    unit = {p: int.from_bytes(hashlib.sha256(f"{seed}|{p}".encode()).digest()[:8], "big") / 2**64 for p in distinct}
    held = {p for p in distinct if unit[p] < val_fraction} or {min(distinct, key=unit.get)}
    if len(held) == len(distinct):
        held.discard(max(held, key=unit.get))
    return held


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

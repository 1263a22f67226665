"""Sampling a whole song: levels top to bottom, a resumable codes file written after every window.

The state is an ordinary codes file (``openjukebox.codes``) whose ``extra`` holds the sampling
settings, labels and progress; sampling again with the same file resumes from its last window and
gives the same codes as an uninterrupted run (each window's randomness depends only on the seed).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch

from ..codes import CodesFile
from ..prior.model import Prior
from .engine import HOP_FRACTIONS, LevelSettings, Window, sample_level


def song_lengths(priors: dict[int, Prior], seconds: float) -> tuple[int, dict[int, int]]:
    """Audio samples (``seconds`` rounded up to a multiple of the top hop) and codes per level."""
    top = max(priors)
    sr, top_hop = priors[top].cfg.sample_rate, priors[top].cfg.hop_length
    n_samples = max(1, math.ceil(seconds * sr / top_hop)) * top_hop
    return n_samples, {lv: n_samples // p.cfg.hop_length for lv, p in priors.items()}


def sample_song(
    priors: dict[int, Prior],
    labels: torch.Tensor,
    seconds: float,
    seed: int,
    state_path: str | os.PathLike,
    settings: dict[int, LevelSettings] | None = None,
    codec: dict | None = None,
    progress: Callable[[int, Window, int], None] | None = None,
) -> CodesFile:
    """Sample codes for every level of ``priors`` ({level: prior}, the top one unconditioned by codes).

    ``labels`` (N, 4+G): one label row per sample; its total length is set from ``seconds``.
    ``state_path`` is written after every window; if it exists and matches, sampling resumes there.
    ``codec`` records the VQ-VAE ({"path", "id"}) so the codes can be decoded later.
    """
    levels = sorted(priors, reverse=True)
    n_samples, totals = song_lengths(priors, seconds)
    settings = settings or {lv: LevelSettings(hop_fraction=HOP_FRACTIONS.get(lv, 0.5)) for lv in levels}
    y = labels.clone()
    y[:, 0] = n_samples
    n = y.shape[0]
    run = {
        "seed": seed,
        "seconds": seconds,
        "labels": y.tolist(),
        "settings": {str(lv): dataclasses.asdict(settings[lv]) for lv in levels},
    }
    state = _resume_state(state_path, run)
    codes = dict(state.codes) if state else {}
    hops = tuple(priors[lv].cfg.hop_length for lv in sorted(priors))
    sr = priors[levels[0]].cfg.sample_rate

    def save(level: int, window: Window, partial: torch.Tensor) -> None:
        codes[level] = partial.cpu()
        done = {str(lv): int(c.shape[1]) for lv, c in codes.items()}
        CodesFile(codes, sr, n_samples, hops, model=codec or {}, extra={"sampling": run, "done": done}).save(state_path)
        if progress is not None:
            progress(level, window, totals[level])

    for lv in levels:
        have = codes.get(lv)
        if have is not None and have.shape[1] == totals[lv]:
            continue
        above = codes.get(lv + 1) if priors[lv].conditioner is not None else None
        codes[lv] = sample_level(
            priors[lv],
            n,
            totals[lv],
            y if priors[lv].labels is not None else None,
            above,
            settings[lv],
            seed,
            codes=have,
            on_window=lambda w, c, lv=lv: save(lv, w, c),
        ).cpu()
    return CodesFile.load(state_path)


def _resume_state(path: str | os.PathLike, run: dict) -> CodesFile | None:
    """The saved state of an identical run, or None; a state of a different run is an error."""
    if not Path(path).exists():
        return None
    state = CodesFile.load(path)
    saved = state.extra.get("sampling")
    if saved != run:
        changed = sorted(k for k in run if saved is None or saved.get(k) != run[k])
        raise ValueError(
            f"{path} holds another sampling run (different {', '.join(changed)}); "
            "use a new output, or the same settings to resume it"
        )
    return state

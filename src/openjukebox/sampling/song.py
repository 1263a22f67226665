"""Sampling a whole song: levels top to bottom, a resumable codes file written after every window.

Levels are loaded one at a time (only the prior being sampled is in memory). The state is an
ordinary codes file (``openjukebox.codes``) whose ``extra`` holds the sampling settings, labels and
progress; sampling again with the same file resumes from its last window and gives the same codes
as an uninterrupted run (each window's randomness depends only on the seed).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch

from ..codes import CodesFile
from ..errors import UserError
from ..lyrics.timed import SongLyrics
from ..prior.config import PriorConfig
from ..prior.model import Prior
from .engine import HOP_FRACTIONS, LevelSettings, Window, sample_level
from .sampler import sample_window


def song_lengths(configs: dict[int, PriorConfig], seconds: float) -> tuple[int, dict[int, int]]:
    """Audio samples (``seconds`` rounded up to a multiple of the top hop) and codes per level."""
    top = configs[max(configs)]
    codes = seconds * top.sample_rate / top.hop_length
    n_samples = max(1, math.ceil(codes - 1e-6)) * top.hop_length  # 345.00000000000006 codes is 345
    return n_samples, {lv: n_samples // c.hop_length for lv, c in configs.items()}


def codes_to_keep(
    configs: dict[int, PriorConfig], codes: CodesFile, name: str, n: int, seconds: float, down_to: int | None = None
) -> tuple[dict[int, torch.Tensor], str]:
    """({level: (n, P_L) codes}, mode) of a codes file (called ``name`` in errors) for ``n`` songs of
    ``seconds``: a complete song's codes are upsampled ("upsample": its top level, or its levels
    down to ``down_to``, are kept and the levels below re-sampled); a shorter one is continued
    ("continue": every level kept and extended). A song is complete when its top level has all
    its codes, so a file that ``encode`` made of audio of any length is one."""
    top = max(configs)
    if down_to is not None and (isinstance(down_to, bool) or not isinstance(down_to, int) or not 0 < down_to <= top):
        raise UserError(f"--keep-down-to must be a level from 1 to {top}, not {down_to!r}: give one of them")
    given = {lv: c if c.shape[0] == n else c[:1].expand(n, -1) for lv, c in codes.codes.items() if lv in configs}
    length, totals = song_lengths(configs, seconds)
    if codes.n_samples < length and (top not in given or given[top].shape[1] < totals[top]):
        if down_to is not None:
            raise UserError(f"{name} is shorter than the song; give no --seconds with --keep-down-to")
        return given, "continue"
    low = top if down_to is None else down_to  # the lowest level kept
    for lv in range(top, low - 1, -1):
        if lv not in given:
            raise UserError(f"{name} has no level-{lv} codes to keep; give a file that has them")
        if lv < top and given[lv].shape[1] < totals[lv]:  # (an unfinished top level is sampled on)
            raise UserError(
                f"{name}'s level-{lv} codes are incomplete ({given[lv].shape[1]} of {totals[lv]}): resume the run "
                f"that made them first, or give --keep-down-to {lv + 1}"
            )
    return {lv: c for lv, c in given.items() if lv >= low}, "upsample"


def check_duration(configs: dict[int, PriorConfig], seconds: float) -> None:
    """Fail early, with the limits, when a timed prior cannot make a song of this length."""
    for cfg in configs.values():
        lc = cfg.labels
        if lc is not None and lc.timing and not lc.min_duration <= seconds < lc.max_duration:
            raise ValueError(
                f"--seconds {seconds:g} is outside what the level-{cfg.level} prior was trained for: "
                f"give from {lc.min_duration:g} s to under {lc.max_duration:g} s"
            )


def sample_song(
    configs: dict[int, PriorConfig],
    load: Callable[[int], Prior],
    n: int,
    labels: dict[int, torch.Tensor | None],
    seconds: float,
    seed: int,
    state_path: str | os.PathLike,
    settings: dict[int, LevelSettings] | None = None,
    lowest: int | None = None,
    codec: dict | None = None,
    on_window: Callable[[int, Window, int], None] | None = None,
    on_tokens: Callable[[int, int], None] | None = None,
    given: dict[int, torch.Tensor] | None = None,
    identity: dict | None = None,
    label_seconds: float | None = None,
    lyrics: list[SongLyrics] | None = None,
    fast: bool = True,
    hop_lengths: tuple[int, ...] | None = None,
) -> CodesFile:
    """Sample ``n`` songs' codes from the top level down to ``lowest`` (default: all levels).

    ``configs`` has every level's config (they define the run, whatever ``lowest`` is, so a
    top-level preview can later be continued down). ``load(level)`` returns that level's prior,
    called once per level still to sample. ``labels[level]``: (n, 4+G) label rows for priors with
    labels (the total length is set here), else None. ``state_path`` is written after every
    window; if it exists and matches, sampling resumes there. ``codec`` records the VQ-VAE
    ({"path", "id"}) so the codes can be decoded later. ``on_window(level, window, total)`` and
    ``on_tokens(level, count)`` report progress. ``given`` ({level: (n, P_L)}) are codes to keep and
    continue after: a primed prompt, a song to continue, or complete upper levels to upsample.
    ``identity`` names the models; a saved state made by other models is not resumed.
    ``label_seconds`` is the song length the timing labels announce (default ``seconds``): longer
    when a song is written in several passes, as the co-composer does. ``lyrics``: one per song,
    for a top prior conditioned on lyrics. ``fast=False`` samples through the reference per-token
    path (for comparisons). ``hop_lengths``: the codec's hop of every level, recorded with the codes
    (default: the priors' hops, which then must start at level 0).
    """
    label_seconds = seconds if label_seconds is None else label_seconds
    check_duration(configs, label_seconds)
    levels = sorted(configs, reverse=True)
    n_samples, totals = song_lengths(configs, seconds)
    settings = settings or {lv: LevelSettings(hop_fraction=HOP_FRACTIONS.get(lv, 0.5)) for lv in levels}
    ys = {lv: None if y is None else y.clone() for lv, y in labels.items()}
    label_samples = song_lengths(configs, max(label_seconds, seconds))[0]
    for y in ys.values():
        if y is not None:
            y[:, 0] = label_samples
    given = {lv: c.long().cpu() for lv, c in (given or {}).items()}
    for lv, c in given.items():
        if lv not in configs or c.shape[0] != n or c.shape[1] > totals[lv]:
            raise ValueError(
                f"given level-{lv} codes of shape {tuple(c.shape)} do not fit {n} songs of {totals.get(lv)} codes"
            )
    run = {
        "models": identity or {},
        "given": {
            str(lv): [c.shape[1], hashlib.sha256(c.numpy().tobytes()).hexdigest()[:16]] for lv, c in given.items()
        },
        "seed": seed,
        "seconds": seconds,
        "n_samples": n,
        "labels": {str(lv): None if y is None else y.tolist() for lv, y in ys.items()},
        "lyrics": None if lyrics is None else _digest([[s.tokens, s.times] for s in lyrics]),
        "settings": {str(lv): dataclasses.asdict(settings[lv]) for lv in levels},
    }
    state = _resume_state(state_path, run)
    codes = {**given, **(state.codes if state else {})}  # what a saved run sampled supersedes the prompt
    if hop_lengths is None and min(configs) != 0:
        raise ValueError("the priors start above level 0: give the codec's hop_lengths")
    hops = hop_lengths or tuple(configs[lv].hop_length for lv in sorted(configs))
    sr = configs[levels[0]].sample_rate

    def write() -> None:
        done = {str(lv): int(c.shape[1]) for lv, c in codes.items()}
        CodesFile(codes, sr, n_samples, hops, model=codec or {}, extra={"sampling": run, "done": done}).save(state_path)

    def save(level: int, window: Window, partial: torch.Tensor) -> None:
        codes[level] = partial.cpu()
        write()
        if on_window is not None:
            on_window(level, window, totals[level])

    if state is None:
        write()
    for lv in levels if lowest is None else [lv for lv in levels if lv >= lowest]:
        have = codes.get(lv)
        if have is not None and have.shape[1] == totals[lv]:
            continue
        prior = load(lv)
        above = codes.get(lv + 1) if prior.conditioner is not None else None
        codes[lv] = sample_level(
            prior,
            n,
            totals[lv],
            ys.get(lv),
            above,
            settings[lv],
            seed,
            codes=have,
            on_window=lambda w, c, lv=lv: save(lv, w, c),
            on_tokens=None if on_tokens is None else lambda k, lv=lv: on_tokens(lv, k),
            lyrics=lyrics if configs[lv].lyrics is not None else None,
            sampler=sample_window if fast else functools.partial(sample_window, fast=False),
        ).cpu()
        del prior
    return CodesFile.load(state_path)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


def _resume_state(path: str | os.PathLike, run: dict) -> CodesFile | None:
    """The saved state of an identical run, or None; a state of a different run is an error."""
    if not Path(path).exists():
        return None
    state = CodesFile.load(path)
    saved = state.extra.get("sampling")
    changed = ["sampling"] if saved is None else sorted(k for k in run if k != "settings" and saved.get(k) != run[k])
    if saved is not None:  # settings count for the levels begun; the others may be sampled otherwise
        begun, defaults = {str(lv) for lv in state.codes}, dataclasses.asdict(LevelSettings())
        of = lambda d: {lv: {**defaults, **v} for lv, v in d.get("settings", {}).items() if lv in begun}  # noqa: E731
        before, now = of(saved), of(run)
        for lv in sorted(before, reverse=True):
            was, new = before[lv], now.get(lv, {})
            diff = [f"{k} {was[k]!r} there, {new.get(k)!r} now" for k in was if was[k] != new.get(k)]
            changed += [f"level-{lv} settings: {', '.join(diff)}"] if diff else []
    if changed:
        raise ValueError(
            f"{path} holds another sampling run (different {'; '.join(changed)}); "
            "use a new output, or the same settings to resume it"
        )
    return state

"""Windowed sampling of one level: songs of any length in overlapping context windows.

Windows start every ``hop_fraction * n_ctx`` codes; the last one is moved back to end exactly at
the song's end. The first window is sampled from scratch; every later one is primed on the codes
the earlier windows already produced and samples only the new ones, so every position is sampled
exactly once. Upsampler windows are conditioned on the matching slice of the level above; label
rows are recomputed per window (offset, timing). Each window draws from its own generator,
seeded from (seed, level, window), so a run resumed after any window equals an uninterrupted one.

Upsamplers can sample a level in ``segments`` (``LevelSettings.segments``): the level is cut into
that many stretches sampled side by side as one batch, each a chain of windows as above. Each
stretch after the first starts ``n_ctx / 2`` codes or more before its seam and those codes are
dropped, so at the seam it is already under way; the two sides of a seam are sampled apart, both
conditioned on the level above. It trades exactness for steps: the level takes about 1/segments of
the sequential steps. Such a level is saved when it is complete (an interrupted one starts again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..lyrics.timed import SongLyrics
from ..prior.conditioning import forget_labels
from ..prior.config import PriorConfig
from ..prior.model import Prior
from .fast import prepare_prior
from .sampler import sample_window

HOP_FRACTIONS = {0: 0.5, 1: 0.5, 2: 0.125}  # the original's defaults per level


@dataclass(frozen=True)
class Window:
    """Codes [start, end) of one window; [start, primed) were sampled by earlier windows."""

    index: int
    start: int
    end: int
    primed: int


@dataclass(frozen=True)
class LevelSettings:
    temperature: float = 0.99
    top_k: int = 0
    top_p: float = 0.0
    hop_fraction: float = 0.5
    guidance: float = 1.0  # classifier-free guidance on artist and genre; 1: none
    chunk_size: int = 64  # prefill chunk: bounds the memory of priming
    max_batch: int = 16  # samples drawn together; more are split into batches
    segments: int = 1  # upsamplers: stretches of the level sampled side by side (see the module's notes)
    quantize: str = "none"  # "int8": sample_level samples with int8 linear layers (CPU; sampling.fast.prepare_prior)


def window_starts(total: int, n_ctx: int, hop: int) -> list[int]:
    """0, hop, 2 hop, ... with the last start moved to ``total - n_ctx`` (the original's get_starts)."""
    if total <= n_ctx:
        return [0]
    starts = []
    for start in range(0, total - n_ctx + hop, hop):
        starts.append(min(start, total - n_ctx))
        if start + n_ctx >= total:
            break
    return starts


def plan_windows(total: int, n_ctx: int, hop: int) -> list[Window]:
    """The windows covering ``total`` codes; each samples [max(primed, start), end) exactly once."""
    windows, done = [], 0
    for i, start in enumerate(window_starts(total, n_ctx, hop)):
        end = min(start + n_ctx, total)
        windows.append(Window(i, start, end, done))
        done = end
    return windows


def window_labels(
    y: torch.Tensor, start: int, cfg: PriorConfig, lyrics: list[SongLyrics] | None = None, shift: float = 0.0
) -> tuple[torch.Tensor, list[list[int]] | None]:
    """The song's label rows (N, 4+G[+n_tokens]) for the window starting at code ``start``.

    As in the original's ``get_y``, the window's start (in audio samples) is added to the offset the
    row already carries (a song whose rows start at 10 s is timed from 10 s), the length becomes
    the prior's ``sample_length`` and, for a lyrics prior, the window's lyric tokens are filled in.
    Also returns the song positions of those tokens (-1: padding), or None without lyrics. ``shift``
    (seconds) moves the point whose character centres the lyric window (see ``SongLyrics.window``)."""
    y = y.clone()
    y[:, 1] += start * cfg.hop_length
    y[:, 2] = cfg.sample_length
    if cfg.lyrics is None:
        return y, None
    n = cfg.lyrics.n_tokens
    songs = lyrics if lyrics is not None else [SongLyrics(())] * y.shape[0]  # no lyrics: all padding
    indices = []
    for i, song in enumerate(songs):
        tokens, idx = song.window(n, int(y[i, 0]), int(y[i, 1]), int(y[i, 2]), cfg.sample_rate, shift)
        y[i, -n:] = torch.tensor(tokens)
        indices.append(idx)
    return y, indices


def window_seed(seed: int, level: int, index: int) -> int:
    return (seed * 1_000_003 + level * 10_007 + index) % (2**63)


def sample_level(
    prior: Prior,
    n_samples: int,
    total: int,
    y: torch.Tensor | None,
    above: torch.Tensor | None,
    settings: LevelSettings,
    seed: int,
    codes: torch.Tensor | None = None,
    on_window: Callable[[Window, torch.Tensor], None] | None = None,
    on_tokens: Callable[[int], None] | None = None,
    sampler: Callable = sample_window,
    lyrics: list[SongLyrics] | None = None,
) -> torch.Tensor:
    """Codes (n_samples, total) of ``prior``'s level, window by window.

    ``y`` (n_samples, 4+G): the song's label rows (total length in samples); ``above``
    (n_samples, total / upsample): the level above, for upsamplers. ``codes`` (n_samples, P) are
    given: a prompt, or what an interrupted run had sampled. They are kept, and sampling continues
    after them (windows ending at or before P are skipped; the one containing P is primed on them).
    ``on_window(window, codes_so_far)`` runs after each window (to save state); ``on_tokens(k)``
    is told of every k new tokens (summed over the batch). ``lyrics``: each song's lyrics, for a
    lyrics prior (each window gets its own lyric tokens). With ``settings.quantize`` "int8" the
    prior samples with int8 linear layers (a quantized copy; the argument is left as it was).
    """
    prior = prepare_prior(prior, settings.quantize)
    cfg = prior.cfg
    n_ctx, level = cfg.n_ctx, cfg.level
    hop = max(1, int(settings.hop_fraction * n_ctx))
    device = prior.pos_emb.device
    out = torch.zeros(n_samples, total, dtype=torch.long, device=device)
    done = 0 if codes is None else codes.shape[1]
    if done:
        out[:, :done] = codes
    up = cfg.conditioner.upsample if cfg.conditioner else None
    plan = segment_plan(total, n_ctx, up, settings.segments) if up and not done and lyrics is None else None
    if plan is not None:
        return _sample_segments(prior, plan, n_samples, y, above, settings, seed, on_window, on_tokens, sampler)
    for window in plan_windows(total, n_ctx, hop):
        if window.end <= done:
            continue
        if up and window.start % up:
            raise ValueError(f"window start {window.start} is not a multiple of the upsampling factor {up}")
        gen = torch.Generator(device=device).manual_seed(window_seed(seed, level, window.index))
        for b in range(0, n_samples, settings.max_batch):
            rows = slice(b, b + settings.max_batch)
            songs = None if lyrics is None else lyrics[rows]
            y_w = None if y is None else window_labels(y[rows], window.start, cfg, songs)[0].to(device)
            above_w = None if up is None else above[rows, window.start // up : window.start // up + n_ctx // up]
            above_w = None if above_w is None else above_w.to(device)
            known = min(max(window.primed, done), window.end)  # given codes are never re-sampled
            prompt = out[rows, window.start : known]
            out[rows, window.start : window.end] = _sample_rows(
                prior, sampler, settings, y_w, above_w, prompt, window.end - window.start, gen, on_tokens
            )
        if on_window is not None:
            on_window(window, out[:, : window.end])
    return out


def _sample_rows(prior: Prior, sampler, settings: LevelSettings, y_w, above_w, prompt, length, gen, on_tokens):
    """One window of a batch of rows: their conditioning (and, with guidance, the same rows with
    the labels unknown), sampled after ``prompt`` (rows, P) to ``length`` codes."""
    cond = prior.condition(y_w, above_w, batch=prompt.shape[0])
    guide = {}
    if settings.guidance != 1.0 and y_w is not None:
        unknown = forget_labels(y_w, prior.cfg.labels.max_bow_genre_size)
        guide = {"uncond": prior.condition(unknown, above_w), "guidance": settings.guidance}
    batch = prompt.shape[0]
    return sampler(
        prior,
        cond,
        length,
        prompt=prompt if prompt.shape[1] else None,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        generator=gen,
        chunk_size=settings.chunk_size,
        progress=None if on_tokens is None else lambda k: on_tokens(k * batch),
        **guide,
    )


@dataclass(frozen=True)
class SegmentPlan:
    """``count`` stretches of ``length`` codes starting every ``stride`` codes, the last ending at the
    level's end. Stretch s keeps [s*stride + overlap, (s+1)*stride + overlap) (the first keeps from
    0, the last to the end): its first ``overlap`` codes run it in and are dropped."""

    count: int
    length: int
    stride: int
    overlap: int

    def kept(self, s: int) -> tuple[int, int]:
        """The codes of the level that stretch ``s`` provides, as (start, end) in the level."""
        start = 0 if s == 0 else s * self.stride + self.overlap
        return start, (s + 1) * self.stride + self.overlap if s + 1 < self.count else self.stride * s + self.length


def segment_plan(total: int, n_ctx: int, up: int, segments: int) -> SegmentPlan | None:
    """How to sample ``total`` codes in up to ``segments`` stretches of at least 2 n_ctx codes, with
    a run-in of at least n_ctx / 2 codes; starts are multiples of ``up``. None: one stretch."""
    run_in = n_ctx // 2
    count = min(segments, (total - run_in) // (2 * n_ctx))
    if count < 2:
        return None
    stride = (total - run_in) // count // up * up
    length = total - (count - 1) * stride
    return SegmentPlan(count, length, stride, length - stride)


def _sample_segments(
    prior: Prior, plan: SegmentPlan, n: int, y, above, settings: LevelSettings, seed, on_window, on_tokens, sampler
) -> torch.Tensor:
    """``sample_level`` in stretches: every song's ``plan.count`` stretches are rows of one batch
    (split at ``settings.max_batch`` rows), sampled window by window in step."""
    cfg = prior.cfg
    n_ctx, up, device = cfg.n_ctx, cfg.conditioner.upsample, prior.pos_emb.device
    rows = [(i, s) for i in range(n) for s in range(plan.count)]  # (song, stretch)
    offsets = torch.tensor([s * plan.stride for _, s in rows])
    songs = torch.tensor([i for i, _ in rows])
    stretch = torch.zeros(len(rows), plan.length, dtype=torch.long, device=device)
    total = plan.stride * (plan.count - 1) + plan.length
    reported = [0, 0]  # codes sampled, codes of the level reported: progress counts the level's codes

    def tell(k: int) -> None:
        reported[0] += k
        now = reported[0] * n * total // (len(rows) * plan.length)
        if now > reported[1]:
            on_tokens(now - reported[1])
            reported[1] = now

    windows = plan_windows(plan.length, n_ctx, max(1, int(settings.hop_fraction * n_ctx)))
    for window in windows:
        gen = torch.Generator(device=device).manual_seed(window_seed(seed, cfg.level, window.index))
        for b in range(0, len(rows), settings.max_batch):
            part = slice(b, b + settings.max_batch)
            pairs = list(zip(songs[part].tolist(), (offsets[part] + window.start).tolist(), strict=True))
            y_w = None if y is None else torch.cat([window_labels(y[i : i + 1], st, cfg)[0] for i, st in pairs])
            y_w = None if y_w is None else y_w.to(device)
            above_w = torch.stack([above[i, st // up : st // up + n_ctx // up] for i, st in pairs]).to(device)
            prompt = stretch[part, window.start : window.primed]
            stretch[part, window.start : window.end] = _sample_rows(
                prior,
                sampler,
                settings,
                y_w,
                above_w,
                prompt,
                window.end - window.start,
                gen,
                None if on_tokens is None else tell,
            )
    out = torch.zeros(n, total, dtype=torch.long, device=device)
    for r, (i, s) in enumerate(rows):
        a, e = plan.kept(s)
        out[i, a:e] = stretch[r, a - s * plan.stride : e - s * plan.stride]
    if on_window is not None:
        on_window(Window(windows[-1].index, total - (windows[-1].end - windows[-1].start), total, 0), out)
    return out

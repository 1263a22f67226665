"""Lyric alignment of sampled songs: the lyrics prior's attention, window by window, turned into times.

For every top-level window the prior is run teacher-forced on the sampled codes, recording the
attention of the alignment layer; the head's weights (codes x window characters) go into a
song-wide matrix at the characters' song positions, as in the original's ``get_alignment``. With
``shifts``, each window runs once per shift of its lyric window (seconds, as training's
``--lyric-jitter`` moves it) and the matrix is the mean of those runs: the head's pull towards
each window's centre is spread over the shifts (measured on the shipped model: no gain on songs
it did not train on, so the default is one placement, as the original). One window's
weights are in memory at a time. The head is the one asked for, else the config's
``alignment_layer``/``alignment_head``, else the most monotonic one on the first windows.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..lyrics.alignment import FRAME_RATE, Alignment, SongAttention, choose_head, expected_centres
from ..lyrics.timed import SongLyrics
from ..lyrics.tokenizer import Tokenizer
from ..prior.model import Prior
from .engine import Window, plan_windows, window_labels

ALIGN_SPREAD = 1.0  # seconds; chosen on the shipped model's training songs (benchmarks/eval_model.py)
ALIGN_SHIFTS = (0.0,)  # seconds: lyric-window shifts averaged (docs/measurements/alignment_shifted_windows_rule.md)


@torch.no_grad()
def align_songs(
    prior: Prior,
    codes: torch.Tensor,
    y: torch.Tensor,
    lyrics: list[SongLyrics],
    tokenizer: Tokenizer,
    hop_fraction: float,
    head: tuple[int, int] | None = None,
    probe_windows: int = 4,
    spread: float = ALIGN_SPREAD,
    shifts: tuple[float, ...] = ALIGN_SHIFTS,
) -> tuple[list[tuple[Alignment, np.ndarray]], dict]:
    """Alignments of ``lyrics`` to the top-level ``codes`` (n, T) sampled with label rows ``y``.

    Returns [(alignment, song attention matrix (frames, characters))] per song, and what was used:
    {"layer", "head", "chosen", "score", "frame_seconds", "spread", "shifts"}. Without a head (given or the
    model's), the most monotonic one on the first ``probe_windows`` windows of the first song is used.
    ``spread`` (seconds): how far a character's time may stray from where its window put it (the
    linear rule, or the given times) before a Gaussian prior outweighs the attention; 0: none.
    ``shifts`` (seconds): the lyric window's shifts whose attention is averaged (see the module).
    """
    if not spread >= 0:  # NaN too; before any window is run
        raise ValueError(f"the alignment's spread must be 0 or more seconds, not {spread}")
    given = shifts
    try:
        shifts = tuple(float(s) for s in shifts)
    except (TypeError, ValueError):
        shifts = ()
    if not shifts or not np.all(np.isfinite(shifts)):
        raise ValueError(f"the alignment needs one or more finite lyric-window shifts (seconds), not {given!r}")
    cfg = prior.cfg
    windows = plan_windows(codes.shape[1], cfg.n_ctx, max(1, int(hop_fraction * cfg.n_ctx)))
    lc = cfg.lyrics
    if head is None and lc.alignment_layer is not None:
        head = (lc.alignment_layer, lc.alignment_head or 0)
        used = {"layer": head[0], "head": head[1], "chosen": "the model's"}
    elif head is None:
        probes = {layer: [] for layer in prior.lyric_layers()}
        for w in windows[:probe_windows]:
            for layer, att in _window_attention(prior, codes, y, lyrics, w, probes)[0].items():
                probes[layer].append(att[0])
        layer, h, score = choose_head(probes)
        head = (layer, h)
        used = {"layer": layer, "head": h, "chosen": "automatically (most monotonic)", "score": round(score, 4)}
    else:
        used = {"layer": head[0], "head": head[1], "chosen": "given"}
    used["frame_seconds"] = frame_pool(cfg) * cfg.hop_length / cfg.sample_rate
    matrices = attention_sums(prior, codes, y, lyrics, windows, head, shifts)
    for matrix in matrices:
        matrix /= len(shifts)  # in place: a long song's matrix is not copied
    used["spread"], used["shifts"] = spread, list(shifts)
    results = []
    for i, (song, matrix) in enumerate(zip(lyrics, matrices, strict=True)):
        text = tokenizer.decode(song.tokens)
        seconds, offset = int(y[i, 0]) / cfg.sample_rate, int(y[i, 1]) / cfg.sample_rate  # codes start at offset
        expected = expected_centres(len(song.tokens), seconds, song.times) - offset
        align = Alignment.from_matrix(text, matrix, used["frame_seconds"], expected, spread)
        results.append((align, matrix))
    return results, used


def frame_pool(cfg) -> int:
    """How many codes one alignment frame averages: frames no shorter than 1 / FRAME_RATE seconds."""
    return max(1, int(round(1.0 / (FRAME_RATE * cfg.hop_length / cfg.sample_rate))))  # as pool_frames rounds


def song_row(cfg, n_samples: int, artist: int, genres: tuple = ()) -> torch.Tensor:
    """The label row (1, 4+G+n_tokens) of a whole song of ``n_samples`` from its start, its lyric
    tokens left to ``window_labels``: what sampling gives the windows of such a song."""
    genre_row = [*genres, *[-1] * (cfg.labels.max_bow_genre_size - len(genres))]
    return torch.tensor([[n_samples, 0, cfg.sample_length, artist, *genre_row, *[0] * cfg.lyrics.n_tokens]])


def attention_sums(
    prior: Prior,
    codes: torch.Tensor,
    y: torch.Tensor,
    lyrics: list[SongLyrics],
    windows: list[Window],
    head: tuple[int, int],
    shifts: tuple[float, ...],
) -> list[np.ndarray]:
    """Per song, the song-wide matrix (frames, characters) of ``head``'s attention summed over the
    lyric-window ``shifts`` (seconds): each code counts once per shift."""
    pool = frame_pool(prior.cfg)
    matrices = [SongAttention(codes.shape[1], len(song.tokens), pool) for song in lyrics]
    for w in windows:  # one window in memory at a time
        for shift in shifts:
            weights, indices = _window_attention(prior, codes, y, lyrics, w, [head[0]], float(shift))
            for i, matrix in enumerate(matrices):
                matrix.add(w.start, weights[head[0]][i, head[1]], indices[i], first_new=max(0, w.primed - w.start))
    return [m.matrix for m in matrices]


def _window_attention(
    prior: Prior, codes, y, lyrics, window, layers, shift: float = 0.0
) -> tuple[dict[int, np.ndarray], list]:
    """Attention (n, H, window codes, n_tokens) of ``layers`` for one window whose lyric window is
    moved by ``shift`` seconds, and its characters' indices."""
    cfg = prior.cfg
    device = prior.pos_emb.device
    y_w, indices = window_labels(y, window.start, cfg, lyrics, shift)
    cond = prior.condition(y_w.to(device))
    length = window.end - window.start
    window_codes = F.pad(codes[:, window.start : window.end], (0, cfg.n_ctx - length)).to(device)
    weights = {
        layer: prior.lyric_attention(window_codes, cond, layer)[:, :, :length].float().cpu().numpy() for layer in layers
    }
    return weights, indices


def timing_errors(
    prior: Prior,
    tokenizer: Tokenizer,
    codes: torch.Tensor,
    song: SongLyrics,
    artist: int = 0,
    genres: tuple = (),
    windows_from_times: bool = False,
    spreads: tuple[float, ...] = (ALIGN_SPREAD,),
    shifts: tuple[float, ...] = ALIGN_SHIFTS,
) -> tuple[dict[float, np.ndarray], np.ndarray]:
    """How far the alignment of a song with known character times is from the truth, in seconds.

    ``codes`` (1, T): the song's true top-level codes; ``song``: its timed lyrics. Returns the
    signed error (aligned minus true start time) of every character for each of ``spreads`` (the
    prior around the windows' placement, see ``align_songs``), and that of the linear rule (the
    characters spread evenly over the song), the baseline an alignment has to beat. Signed, so
    that a weighted mean of two alignments can be scored too (its error is that mean of theirs).

    Each window's characters are chosen as sampling from plain-text lyrics chooses them (by the
    characters' even spread over the song), so the true times are used only to score the result;
    ``windows_from_times`` chooses them from the true times instead, as when a user gives timed
    lyrics (then the attention alone is scored: a prior around the true times would be a leak).
    ``shifts``: as ``align_songs`` takes them.
    """
    cfg = prior.cfg
    n_samples = codes.shape[1] * cfg.hop_length
    seconds = n_samples / cfg.sample_rate
    y = song_row(cfg, n_samples, artist, tuple(genres))
    windowed = song if windows_from_times else SongLyrics(song.tokens)
    [(alignment, matrix)], used = align_songs(
        prior, codes, y, [windowed], tokenizer, hop_fraction=0.5, spread=0.0, shifts=shifts
    )
    text, truth = alignment.text, np.array(song.times)
    expected = None if windows_from_times else expected_centres(len(truth), seconds)
    errors = {}
    for spread in spreads:
        aligned = alignment  # the attention alone
        if spread and expected is not None:
            aligned = Alignment.from_matrix(text, matrix, used["frame_seconds"], expected, spread)
        errors[spread] = np.array(aligned.times) - truth
    linear = np.arange(len(truth)) / len(truth) * seconds
    return errors, linear - truth

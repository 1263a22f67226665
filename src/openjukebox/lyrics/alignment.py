"""Lyric-to-audio alignment from the attention of a lyrics prior.

A cross-attention (separate variant) or prime-attention (single variant) head of a trained
lyrics prior attends, at each code position, mostly to the character being sung. Per window its
weights (codes x window characters) are placed into a song-wide matrix (frames x song characters),
a monotonic path through it gives each character a time, and characters group into words and
lines for JSON and LRC export, with a heatmap for inspection. Which head to read is chosen as the
most monotonic one when the model does not name it (the original needed a hand-picked head).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .timed import SECONDS_PER_CHAR

FRAME_RATE = 50.0  # alignment frames per second at most (codes are pooled down to this)


def monotonic_path(
    weights: np.ndarray, eps: float = 1e-6, expected: np.ndarray | None = None, spread: float = 0.0
) -> np.ndarray:
    """For attention weights (T frames, K characters), the character of every frame on the
    non-decreasing path that maximises the summed log weight (characters may be skipped).

    With ``expected`` (K,: the frame at which each character is expected to be sung) and ``spread``
    > 0 (frames), every frame's log weights gain the log of a Gaussian of that width around the
    expected frames: a prior that keeps the path near where the lyrics were placed.
    """
    weights = np.asarray(weights)
    t_len, k_len = weights.shape
    if not spread >= 0:  # NaN too
        raise ValueError(f"the alignment's spread must be 0 or more (frames), not {spread}")
    band = expected is not None and spread > 0
    if band:
        expected = np.asarray(expected, dtype=np.float64)
        if expected.shape != (k_len,):
            raise ValueError(f"{expected.size} expected positions for {k_len} characters")

    def cost(t: int) -> np.ndarray:  # a row at a time: a long song's matrix is not copied
        row = np.log(weights[t].astype(np.float64) + eps)
        return row - 0.5 * ((t - expected) / spread) ** 2 if band else row

    back = np.zeros((t_len, k_len), dtype=np.int64)
    score = cost(0)
    for t in range(1, t_len):
        best_idx = _running_argmax(score)  # best predecessor j' <= j
        back[t] = best_idx
        score = cost(t) + score[best_idx]
    path = np.zeros(t_len, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(t_len - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _running_argmax(x: np.ndarray) -> np.ndarray:
    """idx[j] = argmax of x[:j+1] (the earliest on ties)."""
    running = np.maximum.accumulate(x)
    is_new = np.r_[True, x[1:] > running[:-1]]
    return np.maximum.accumulate(np.where(is_new, np.arange(len(x)), 0))


def path_score(weights: np.ndarray) -> float:
    """How well a monotonic path explains the weights: the mean weight along the best path (0..1)."""
    path = monotonic_path(weights)
    return float(np.mean(weights[np.arange(len(path)), path]))


def pool_frames(matrix: np.ndarray, frame_seconds: float) -> tuple[np.ndarray, float]:
    """Average consecutive code frames so that frames are no shorter than 1 / FRAME_RATE seconds."""
    factor = max(1, int(round(1.0 / (FRAME_RATE * frame_seconds))))
    t = matrix.shape[0] // factor * factor
    pooled = matrix[:t].reshape(-1, factor, matrix.shape[1]).mean(axis=1) if t else matrix[:0]
    return pooled, frame_seconds * factor


class SongAttention:
    """The song-wide attention matrix (frames x song characters), filled window by window.

    A frame averages ``pool`` consecutive codes, which bounds the memory of long songs (a
    3-minute song of the official top level at 50 frames/s and 3,000 characters is 108 MB).
    """

    def __init__(self, total_codes: int, n_chars: int, pool: int = 1):
        self.pool = pool
        self.matrix = np.zeros((-(-total_codes // pool), n_chars), dtype=np.float32)

    def add(self, start: int, weights: np.ndarray, indices: list[int], first_new: int = 0) -> None:
        """Weights (window codes, window characters) of a window starting at code ``start``;
        ``indices`` are the song positions of the window's characters (-1: padding). Rows before
        ``first_new`` (codes an earlier window sampled, and added) are skipped: each code counts once."""
        cols = np.array([i for i in indices if i >= 0], dtype=np.int64)
        keep = np.array([k for k, i in enumerate(indices) if i >= 0], dtype=np.int64)
        if not len(cols):
            return
        frames = (start + np.arange(first_new, weights.shape[0])) // self.pool
        np.add.at(self.matrix, (frames[:, None], cols[None, :]), weights[first_new:, keep] / self.pool)


def expected_centres(n_chars: int, seconds: float, times: tuple[float, ...] | None = None) -> np.ndarray:
    """Where each of ``n_chars`` characters is expected to be sung (seconds, the middle of its
    span): from the characters' given start ``times`` (timed lyrics), else spread evenly over
    ``seconds`` (the linear rule, which places the windows of plain-text lyrics)."""
    if times is None:
        return (np.arange(n_chars) + 0.5) * seconds / max(n_chars, 1)
    if len(times) != n_chars:
        raise ValueError(f"{len(times)} character times for {n_chars} characters")
    times = np.asarray(times, dtype=np.float64)
    step = float(np.median(np.diff(times))) if len(times) > 1 else SECONDS_PER_CHAR  # the last one's length
    return (times + np.r_[times[1:], times[-1:] + step]) / 2


@dataclass(frozen=True)
class Alignment:
    """Characters of the sung text with their start times (seconds)."""

    text: str
    times: tuple[float, ...]

    @classmethod
    def from_matrix(
        cls,
        text: str,
        matrix: np.ndarray,
        frame_seconds: float,
        expected: np.ndarray | None = None,
        spread: float = 0.0,
    ) -> Alignment:
        """Align ``text`` (one character per matrix column) to frames of ``frame_seconds``.

        ``expected`` (seconds, one per character) and ``spread`` (seconds): where each character
        was placed when the windows were chosen, and how far the path may stray from it at the cost
        of a Gaussian prior (0: the attention alone). See ``expected_centres``.
        """
        if matrix.shape[1] != len(text):
            raise ValueError(f"the matrix has {matrix.shape[1]} character columns for {len(text)} characters")
        if not len(text):
            return cls("", ())
        pooled, seconds = pool_frames(matrix, frame_seconds)
        band = None if expected is None else np.asarray(expected, dtype=np.float64) / seconds - 0.5
        path = monotonic_path(pooled, expected=band, spread=spread / seconds)
        # a character starts at the first frame whose path has reached it
        first = np.searchsorted(path, np.arange(len(text)), side="left")
        times = tuple(round(float(min(f, len(path) - 1) * seconds), 4) for f in first)
        return cls(text, times)

    def words(self) -> list[dict]:
        """Words (split on whitespace) with start and end times and the line they are on."""
        out, line, current = [], 0, None
        for ch, t in zip(self.text, self.times, strict=True):
            if ch.isspace():
                if current:
                    out.append(current)
                    current = None
                line += ch == "\n"
                continue
            if current is None:
                current = {"word": "", "start": t, "line": line}
            current["word"] += ch
        if current:
            out.append(current)
        for i, w in enumerate(out):
            w["end"] = out[i + 1]["start"] if i + 1 < len(out) else self.times[-1] + 0.5
        return out

    def to_json(self) -> dict:
        chars = [{"char": c, "start": t} for c, t in zip(self.text, self.times, strict=True)]
        return {"text": self.text, "characters": chars, "words": self.words()}

    def to_lrc(self) -> str:
        """Enhanced LRC: a ``[mm:ss.xx]`` tag per line and a ``<mm:ss.xx>`` tag per word."""
        lines: dict[int, list[dict]] = {}
        for w in self.words():
            lines.setdefault(w["line"], []).append(w)
        out = []
        for _, words in sorted(lines.items()):
            body = " ".join(f"<{_stamp(w['start'])}>{w['word']}" for w in words)
            out.append(f"[{_stamp(words[0]['start'])}]{body}")
        return "\n".join(out) + "\n"

    def save(self, stem: str | os.PathLike, matrix: np.ndarray | None = None, frame_seconds: float = 0.0) -> list:
        """Write ``stem.json`` and ``stem.lrc`` (and ``stem.png``, the attention heatmap, given the matrix)."""
        from ..fileio import atomic_path

        stem = str(stem)
        written = []
        for suffix, text in ((".json", json.dumps(self.to_json(), indent=1)), (".lrc", self.to_lrc())):
            with atomic_path(stem + suffix) as tmp:
                Path(tmp).write_text(text, encoding="utf-8")
            written.append(stem + suffix)
        if matrix is not None:
            save_heatmap(stem + ".png", matrix, frame_seconds)
            written.append(stem + ".png")
        return written


def _stamp(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes):02d}:{rest:05.2f}"


def save_heatmap(path: str | os.PathLike, matrix: np.ndarray, frame_seconds: float) -> None:
    """The attention of every frame (x, seconds) to every character (y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.imshow(
        matrix.T,
        aspect="auto",
        origin="lower",
        cmap="magma",
        extent=(0, matrix.shape[0] * frame_seconds, 0, matrix.shape[1]),
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("lyric character")
    ax.set_title("lyric attention")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def choose_head(weights_per_layer: dict[int, list[np.ndarray]]) -> tuple[int, int, float]:
    """The (layer, head) whose attention is the most monotonic, and its score.

    ``weights_per_layer[layer]`` holds windows' weights (H, codes, characters) of that layer.
    """
    best = (-1, -1, -1.0)
    for layer, windows in weights_per_layer.items():
        for head in range(windows[0].shape[0]):
            score = float(np.mean([path_score(w[head]) for w in windows]))
            if score > best[2]:
                best = (layer, head, score)
    if best[0] < 0:
        raise ValueError("no attention weights to choose an alignment head from")
    return best

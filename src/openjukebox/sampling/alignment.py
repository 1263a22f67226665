"""Lyric alignment of sampled songs: the lyrics prior's attention, window by window, turned into times.

For every top-level window the prior is run once, teacher-forced on the sampled codes, recording
the attention of its lyric layers; the chosen head's weights (codes x window characters) go into a
song-wide matrix at the characters' song positions, as in the original's ``get_alignment``. The
head is the config's ``alignment_layer``/``alignment_head`` when given, else the most monotonic one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..lyrics.alignment import Alignment, SongAttention, choose_head
from ..lyrics.timed import SongLyrics
from ..lyrics.tokenizer import Tokenizer
from ..prior.model import Prior
from .engine import plan_windows, window_labels


@torch.no_grad()
def align_songs(
    prior: Prior,
    codes: torch.Tensor,
    y: torch.Tensor,
    lyrics: list[SongLyrics],
    tokenizer: Tokenizer,
    hop_fraction: float,
    head: tuple[int, int] | None = None,
) -> tuple[list[tuple[Alignment, np.ndarray]], dict]:
    """Alignments of ``lyrics`` to the top-level ``codes`` (n, T) sampled with label rows ``y``.

    Returns [(alignment, song attention matrix (T, characters))] per song, and what was used:
    {"layer", "head", "chosen": automatically or not, "score", "frame_seconds"}.
    """
    cfg = prior.cfg
    device = prior.pos_emb.device
    total = codes.shape[1]
    windows = plan_windows(total, cfg.n_ctx, max(1, int(hop_fraction * cfg.n_ctx)))
    lc = cfg.lyrics
    if head is None and lc.alignment_layer is not None:
        head = (lc.alignment_layer, lc.alignment_head or 0)
    layers = [head[0]] if head else prior.lyric_layers()
    recorded: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    indices = []
    for w in windows:
        y_w, idx = window_labels(y, w.start, cfg, lyrics)
        cond = prior.condition(y_w.to(device))
        window_codes = F.pad(codes[:, w.start : w.end], (0, cfg.n_ctx - (w.end - w.start))).to(device)
        for layer in layers:
            att = prior.lyric_attention(window_codes, cond, layer)[:, :, : w.end - w.start]
            recorded[layer].append(att.float().cpu().numpy())  # (n, H, codes, n_tokens)
        indices.append(idx)
    if head is None:
        per_layer = {layer: [a[0] for a in windows_att] for layer, windows_att in recorded.items()}
        layer, h, score = choose_head(per_layer)
        used = {"layer": layer, "head": h, "chosen": "automatically (most monotonic)", "score": round(score, 4)}
    else:
        (layer, h), used = head, {"layer": head[0], "head": head[1], "chosen": "given"}
    frame_seconds = cfg.hop_length / cfg.sample_rate
    used["frame_seconds"] = frame_seconds
    results = []
    for i, song in enumerate(lyrics):
        matrix = SongAttention(total, len(song.tokens))
        for k, w in enumerate(windows):
            matrix.add(w.start, recorded[layer][k][i, h], indices[k][i], first_new=max(0, w.primed - w.start))
        text = tokenizer.decode(song.tokens)
        results.append((Alignment.from_matrix(text, matrix.matrix, frame_seconds), matrix.matrix))
    return results, used

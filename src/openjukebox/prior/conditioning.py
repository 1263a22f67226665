"""Conditioning of the priors: labels (artist, genre, timing) and the codes of the level above.

A label row is the original's layout, int64 (N, 4 + G):
``[total_length, offset, length, artist, genre_1..genre_G]``; lengths and offsets are in audio
samples, unused genre slots are -1.
"""

from __future__ import annotations

import torch
from torch import nn

from ..codec.layers import DecoderConvBlock
from ..transformer.model import LayerNorm


def forget_labels(y: torch.Tensor, genre_slots: int, artist_rows=slice(None), genre_rows=slice(None)) -> torch.Tensor:
    """Label rows with the artist of ``artist_rows`` unknown (0) and the genres of ``genre_rows``
    absent (-1); all rows by default. Timing and lyric columns are kept. This is the unconditional
    side of guidance, and what label dropout trains."""
    y = y.clone()
    y[artist_rows, 3] = 0
    y[genre_rows, 4 : 4 + genre_slots] = -1
    return y


class RangeEmbedding(nn.Module):
    """Embed positions in [lo, hi) by binning: (N, 1) start [and end] -> (N, n_time, W).

    With an end, ``n_time`` positions are interpolated as start + (end - start) * i / n_time.
    """

    def __init__(self, n_time: int, bins: int, lo: float, hi: float, width: int, clamp: bool = False):
        super().__init__()
        self.n_time, self.bins, self.lo, self.hi, self.clamp = n_time, bins, lo, hi, clamp
        self.emb = nn.Embedding(bins, width)

    def forward(self, start: torch.Tensor, end: torch.Tensor | None = None) -> torch.Tensor:
        start = start.float()  # float32 arithmetic, as the original: bins at boundaries then agree
        if not ((start >= self.lo) & (start < self.hi)).all():
            raise ValueError(
                f"position {start.flatten().tolist()} is outside the embedded range [{self.lo}, {self.hi})"
            )
        pos = start
        if end is not None:
            end = end.float().clamp(self.lo, self.hi) if self.clamp else end.float()
            steps = torch.arange(self.n_time, dtype=torch.float32, device=start.device).view(1, -1) / self.n_time
            pos = start + (end - start) * steps
        bins = (self.bins * ((pos - self.lo) / (self.hi - self.lo))).floor().long()
        return self.emb(bins)


class LabelConditioner(nn.Module):
    """Label rows (N, 4+G) -> start embedding (N, 1, W) and per-position embedding (N, n_ctx, W) or None:
    timing, plus the start embedding with ``every_position``."""

    def __init__(
        self,
        genre_bins: int,
        artist_bins: int,
        width: int,
        n_ctx: int,
        t_bins: int,
        timing: bool,
        min_samples: float,
        max_samples: float,
        every_position: bool = False,
    ):
        super().__init__()
        self.n_ctx, self.every_position = n_ctx, every_position
        self.genre_emb = nn.Embedding(genre_bins, width)
        self.artist_emb = nn.Embedding(artist_bins, width)
        self.timing = timing
        if timing:
            self.total_length_emb = RangeEmbedding(1, t_bins, min_samples, max_samples, width)
            self.absolute_pos_emb = RangeEmbedding(n_ctx, t_bins, 0.0, max_samples, width)
            self.relative_pos_emb = RangeEmbedding(n_ctx, t_bins, 0.0, 1.0, width, clamp=True)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        total, offset, length, artist, genres = y[:, 0:1], y[:, 1:2], y[:, 2:3], y[:, 3:4], y[:, 4:]
        valid = (genres >= 0).unsqueeze(-1).to(self.genre_emb.weight.dtype)
        start = self.artist_emb(artist) + (self.genre_emb(genres.clamp(min=0)) * valid).sum(1, keepdim=True)
        labels = start.expand(-1, self.n_ctx, -1) if self.every_position else None
        if not self.timing:
            return start, labels
        if (total < self.total_length_emb.lo).any():
            raise ValueError(
                f"a total length of {total.min().item()} samples is below this model's minimum "
                f"({int(self.total_length_emb.lo)} samples); ask for a longer song"
            )
        begin, end, total = offset.float(), (offset + length).float(), total.float()
        timing = (
            self.total_length_emb(total)
            + self.absolute_pos_emb(begin, end)
            + self.relative_pos_emb(begin / total, end / total)
        )
        return start, timing if labels is None else timing + labels


class UpsamplerConditioner(nn.Module):
    """Codes of the level above (N, T) -> conditioning (N, T * upsample, W).

    Embedding, a dilated residual stack with transposed convs (x4 for the official models), and a
    LayerNorm, as in the original.
    """

    def __init__(
        self,
        l_bins: int,
        width: int,
        cond_width: int,
        depth: int,
        down_t: int,
        stride_t: int,
        dilation_growth_rate: int,
        dilation_cycle: int | None,
        res_scale: bool,
        named_blocks: bool,
    ):
        super().__init__()
        self.x_emb = nn.Embedding(l_bins, width)
        self.cond = DecoderConvBlock(
            width,
            width,
            down_t,
            stride_t,
            cond_width,
            depth,
            dilation_growth_rate=dilation_growth_rate,
            dilation_cycle=dilation_cycle,
            res_scale=res_scale,
            named_blocks=named_blocks,
        )
        self.ln = LayerNorm(width)

    def forward(self, z_above: torch.Tensor) -> torch.Tensor:
        x = self.x_emb(z_above).permute(0, 2, 1)
        return self.ln(self.cond(x).permute(0, 2, 1))

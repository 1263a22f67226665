"""The prior: an autoregressive transformer over one level's codes, conditioned by injected parts.

Input at position t is the embedding of code t-1 (position 0 gets the start embedding: artist +
genres, or a learned start token), plus a learned position embedding, plus ``x_cond`` (timing on
the top level, the upsampler conditioner below). Without a merged decoder the output layer is tied
to the input embedding and ``x_cond`` is added again after the transformer, as in the original.
The model is pure: sampling loops live in the sampling engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..transformer.model import Transformer
from .conditioning import LabelConditioner, UpsamplerConditioner
from .config import PriorConfig


@dataclass
class Conditioning:
    """What a window is conditioned on: start embedding (N, 1, W), x_cond (N, n_ctx, W) or None."""

    start: torch.Tensor
    x_cond: torch.Tensor | None = None


class Prior(nn.Module):
    """Codes (N, n_ctx) -> logits (N, n_ctx, l_bins), conditioned on labels and/or upper codes."""

    def __init__(
        self, cfg: PriorConfig, labels: LabelConditioner | None = None, conditioner: UpsamplerConditioner | None = None
    ):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.labels = labels
        self.conditioner = conditioner
        self.x_emb = nn.Embedding(cfg.l_bins, w)
        self.pos_emb = nn.Parameter(torch.zeros(cfg.n_ctx, w))
        if labels is None:
            self.start_token = nn.Parameter(torch.zeros(1, w))
        self.transformer = Transformer(
            w, cfg.depth, cfg.heads, cfg.n_ctx, cfg.attn_order, cfg.blocks, m_attn=cfg.m_attn, m_mlp=cfg.m_mlp
        )
        self.x_out = nn.Linear(w, cfg.l_bins, bias=False) if cfg.merged_decoder else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The original's init: N(0, 0.02 s) for weights and code embeddings, N(0, 0.01 s) for
        positions, start token and label embeddings; the conditioner's convs keep torch's init."""
        s = self.cfg.init_scale
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.weight.normal_(0, 0.02 * s)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0, 0.02 * s)
        if self.labels is not None:
            for module in self.labels.modules():
                if isinstance(module, nn.Embedding):
                    module.weight.normal_(0, 0.01 * s)
        self.pos_emb.normal_(0, 0.01 * s)
        if self.labels is None:
            self.start_token.normal_(0, 0.01 * s)

    def condition(
        self, y: torch.Tensor | None = None, z_above: torch.Tensor | None = None, batch: int | None = None
    ) -> Conditioning:
        """Label rows (N, 4+G) and/or codes of the level above (N, n_ctx / upsample) -> Conditioning."""
        x_cond = None
        if self.labels is not None:
            if y is None:
                raise ValueError("this prior is conditioned on labels: pass a label row y")
            start, x_cond = self.labels(y)
        else:
            n = batch if batch is not None else (z_above.shape[0] if z_above is not None else 1)
            start = self.start_token.view(1, 1, -1).expand(n, 1, -1)
        if self.conditioner is not None:
            if z_above is None:
                raise ValueError("an upsampler needs the codes of the level above (z_above)")
            up = self.conditioner(z_above)
            x_cond = up if x_cond is None else x_cond + up
        return Conditioning(start, x_cond)

    def embed(self, prev: torch.Tensor, t0: int, cond: Conditioning) -> torch.Tensor:
        """Inputs for positions [t0, t0+C) from the codes at [t0-1, t0+C-1) (N, C) -> (N, C, W)."""
        x = self.x_emb(prev)
        if t0 == 0:
            x = torch.cat([cond.start.to(x.dtype), x[:, 1:]], dim=1)
        x = x + self.pos_emb[t0 : t0 + x.shape[1]]
        if cond.x_cond is not None:
            x = x + cond.x_cond[:, t0 : t0 + x.shape[1]]
        return x

    def head(self, h: torch.Tensor, t0: int, cond: Conditioning) -> torch.Tensor:
        """Transformer output (N, C, W) for positions from t0 -> logits (N, C, l_bins)."""
        if self.x_out is None and cond.x_cond is not None:
            h = h + cond.x_cond[:, t0 : t0 + h.shape[1]]
        weight = self.x_emb.weight if self.x_out is None else self.x_out.weight
        return F.linear(h, weight)

    def forward(self, codes: torch.Tensor, cond: Conditioning, reference: bool = False) -> torch.Tensor:
        """Teacher-forced logits (N, L, l_bins) for codes (N, L), L <= n_ctx."""
        prev = F.pad(codes[:, :-1], (1, 0))
        h = self.transformer(self.embed(prev, 0, cond), reference=reference)
        return self.head(h, 0, cond)

    def forward_cached(self, prev: torch.Tensor, t0: int, cond: Conditioning, caches: list) -> torch.Tensor:
        """Logits (N, C, l_bins) for positions [t0, t0+C), given the codes at [t0-1, t0+C-1)."""
        h = self.transformer.forward_cached(self.embed(prev, t0, cond), t0, caches)
        return self.head(h, t0, cond)

    def loss(self, codes: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """Mean cross-entropy of codes (N, L) in bits per token."""
        logits = self(codes, cond)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), codes.reshape(-1)) / math.log(2)


def build_prior(cfg: PriorConfig) -> Prior:
    """The one place where a PriorConfig becomes modules."""
    labels = None
    if cfg.labels is not None:
        lc = cfg.labels
        labels = LabelConditioner(
            lc.genre_bins,
            lc.artist_bins,
            cfg.width,
            cfg.n_ctx,
            lc.t_bins,
            lc.timing,
            lc.min_duration * cfg.sample_rate,
            lc.max_duration * cfg.sample_rate,
        )
    conditioner = None
    if cfg.conditioner is not None:
        c = cfg.conditioner
        conditioner = UpsamplerConditioner(
            cfg.l_bins,
            cfg.width,
            c.width,
            c.depth,
            c.down_t,
            c.stride_t,
            c.dilation_growth_rate,
            c.dilation_cycle,
            c.res_scale,
            c.named_blocks,
        )
    return Prior(cfg, labels, conditioner)

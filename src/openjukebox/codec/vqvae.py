"""The hierarchical VQ-VAE: a separate encoder, codebook and decoder per level.

Level L compresses audio by ``hop_lengths[L]`` (8, 32, 128 for the official model). Levels never
share a trunk and never add up: decoding level L uses decoder L alone, as in the original.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .bottleneck import Bottleneck
from .config import VQVAEConfig
from .layers import Decoder, Encoder, context_radius, convs_in_order
from .losses import (
    Bandwidth,
    multispectral_loss,
    reconstruction_loss,
    spectral_convergence_db,
    spectral_loss,
)


class VQVAE(nn.Module):
    """Audio (N, 1, T) <-> codes [(N, T / hop_L) for each level L]."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(c.levels):
            kw = dict(
                emb_width=c.emb_width,
                downs_t=c.downs_t[: level + 1],
                strides_t=c.strides_t[: level + 1],
                width=c.level_width(level),
                depth=c.level_depth(level),
                m_conv=c.m_conv,
                dilation_growth_rate=c.dilation_growth_rate,
                dilation_cycle=c.dilation_cycle,
            )
            self.encoders.append(Encoder(**kw))
            self.decoders.append(Decoder(**kw, reverse_dilation=c.reverse_decoder_dilation))
        self.bottleneck = Bottleneck(c.l_bins, c.emb_width, c.mu, c.revival_threshold, c.levels)

    @property
    def hop_lengths(self) -> tuple[int, ...]:
        return self.config.hop_lengths

    def _check_length(self, t: int, level: int) -> None:
        hop = self.hop_lengths[level]
        if t % hop:
            raise ValueError(f"audio length {t} is not a multiple of level {level}'s hop {hop}; pad it first")

    @torch.no_grad()
    def encode(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """Audio (N, 1, T) -> level-L codes (N, T / hop_L), T a multiple of hop_L."""
        self._check_length(x.shape[-1], level)
        latents = self.encoders[level](x)
        codes, _ = self.bottleneck.level_blocks[level].quantise(latents.permute(0, 2, 1).reshape(-1, latents.shape[1]))
        return codes.view(x.shape[0], -1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, level: int) -> torch.Tensor:
        """Level-L codes (N, T_L) -> audio (N, 1, T_L * hop_L)."""
        return self.decoders[level](self.bottleneck.level_blocks[level].dequantise(codes))

    def forward(self, x: torch.Tensor, bw: Bandwidth) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training step on audio (N, 1, T): total loss and per-level metrics (suffix ``_l{L}``)."""
        cfg = self.config.loss
        total = x.new_zeros(())
        metrics: dict[str, torch.Tensor] = {}
        for level in range(self.config.levels):
            latents = self.encoders[level](x)
            _, x_q, commit, qm = self.bottleneck.level_blocks[level](latents)
            x_hat = self.decoders[level](x_q).float()
            rec = reconstruction_loss(x, x_hat, bw, cfg)
            spec = spectral_loss(x, x_hat, bw) if cfg.spectral else x.new_zeros(())
            mspec = multispectral_loss(x, x_hat, bw, cfg)
            total = total + rec["recons"] + cfg.spectral * spec + cfg.multispectral * mspec + cfg.commit * commit
            level_metrics = {
                "recons": rec["recons"],
                "spectral": spec,
                "multispectral": mspec,
                "commit": commit,
                "sc_db": spectral_convergence_db(x, x_hat.detach()),
                **qm,
            }
            metrics.update({f"{k}_l{level}": v.detach() for k, v in level_metrics.items()})
        metrics["loss"] = total.detach()
        return total, metrics


def _margin(stack: nn.Module, multiple: int, unit: float = 1.0) -> int:
    radius = context_radius(convs_in_order(stack), unit)
    return math.ceil(radius / multiple) * multiple


@torch.no_grad()
def encode_chunked(model: VQVAE, x: torch.Tensor, level: int, chunk: int, progress=None) -> torch.Tensor:
    """Encode long audio (N, 1, T) in chunks of ``chunk`` samples at constant memory.

    Each chunk is encoded with an overlap on both sides that covers the encoder's receptive field,
    so the result equals ``model.encode`` on the whole signal. ``T`` and ``chunk`` must be
    multiples of hop_L. ``progress`` is called with the number of samples done.
    """
    hop = model.hop_lengths[level]
    model._check_length(x.shape[-1], level)
    chunk = max(hop, chunk // hop * hop)
    margin = _margin(model.encoders[level], hop)
    t = x.shape[-1]
    out = []
    for start in range(0, t, chunk):
        end = min(start + chunk, t)
        a, b = max(0, start - margin), min(t, end + margin)
        codes = model.encode(x[..., a:b], level)
        out.append(codes[:, (start - a) // hop : (end - a) // hop])
        if progress is not None:
            progress(end - start)
    return torch.cat(out, dim=1)


@torch.no_grad()
def decode_chunked(model: VQVAE, codes: torch.Tensor, level: int, chunk: int, progress=None) -> torch.Tensor:
    """Decode long codes (N, T_L) in chunks of ``chunk`` samples; equals ``model.decode``.

    Returns audio (N, 1, T_L * hop_L). ``progress`` is called with the samples done.
    """
    hop = model.hop_lengths[level]
    chunk_codes = max(1, chunk // hop)
    margin = _margin(model.decoders[level], 1)
    t = codes.shape[1]
    out = []
    for start in range(0, t, chunk_codes):
        end = min(start + chunk_codes, t)
        a, b = max(0, start - margin), min(t, end + margin)
        audio = model.decode(codes[:, a:b], level)
        out.append(audio[..., (start - a) * hop : (end - a) * hop])
        if progress is not None:
            progress((end - start) * hop)
    return torch.cat(out, dim=-1)

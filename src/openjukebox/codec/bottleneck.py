"""EMA vector-quantisation bottleneck with random restarts of dead codes.

The codebook ``k`` is the only persistent state (as in the original checkpoints). The EMA
statistics ``k_sum``/``k_elem`` are non-persistent buffers: the trainer saves them alongside the
optimizer so that resumed runs continue exactly. Under torch.distributed the statistics are summed
across ranks and restarts come from rank 0, so every rank keeps the same codebook.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _random_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """n rows drawn from x (M, D) without replacement; tiled with small noise when M < n."""
    if x.shape[0] < n:
        reps = math.ceil(n / x.shape[0])
        std = 0.01 / math.sqrt(x.shape[1])
        x = x.repeat(reps, 1)
        x = x + torch.randn_like(x) * std
    rows = x[torch.randperm(x.shape[0], device=x.device)[:n]]
    if _distributed():
        dist.broadcast(rows, 0)
    return rows


class BottleneckBlock(nn.Module):
    """One level's codebook: (N, D, T) latents -> codes (N, T) and quantised latents (N, D, T)."""

    def __init__(self, l_bins: int, emb_width: int, mu: float, threshold: float):
        super().__init__()
        self.l_bins, self.emb_width, self.mu, self.threshold = l_bins, emb_width, mu, threshold
        self.register_buffer("k", torch.zeros(l_bins, emb_width))
        self.register_buffer("k_sum", torch.zeros(l_bins, emb_width), persistent=False)
        self.register_buffer("k_elem", torch.zeros(l_bins), persistent=False)
        self.register_buffer("initialised", torch.tensor(False), persistent=False)

    @torch.no_grad()
    def init_k(self, x: torch.Tensor) -> None:
        """Initialise the codebook from encoder outputs x (M, D)."""
        self.k.copy_(_random_rows(x, self.l_bins))
        self.k_sum.copy_(self.k)
        self.k_elem.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def restore_k(self, expected_usage: float) -> None:
        """Start EMA statistics from a loaded codebook (fine-tuning a trained model)."""
        self.k_sum.copy_(self.k * expected_usage)
        self.k_elem.fill_(expected_usage)
        self.initialised.fill_(True)

    def quantise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (M, D) -> nearest code ids (M,) and their squared distances (M,)."""
        k = self.k.float()
        dist2 = (x.float() ** 2).sum(-1, keepdim=True) - 2 * x.float() @ k.T + (k**2).sum(-1)
        min_dist, codes = dist2.min(dim=-1)
        return codes, min_dist

    def dequantise(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (N, T) -> latents (N, D, T)."""
        return F.embedding(codes, self.k).permute(0, 2, 1)

    @torch.no_grad()
    def update_k(self, x: torch.Tensor, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        """One EMA step on (M, D) latents and their codes; returns codebook metrics."""
        x = x.float()
        batch_sum = torch.zeros_like(self.k_sum).index_add_(0, codes, x)
        counts = torch.bincount(codes, minlength=self.l_bins).to(x.dtype)
        if _distributed():
            dist.all_reduce(batch_sum)
            dist.all_reduce(counts)
        k_rand = _random_rows(x, self.l_bins)
        self.k_sum.mul_(self.mu).add_(batch_sum, alpha=1 - self.mu)
        self.k_elem.mul_(self.mu).add_(counts, alpha=1 - self.mu)
        usage = (self.k_elem >= self.threshold).unsqueeze(1).to(x.dtype)
        old_k = self.k.clone()
        self.k.copy_(usage * self.k_sum / self.k_elem.clamp(min=1e-12).unsqueeze(1) + (1 - usage) * k_rand)
        probs = counts / counts.sum()
        return {
            "entropy_bits": -(probs * torch.log2(probs.clamp(min=1e-12))).sum(),
            "codes_used": (counts > 0).sum().float(),
            "restarts": (1 - usage).sum(),
            "dk": torch.linalg.vector_norm(self.k - old_k) / math.sqrt(self.k.numel()),
        }

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """x (N, D, T) -> codes (N, T), straight-through quantised (N, D, T), commit loss, metrics."""
        n, d, t = x.shape
        flat = x.permute(0, 2, 1).reshape(-1, d)
        if self.training and not bool(self.initialised):
            self.init_k(flat.detach())
        codes, min_dist = self.quantise(flat)
        metrics: dict[str, torch.Tensor] = {"fit": min_dist.mean().detach()}
        if self.training:
            metrics.update(self.update_k(flat.detach(), codes))
        codes = codes.view(n, t)
        x_q = self.dequantise(codes)
        commit = F.mse_loss(x_q.detach(), x)
        if self.training:
            x_q = x + (x_q - x).detach()  # straight-through gradient
        else:
            x_q = x_q.detach()
        return codes, x_q, commit, metrics


class Bottleneck(nn.Module):
    """One BottleneckBlock per level (state-dict names ``level_blocks.{L}.k``)."""

    def __init__(self, l_bins: int, emb_width: int, mu: float, threshold: float, levels: int):
        super().__init__()
        self.level_blocks = nn.ModuleList(BottleneckBlock(l_bins, emb_width, mu, threshold) for _ in range(levels))

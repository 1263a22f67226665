"""VQ-VAE losses and metrics, normalised by data statistics ("bandwidth") as in the original.

All audio tensors are (N, 1, T) or (N, T). Per-item losses are averaged over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .config import LossConfig

# The original's fixed STFT for the single-resolution spectral loss and for the statistics.
DEFAULT_STFT = (2048, 256, 1536)  # n_fft, hop, window


@dataclass(frozen=True)
class Bandwidth:
    """Data statistics that make the loss terms scale-free: mean |x|, var x, mean ||STFT(x)||."""

    l1: float
    l2: float
    spec: float


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int, window: int) -> torch.Tensor:
    """|STFT| of (N, 1, T) or (N, T) audio -> (N, n_fft//2+1, frames), computed in float32."""
    x = x.reshape(x.shape[0], -1).float()
    win = torch.hann_window(window, device=x.device)
    return torch.stft(x, n_fft, hop, window, win, return_complex=True).abs()


def _item_norm(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=-1)


def spectral_loss(x: torch.Tensor, x_hat: torch.Tensor, bw: Bandwidth, stft=DEFAULT_STFT) -> torch.Tensor:
    """Mean over items of || |S(x)| - |S(x_hat)| ||_2 / bw.spec."""
    return (_item_norm(stft_magnitude(x, *stft) - stft_magnitude(x_hat, *stft)) / bw.spec).mean()


def multispectral_loss(x: torch.Tensor, x_hat: torch.Tensor, bw: Bandwidth, cfg: LossConfig) -> torch.Tensor:
    """The spectral loss averaged over the multi-resolution STFTs of ``cfg``."""
    stfts = list(zip(cfg.multispec_n_fft, cfg.multispec_hop, cfg.multispec_window, strict=True))
    per_item = sum(_item_norm(stft_magnitude(x, *s) - stft_magnitude(x_hat, *s)) for s in stfts) / len(stfts)
    return (per_item / bw.spec).mean()


def spectral_convergence(x: torch.Tensor, x_hat: torch.Tensor, eps: float = 2e-3) -> torch.Tensor:
    """Per-item ||S - S_hat|| / ||S|| (N,), zero where the reference is silent (||S|| <= eps)."""
    s, s_hat = stft_magnitude(x, *DEFAULT_STFT), stft_magnitude(x_hat, *DEFAULT_STFT)
    ref = _item_norm(s)
    return _item_norm(s - s_hat) * (ref > eps) / ref.clamp(min=eps)


def spectral_convergence_db(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Spectral convergence of the whole batch in dB (lower is better): 20 log10(||S-S^||/||S||)."""
    s, s_hat = stft_magnitude(x, *DEFAULT_STFT), stft_magnitude(x_hat, *DEFAULT_STFT)
    ratio = torch.linalg.vector_norm(s - s_hat) / torch.linalg.vector_norm(s).clamp(min=1e-8)
    return 20 * torch.log10(ratio.clamp(min=1e-8))


MRSTFT = ((2048, 512, 2048), (1024, 256, 1024), (512, 128, 512))  # n_fft, hop, window


def log_stft_distance(x: torch.Tensor, x_hat: torch.Tensor, stfts=MRSTFT, floor: float = 1e-5) -> torch.Tensor:
    """Multi-resolution log-magnitude STFT distance of a batch: the mean over ``stfts`` of
    mean |log10(|S(x)| + floor) - log10(|S(x_hat)| + floor)|, x 20 to read in dB (lower is better).

    Unlike spectral convergence, which the loudest partials dominate, it weighs every bin alike, so a
    noise floor over the quiet high band counts."""
    dist = [
        (torch.log10(stft_magnitude(x, *s) + floor) - torch.log10(stft_magnitude(x_hat, *s) + floor)).abs().mean()
        for s in stfts
    ]
    return 20 * torch.stack(dist).mean()


def reconstruction_loss(
    x: torch.Tensor, x_hat: torch.Tensor, bw: Bandwidth, cfg: LossConfig
) -> dict[str, torch.Tensor]:
    """The original's 'lmix': l2 * mse/bw.l2 + linf * mean(top-k squared errors per item)/bw.l2."""
    err2 = ((x_hat.float() - x.float()) ** 2).reshape(x.shape[0], -1)
    l2 = err2.mean() / bw.l2
    linf = err2.topk(min(cfg.linf_k, err2.shape[1]), dim=1).values.mean() / bw.l2
    return {"recons": cfg.l2 * l2 + cfg.linf * linf, "l2": l2, "linf": linf}


@torch.no_grad()
def compute_bandwidth(batches: Iterable[torch.Tensor]) -> Bandwidth:
    """Statistics over batches of (N, 1, T) audio: l1 = mean|x|, l2 = var(x), spec = mean item norm."""
    n = total = total_sq = total_abs = spec = 0.0
    items = 0
    for x in batches:
        x = x.double()
        n += x.numel()
        total += x.sum().item()
        total_sq += (x**2).sum().item()
        total_abs += x.abs().sum().item()
        spec += _item_norm(stft_magnitude(x, *DEFAULT_STFT)).sum().item()
        items += x.shape[0]
    if items == 0:
        raise ValueError("no audio to compute data statistics from")
    mean = total / n
    l2 = max(total_sq / n - mean**2, 1e-12)
    return Bandwidth(l1=max(total_abs / n, 1e-12), l2=l2, spec=max(spec / items, 1e-12))


def sc_to_db(sc: float) -> float:
    return 20 * math.log10(max(sc, 1e-8))

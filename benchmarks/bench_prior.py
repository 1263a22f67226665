"""Prior speed on this machine: training tokens/s and one-token decode steps/s.

    python benchmarks/bench_prior.py [--threads N] [--tokens 256] [--device cpu|cuda]

Decode runs ``sample_window`` (static KV cache, one token per step) on the "small" shape
(W 512, depth 12, heads 4, n_ctx 1024, 16 blocks, 2048 codes) at batch 1 and 4, and prints
steps/s and tokens/s (tokens summed over the batch). Weights are random; speed does not depend
on their values. Compare with other implementations only when measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import torch

from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.sampling.sampler import sample_window
from openjukebox.training.prior import TRAIN_PRESETS


def _labels(cfg, batch: int) -> torch.Tensor:
    sr = cfg.sample_rate
    return torch.tensor(
        [[90 * sr, 0, cfg.sample_length, 1, 2, -1, -1, -1, -1][: 4 + cfg.labels.max_bow_genre_size]] * batch
    )


def bench_decode(preset: str, batch: int, tokens: int, device: torch.device) -> None:
    torch.manual_seed(0)
    cfg = get_preset(preset)
    prior = build_prior(cfg).to(device).eval()
    with torch.no_grad():
        cond = prior.condition(_labels(cfg, batch).to(device))
        sample_window(prior, cond, 16)  # warm-up
        t = time.perf_counter()
        sample_window(prior, cond, tokens)
        seconds = time.perf_counter() - t
    print(
        f"decode {preset:8s} batch {batch}: {tokens / seconds:7.1f} steps/s, {batch * tokens / seconds:7.1f} tokens/s "
        f"({sum(p.numel() for p in prior.parameters()) / 1e6:.1f} M params)"
    )


def bench_training(preset: str, device: torch.device) -> None:
    torch.manual_seed(0)
    cfg, tc = get_preset(preset), TRAIN_PRESETS[preset]
    prior = build_prior(cfg).to(device).train()
    opt = torch.optim.Adam(prior.parameters(), lr=tc.lr)
    codes = torch.randint(0, cfg.l_bins, (tc.batch_size, cfg.n_ctx), device=device)
    y = _labels(cfg, tc.batch_size).to(device)

    def step():
        loss = prior.loss(codes, prior.condition(y))
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(5):
        step()
    seconds = (time.perf_counter() - t) / 5
    print(f"train  {preset:8s} batch {tc.batch_size}: {tc.batch_size * cfg.n_ctx / seconds:9.0f} tokens/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {args.threads} threads, {device}")
    bench_training("tiny_top", device)
    for batch in (1, 4):
        bench_decode("small", batch, args.tokens, device)


if __name__ == "__main__":
    main()

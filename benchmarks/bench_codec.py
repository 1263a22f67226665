"""Codec speed on this machine: encode/decode of the official VQ-VAE, training steps of small presets.

    python benchmarks/bench_codec.py [--seconds 10] [--threads N] [--device cpu|cuda]

Prints seconds of audio processed per wall-clock second (higher is better; 1.0 = real time).
Weights are random (speed does not depend on their values); codebooks are spread so that
codes vary as they would with a trained model.
"""

from __future__ import annotations

import argparse
import time

import torch

from openjukebox.codec.config import get_preset
from openjukebox.codec.losses import Bandwidth
from openjukebox.codec.vqvae import VQVAE, decode_chunked, encode_chunked
from openjukebox.training.vqvae import TRAIN_PRESETS


def _timed(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_codec(seconds: float, device: torch.device) -> None:
    cfg = get_preset("vqvae")
    model = VQVAE(cfg).to(device).eval()
    x = (torch.randn(1, 1, int(seconds * cfg.sample_rate) // 128 * 128) * 0.1).to(device)
    with torch.no_grad():
        for level, block in enumerate(model.bottleneck.level_blocks):
            block.k.copy_(torch.randn_like(block.k) * model.encoders[level](x[..., :8192]).std())
    chunk = 10 * cfg.sample_rate
    audio_s = x.shape[-1] / cfg.sample_rate
    print(f"official vqvae preset, {audio_s:.1f} s of 44.1 kHz audio, chunks of 10 s, {device}:")
    for level in range(cfg.levels):
        codes = encode_chunked(model, x, level, chunk)
        t_enc = _timed(lambda: encode_chunked(model, x, level, chunk))
        t_dec = _timed(lambda: decode_chunked(model, codes, level, chunk))
        print(
            f"  level {level} (hop {cfg.hop_lengths[level]:3d}): encode {audio_s / t_enc:7.2f} s/s   "
            f"decode {audio_s / t_dec:7.2f} s/s"
        )


def bench_training(device: torch.device) -> None:
    for name in ("small", "tiny"):
        cfg, tc = get_preset(name), TRAIN_PRESETS[name]
        torch.manual_seed(0)
        model = VQVAE(cfg).to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
        x = torch.randn(tc.batch_size, 1, tc.sample_length, device=device) * 0.1
        bw = Bandwidth(0.08, 0.01, 100.0)

        def step():
            loss, _ = model(x, bw)
            opt.zero_grad()
            loss.backward()
            opt.step()

        t = _timed(lambda: [step() for _ in range(3)], repeats=2) / 3
        audio_s = tc.batch_size * tc.sample_length / cfg.sample_rate
        print(
            f"train {name:5s} (batch {tc.batch_size} x {tc.sample_length} samples): {1 / t:6.2f} steps/s, "
            f"{audio_s / t:6.2f} s of audio per s"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {args.threads} threads")
    bench_codec(args.seconds, device)
    bench_training(device)


if __name__ == "__main__":
    main()

"""Sampling speed per level: tokens/s and real-time factor, at batch 1 and a larger batch.

    python benchmarks/bench_sampling.py [--seconds 4] [--batch 4] [--threads N] [--device cpu|cuda]

Samples a song of --seconds with random-weight priors of the tiny presets (22.05 kHz, hops
128/32/8, context 256) through the real windowed engine. The real-time factor is seconds of audio
the level produces per second of wall time (above 1: faster than real time).
"""

from __future__ import annotations

import argparse
import time

import torch

from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.sampling.engine import HOP_FRACTIONS, LevelSettings, sample_level
from openjukebox.sampling.song import song_lengths

PRESETS = {2: "tiny_top", 1: "tiny_upsampler_1", 0: "tiny_upsampler_0"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    priors = {lv: build_prior(get_preset(name)).to(device).eval() for lv, name in PRESETS.items()}
    n_samples, totals = song_lengths({lv: pr.cfg for lv, pr in priors.items()}, args.seconds)
    audio_s = n_samples / priors[2].cfg.sample_rate
    print(f"torch {torch.__version__}, {args.threads} threads, {device}; {audio_s:.2f} s songs, tiny presets")
    for batch in (1, args.batch):
        codes = {}
        for lv in (2, 1, 0):
            cfg = priors[lv].cfg
            y = torch.tensor([[n_samples, 0, cfg.sample_length, 1, 1]] * batch) if cfg.labels else None
            settings = LevelSettings(temperature=1.0, hop_fraction=HOP_FRACTIONS[lv])
            t = time.perf_counter()
            codes[lv] = sample_level(priors[lv], batch, totals[lv], y, codes.get(lv + 1), settings, seed=0)
            seconds = time.perf_counter() - t
            print(
                f"batch {batch} level {lv}: {batch * totals[lv] / seconds:8.1f} tokens/s, "
                f"real-time factor {batch * audio_s / seconds:6.2f}"
            )


if __name__ == "__main__":
    main()

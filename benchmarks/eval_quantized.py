"""What int8 weights cost in quality on trained priors: bits per token and greedy-token agreement.

    python benchmarks/eval_quantized.py [--model BUNDLE] [--seconds 40]

Renders held-out music (the package's own score renderer: scores and instruments the shipped
model never heard in this form), encodes it with the bundle's VQ-VAE, and scores every level's
prior on its codes in non-overlapping windows, float32 against ``prepare_prior(quantize="int8")``:
teacher-forced bits per token, the share of positions whose most likely code is the same
(teacher-forced argmax agreement), and free-running greedy samples compared token by token. The
conditioning is the codes of the level above and "unknown" artist and genre. Also the sampling
speed of both at batch 1 (256 tokens from an empty window, alternating, the best of 3).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from machine import describe_cpu

from openjukebox.audio.io import load_audio
from openjukebox.audio.synth import write_rendered_dataset
from openjukebox.codec.vqvae import encode_chunked
from openjukebox.models import default_model
from openjukebox.sampling.bundle import Bundle
from openjukebox.sampling.engine import window_labels
from openjukebox.sampling.fast import prepare_prior
from openjukebox.sampling.sampler import sample_window


def held_out_codes(bundle: Bundle, seconds: float) -> dict[int, torch.Tensor]:
    """Codes (1, T_level) per level of rendered scores, concatenated up to ``seconds`` of audio."""
    vqvae = bundle.load_vqvae().eval()
    sr = vqvae.config.sample_rate
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_rendered_dataset(tmp, sr, transposes=(2,))
        audio = np.concatenate([load_audio(p, sr) for p in paths])[: int(seconds * sr)]
    top_hop = max(vqvae.hop_lengths)
    x = torch.from_numpy(audio[: len(audio) // top_hop * top_hop]).view(1, 1, -1)
    with torch.no_grad():
        return {lv: encode_chunked(vqvae, x, lv, 10 * sr).long() for lv in range(len(vqvae.hop_lengths))}


def windows(bundle: Bundle, level: int, codes: dict[int, torch.Tensor]):
    """(codes window (1, n_ctx), label rows or None, window of the level above or None) per window."""
    cfg = bundle.configs[level]
    total = codes[level].shape[1]
    y = bundle.labels(1, None, None)[level]
    if y is not None:
        y[:, 0] = total * cfg.hop_length
    up = cfg.conditioner.upsample if cfg.conditioner else None
    for start in range(0, total - cfg.n_ctx + 1, cfg.n_ctx):
        y_w = None if y is None else window_labels(y, start, cfg)[0]  # lyrics prior: no lyrics (padding)
        above = None if up is None else codes[level + 1][:, start // up : (start + cfg.n_ctx) // up]
        yield codes[level][:, start : start + cfg.n_ctx], y_w, above


@torch.no_grad()
def compare(bundle: Bundle, level: int, codes: dict[int, torch.Tensor], greedy_tokens: int) -> dict:
    fp32 = bundle.load_prior(level).eval()
    int8 = prepare_prior(fp32, quantize="int8")
    bits = {"fp32": [], "int8": []}
    agree, greedy_same, greedy_total = [], 0, 0
    for x, y, above in windows(bundle, level, codes):
        cond = {name: m.condition(y, above, batch=1) for name, m in (("fp32", fp32), ("int8", int8))}
        logits = {}
        for name, m in (("fp32", fp32), ("int8", int8)):
            bits[name].append(m.losses(x, cond[name])["gen"].item())
            logits[name] = m(x, cond[name])
        agree.append((logits["fp32"].argmax(-1) == logits["int8"].argmax(-1)).float().mean().item())
        a = sample_window(fp32, cond["fp32"], greedy_tokens, top_k=1)
        b = sample_window(int8, cond["int8"], greedy_tokens, top_k=1)
        greedy_same += int((a == b).sum())
        greedy_total += a.numel()
    speed = {"fp32": 0.0, "int8": 0.0}
    for _ in range(3):
        for name, m in (("fp32", fp32), ("int8", int8)):
            started = time.perf_counter()
            sample_window(m, cond[name], 256)
            speed[name] = max(speed[name], 256 / (time.perf_counter() - started))
    return {
        "tokens_s_fp32": speed["fp32"],
        "tokens_s_int8": speed["int8"],
        "windows": len(agree),
        "bits_fp32": float(np.mean(bits["fp32"])),
        "bits_int8": float(np.mean(bits["int8"])),
        "argmax_agreement": float(np.mean(agree)),
        "greedy_equal": greedy_same / max(greedy_total, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="a bundle folder (default: the shipped model)")
    p.add_argument("--seconds", type=float, default=40.0, help="seconds of held-out audio")
    p.add_argument("--greedy-tokens", type=int, default=128, help="greedy tokens sampled per window")
    args = p.parse_args()
    torch.set_num_threads(1)
    bundle = Bundle(args.model or default_model())
    codes = held_out_codes(bundle, args.seconds)
    print(f"{args.seconds:.0f} s of held-out rendered scores; float32 vs int8 (transformer and output layers)")
    print(f"{describe_cpu()}; load average before {os.getloadavg()}")
    print("| level | windows | bits/token fp32 | int8 | change | argmax agreement | greedy tokens equal ", end="")
    print("| tokens/s fp32 | int8 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for level in sorted(bundle.configs, reverse=True):
        r = compare(bundle, level, codes, args.greedy_tokens)
        print(
            f"| {level} | {r['windows']} | {r['bits_fp32']:.4f} | {r['bits_int8']:.4f} | "
            f"{r['bits_int8'] - r['bits_fp32']:+.4f} | {100 * r['argmax_agreement']:.1f} % | "
            f"{100 * r['greedy_equal']:.1f} % | {r['tokens_s_fp32']:.0f} | {r['tokens_s_int8']:.0f} |"
        )
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()

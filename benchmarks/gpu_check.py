"""The GPU path, checked and timed on the official shapes (random weights, bf16, CUDA graphs).

    python benchmarks/gpu_check.py                       # on a CUDA machine, under 8 minutes
    python benchmarks/gpu_check.py --device cpu --dtype float32 --tokens 16 \\
        --shapes tiny_top tiny_upsampler_1 tiny_upsampler_0  # a dry run of the script on a CPU

For each shape (prior_5b, prior_1b_lyrics, upsampler_level_1, upsampler_level_0):
1. builds the prior on the device with random weights in bf16 (caches in bf16, layer norms and
   logits in float32);
2. checks the CUDA-graph step against the eager step over 64 greedy tokens: logits within bf16
   tolerance and the same tokens;
3. times sampling at batch 1 and 16 (tokens/s from two lengths, so a window's fixed cost, graph
   capture included, is left out) and the prefill of an upsampler window's primed half, and
   reads the peak memory;
4. compares batch 1 with the memory-bandwidth bound (weights read once per token, at the
   bandwidth a large device copy reaches here).
Then it projects one minute of a 3-level song at batch 1: 20.7k top, 82.7k middle and 330.8k
bottom tokens, windows as the sampler plans them (upsamplers re-prefill half a window each).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.sampling.engine import HOP_FRACTIONS
from openjukebox.sampling.fast import prepare_prior
from openjukebox.sampling.sampler import sample_window

SHAPES = ["prior_5b", "prior_1b_lyrics", "upsampler_level_1", "upsampler_level_0"]
MINUTE_TOKENS = {2: 20_700, 1: 82_700, 0: 330_800}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def label_rows(cfg, batch: int) -> torch.Tensor | None:
    if cfg.labels is None:
        return None
    seconds = max(cfg.labels.min_duration, min(180.0, cfg.labels.max_duration - 1))  # a 3-minute song if allowed
    row = [int(seconds * cfg.sample_rate), 0, cfg.sample_length, 1, 1] + [-1] * (cfg.labels.max_bow_genre_size - 1)
    if cfg.lyrics is not None:
        row += [(7 * i) % (cfg.lyrics.n_vocab - 1) + 1 for i in range(cfg.lyrics.n_tokens)]
    return torch.tensor([row] * batch)


def conditioning(prior, batch: int, device: torch.device):
    cfg = prior.cfg
    y = label_rows(cfg, batch)
    above = None
    if cfg.conditioner is not None:
        above = torch.randint(0, cfg.l_bins, (batch, cfg.n_ctx // cfg.conditioner.upsample), device=device)
    return prior.condition(None if y is None else y.to(device), above, batch=batch)


def timed(device, fn) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def tokens_per_s(prior, cond, device, short: int, long: int, graph: bool) -> float:
    """Steady-state tokens/s (summed over the batch): two lengths, the difference timed."""
    n = cond.start.shape[0]
    t_short = min(timed(device, lambda: sample_window(prior, cond, short, graph=graph)) for _ in range(2))
    t_long = min(timed(device, lambda: sample_window(prior, cond, long, graph=graph)) for _ in range(2))
    if t_long < 1.05 * t_short:  # too few tokens to tell the fixed cost apart: count it in
        return n * long / t_long
    return n * (long - short) / (t_long - t_short)


def check_graph(prior, cond, steps: int) -> tuple[float, bool]:
    """Max |logit difference| / max |logit| and whether the greedy tokens agree, graph vs eager."""
    logits = {True: [], False: []}
    tokens = {}
    for graph in (True, False):
        rec = lambda t, lg, g=graph: logits[g].append(lg.clone())  # noqa: E731
        tokens[graph] = sample_window(prior, cond, steps, top_k=1, graph=graph, on_logits=rec)
    a, b = torch.stack(logits[True]), torch.stack(logits[False])
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-6)), bool(torch.equal(tokens[True], tokens[False]))


def copy_bandwidth(device: torch.device) -> float:
    """Bytes/s of a large device-to-device copy (read + write)."""
    x = torch.empty(512 * 2**20, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    y.copy_(x)
    seconds = min(timed(device, lambda: y.copy_(x)) for _ in range(5))
    return 2 * x.numel() / seconds


def windows(total: int, n_ctx: int, hop_fraction: float) -> int:
    hop = int(hop_fraction * n_ctx)
    return 1 if total <= n_ctx else math.ceil((total - n_ctx) / hop) + 1


@torch.no_grad()
def check_shape(name: str, device: torch.device, dtype: torch.dtype, tokens: int, graph: bool, bandwidth: float):
    cfg = get_preset(name)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    with device:
        prior = build_prior(cfg)
    prior = prepare_prior(prior.eval(), dtype=dtype)
    params = sum(p.numel() for p in prior.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in prior.parameters())
    built = time.perf_counter() - started
    cond1 = conditioning(prior, 1, device)
    rel_diff, same = check_graph(prior, cond1, 64) if graph else (0.0, True)
    rates = {b: tokens_per_s(prior, conditioning(prior, b, device), device, 16, 16 + tokens, graph) for b in (1, 16)}
    prefill = None
    if cfg.conditioner is not None:  # a primed half window, prefilled in chunks as the sampler does
        half = int(HOP_FRACTIONS[cfg.level] * cfg.n_ctx)
        prompt = torch.randint(0, cfg.l_bins, (1, cfg.n_ctx - half), device=device)
        seconds = timed(device, lambda: sample_window(prior, cond1, prompt.shape[1], prompt=prompt, graph=graph))
        prefill = prompt.shape[1] / seconds
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    bound = bandwidth / weight_bytes if bandwidth else float("nan")
    print(
        f"| {name} | {params / 1e9:.2f} B | {built:.0f} s | {rel_diff:.1e} | {'yes' if same else 'NO'} | "
        f"{rates[1]:.1f} | {rates[16]:.1f} | {bound:.0f} | {100 * rates[1] / bound:.0f} % | {peak:.1f} GiB |",
        flush=True,
    )
    return cfg, rates[1], prefill


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--shapes", nargs="+", default=SHAPES)
    p.add_argument("--tokens", type=int, default=128, help="timed tokens per rate (after 16)")
    args = p.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    graph = device.type == "cuda"
    started = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    bandwidth = copy_bandwidth(device)
    print(f"{name}, torch {torch.__version__}, {args.dtype}, CUDA graphs: {graph}; ", end="")
    print(f"copy bandwidth {bandwidth / 1e9:.0f} GB/s")
    print("| shape | params | build | graph vs eager: max logit diff (rel.) | greedy equal (64) | tokens/s b1 | "
          "tokens/s b16 | bandwidth bound b1 | of bound | peak memory |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = {}
    for shape in args.shapes:
        results[shape] = check_shape(shape, device, dtype, args.tokens, graph, bandwidth)
    by_level: dict[int, str] = {}
    for shape, (cfg, _, _) in results.items():
        by_level.setdefault(cfg.level, shape)  # the first top prior listed stands for level 2
    if sorted(by_level) == [0, 1, 2]:
        total = 0.0
        print("\nOne minute of song at batch 1 (sampling only; decoding the audio is not counted):")
        for level in (2, 1, 0):
            cfg, rate, prefill = results[by_level[level]]
            n = windows(MINUTE_TOKENS[level], cfg.n_ctx, HOP_FRACTIONS[level])
            primed = (n - 1) * (cfg.n_ctx - int(HOP_FRACTIONS[level] * cfg.n_ctx))
            seconds = MINUTE_TOKENS[level] / rate + (primed / prefill if prefill else 0.0)
            total += seconds
            shape = by_level[level]
            print(f"  level {level} ({shape}): {MINUTE_TOKENS[level]} tokens, {n} windows: {seconds / 60:.1f} min")
        print(f"  in all: {total / 60:.1f} min for one minute of music (the paper: about 9 hours on a V100)")
    print(f"gpu_check took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

"""The README's song, timed: the reference per-token path against the fast decode step, one run.

    python benchmarks/bench_sampling.py [--seconds 10] [--rounds 2] [--threads 1] [--quantize int8] [--segments 8]

Samples the quickstart's song (the shipped model, genre "sung chorale", the lyrics of
examples/chorale.txt, 10 s, one fixed seed) through ``openjukebox.api.sample`` with
``fast=False`` (the per-token path of the previous releases) and ``fast=True`` (the default),
alternating A B A B; with ``--segments K`` also the fast path with the upsampled levels in K
stretches (A B C, then C B A). Prints each call's wall time (loading, sampling, alignment, decoding,
writing), the sampling time and real-time factor per level (seconds of song per second of
sampling; above 1 is faster than real time), the medians and their ratio, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from machine import describe_cpu

from openjukebox.api import sample
from openjukebox.models import default_model

LYRICS = Path(__file__).resolve().parent.parent / "examples" / "chorale.txt"


def run(path: str, seconds: float, quantize: str, out: Path, segments: int = 1) -> dict:
    started = time.perf_counter()
    meta = sample(
        default_model(),
        out,
        seconds,
        genre="sung chorale",
        seed=1234,
        lyrics_file=LYRICS,
        fast=path != "reference",
        quantize=quantize if path != "reference" else "none",
        segments=segments if path == "segments" else 1,
    )
    return {"wall": time.perf_counter() - started, "levels": {int(k): v for k, v in meta["sampling_s"].items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: as the CLI)")
    p.add_argument("--quantize", default="none", help="for the fast path: none or int8")
    p.add_argument("--segments", type=int, default=1, help="also time the fast path with this many segments")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = ["reference", "fast"] + (["segments"] if args.segments > 1 else [])
    results: dict[str, list[dict]] = {name: [] for name in paths}
    print(f"torch {torch.__version__}, {args.threads} thread(s); load before {os.getloadavg()}")
    print(describe_cpu())
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in paths if r % 2 == 0 else paths[::-1]:
                res = run(name, args.seconds, args.quantize, Path(tmp) / f"{name}_{r}", args.segments)
                results[name].append(res)
                per_level = ", ".join(f"L{lv} {s:.1f} s" for lv, s in sorted(res["levels"].items(), reverse=True))
                print(f"round {r} {name:9s}: {res['wall']:6.1f} s in all; sampling {per_level}")
    print(f"load after {os.getloadavg()}")
    print("| path | song wall time (median) | " + " | ".join(f"level {lv} RTF" for lv in (2, 1, 0)) + " |")
    print("|---|---|---|---|---|")
    med = {}
    for name in paths:
        med[name] = statistics.median(r["wall"] for r in results[name])
        rtf = [args.seconds / statistics.median(r["levels"][lv] for r in results[name]) for lv in (2, 1, 0)]
        print(f"| {name} | {med[name]:.1f} s | " + " | ".join(f"{x:.2f}" for x in rtf) + " |")
    print(f"fast / reference: {med['reference'] / med['fast']:.2f}x faster for the whole song")
    if "segments" in med:
        print(
            f"fast with {args.segments} segments / reference: {med['reference'] / med['segments']:.2f}x; "
            f"/ fast: {med['fast'] / med['segments']:.2f}x"
        )


if __name__ == "__main__":
    main()

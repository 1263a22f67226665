"""Same-run decode speed of our prior against the peer implementations, interleaved (issue 13).

The peers live in their own environments, with the CPU build of torch pinned (an unpinned torch
pulls gigabytes of CUDA). Build them once:

    echo torch==2.13.0 > /work/peers/torch-pin.txt
    python3 -m venv /work/peers/hf
    /work/peers/hf/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
    /work/peers/hf/bin/pip install -c /work/peers/torch-pin.txt transformers==4.57.6
    python3 -m venv /work/peers/jbi
    /work/peers/jbi/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
    /work/peers/jbi/bin/pip install -c /work/peers/torch-pin.txt jukebox-infer==0.1.2
    # (not our constraints.txt: jukebox-infer needs Unidecode>=1.3)
    # optional, the original (openai/jukebox, imported from its checkout; sampling needs only these)
    git clone https://github.com/openai/jukebox /work/peers/original_src
    python3 -m venv /work/peers/orig
    /work/peers/orig/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
    /work/peers/orig/bin/pip install -c /work/peers/torch-pin.txt numpy tqdm unidecode

Then, from the repository root with our environment:

    .venv/bin/python benchmarks/compare_peers.py --hf /work/peers/hf/bin/python \\
        --jukebox-infer /work/peers/jbi/bin/python \\
        [--original /work/peers/orig/bin/python:/work/peers/original_src] \\
        [--batches 1 4 16] [--tokens 256] [--rounds 3] [--variants ref fast int8] [--threads 1]

Our prior is built once with ``torch.manual_seed(0)`` (biases and layer norms also drawn, so that
the check below covers them) and saved to a temporary safetensors file. Every implementation,
ours included, then runs in a worker process of its own environment (benchmarks/peer_worker.py)
that maps the weights onto its layout by an explicit table, strictly. Before timing, each worker
decodes 32 tokens greedily from the same labels through its own sampling path, and its logits
are compared with ours (the fp32 per-token path, in this process) up to the first greedy token
that differs. Timed calls sample ``--tokens`` new tokens from an empty context at temperature 1,
fp32, ``--threads`` threads per worker, progress bars off (TQDM_DISABLE); requests go round the
workers (A B C A B C ...), starting one later each round, after one warm-up call per worker and
batch size. The table gives the median over rounds of tokens/s summed over the batch. Only
ratios measured in one run mean anything; the load average says how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import describe_cpu
from safetensors.torch import save_file

from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.sampling.sampler import sample_window

WORKER = Path(__file__).with_name("peer_worker.py")
CHECK_TOKENS = 32


class Worker:
    """One implementation in its own process; ``ask`` sends a request and waits for the answer."""

    def __init__(self, label: str, python: str, impl: str, shape: Path, weights: Path, log: Path):
        self.label, self.log, self.stderr = label, log, log.open("w")
        env = dict(os.environ, TQDM_DISABLE="1", PYTHONUNBUFFERED="1")
        threads = str(json.loads(shape.read_text())["threads"])
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        if not impl.startswith("ours-"):
            env.pop("PYTHONPATH", None)  # a peer's environment must not see openjukebox
        self.proc = subprocess.Popen(
            [python, str(WORKER), impl, str(shape), str(weights)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),  # not the repository: a peer must not import our src/ by accident
        )

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = "\n".join(self.log.read_text().splitlines()[-25:])
            raise SystemExit(f"worker {self.label} stopped (exit {self.proc.returncode}):\n{tail}")
        return json.loads(line)

    def ask(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.read()
        if "error" in answer:
            raise SystemExit(f"worker {self.label}: {answer['error']}")
        return answer

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.stderr.close()


def label_row(cfg) -> list[int]:
    """One label row (total 90 s, window at 0, artist 1, genre 2), as bench_prior.py uses."""
    sr = cfg.sample_rate
    return [90 * sr, 0, cfg.sample_length, 1, 2, -1, -1, -1, -1][: 4 + cfg.labels.max_bow_genre_size]


def make_weights(preset: str, folder: Path) -> tuple[torch.nn.Module, Path]:
    """Our prior from seed 0, its biases and layer norms drawn too (they start at 0 and 1), saved."""
    torch.manual_seed(0)
    prior = build_prior(get_preset(preset)).eval()
    with torch.no_grad():
        for name, p in prior.named_parameters():
            if name.endswith(".bias") or ".ln_" in name:
                p.add_(torch.randn_like(p), alpha=0.02)
    path = folder / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in prior.state_dict().items()}, str(path))
    return prior, path


def reference_greedy(prior, row: list[int]) -> tuple[list[int], torch.Tensor]:
    """Our fp32 per-token path, greedy: tokens and logits (1, CHECK_TOKENS, V)."""
    seen = []
    y = torch.tensor([row])
    codes = sample_window(
        prior, prior.condition(y), CHECK_TOKENS, top_k=1, on_logits=lambda t, lg: seen.append(lg), fast=False
    )
    return codes.reshape(-1).tolist(), torch.stack(seen, dim=1)


def check_logits(workers: list[Worker], prior, row: list[int], folder: Path) -> dict[str, str]:
    """Each worker's greedy logits against ours: max |difference| over the positions whose earlier
    tokens agree (after a different greedy token the two runs condition on different codes), and
    how many greedy tokens agree before the first difference."""
    tokens, logits = reference_greedy(prior, row)
    scale = logits.abs().max().item()
    report = {}
    for w in workers:
        out = folder / f"logits_{len(report)}.pt"
        theirs = w.ask(op="greedy", tokens=CHECK_TOKENS, out=str(out))["tokens"]
        agree = next((i for i, (a, b) in enumerate(zip(tokens, theirs, strict=True)) if a != b), len(tokens))
        compared = min(agree + 1, len(tokens))
        diff = (torch.load(out, weights_only=True) - logits)[:, :compared].abs().max().item()
        report[w.label] = (
            f"max |logit diff| {diff:.2e} over {compared} positions (logits up to {scale:.2f}); "
            f"greedy tokens equal: {agree}/{len(tokens)}"
        )
    return report


def measure(workers: list[Worker], batches: list[int], tokens: int, rounds: int) -> dict:
    """Tokens/s of every round per (worker label, batch), requests interleaved across the workers."""
    for b in batches:  # warm-up: first call at each batch size
        for w in workers:
            w.ask(op="time", batch=b, tokens=min(tokens, 16))
    rates: dict = {}
    for r in range(rounds):
        order = workers[r % len(workers) :] + workers[: r % len(workers)]  # rotate who goes first
        for b in batches:
            for w in order:
                seconds = w.ask(op="time", batch=b, tokens=tokens)["seconds"]
                rates.setdefault((w.label, b), []).append(b * tokens / seconds)
        print(f"  round {r + 1}/{rounds} done ({time.strftime('%H:%M:%S')})", file=sys.stderr)
    return rates


def table(labels: list[str], peers: list[str], batches: list[int], rates: dict) -> str:
    ours = [lb for lb in labels if lb not in peers]
    lines = [
        "| batch | " + " | ".join(labels) + " | best ours / best peer |",
        "|---" * (len(labels) + 2) + "|",
    ]
    for b in batches:
        cells = [f"{rates[(lb, b)]:.1f}" for lb in labels]
        ratio = "-"
        if peers and ours:
            ratio = f"**{max(rates[(lb, b)] for lb in ours) / max(rates[(lb, b)] for lb in peers):.2f}**"
        lines.append(f"| {b} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hf", metavar="PYTHON", help="python of an environment with transformers==4.57.6")
    p.add_argument("--jukebox-infer", metavar="PYTHON", help="python of an environment with jukebox-infer==0.1.2")
    p.add_argument("--original", metavar="PYTHON:REPO_DIR", help="python, and a checkout of openai/jukebox")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variants", nargs="+", default=["ref", "fast", "int8"], choices=["ref", "fast", "int8"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--preset", default="small", help="our preset of the shape (a top prior without lyrics)")
    args = p.parse_args()
    cfg = get_preset(args.preset)
    lc = cfg.labels
    if cfg.lyrics or cfg.conditioner or cfg.attn_order != 2 or not cfg.merged_decoder or not lc or lc.every_position:
        raise SystemExit(
            f"preset {args.preset}: the peers are built as top-level priors of attn_order 2 with a merged "
            "decoder and the original's labels (no lyrics, no labels at every position), as `small` is"
        )
    torch.set_num_threads(args.threads)

    specs = [(f"ours {v}", sys.executable, f"ours-{v}") for v in args.variants]
    if args.hf:
        specs.append(("transformers", args.hf, "hf"))
    if args.jukebox_infer:
        specs.append(("jukebox-infer", args.jukebox_infer, "jbi"))
    if args.original:
        python, _, repo = args.original.partition(":")
        specs.append(("original", python, f"original:{Path(repo).resolve()}"))
    peers = [label for label, _, impl in specs if not impl.startswith("ours-")]

    with tempfile.TemporaryDirectory(prefix="compare_peers_") as tmp:
        folder = Path(tmp)
        prior, weights = make_weights(args.preset, folder)
        row = label_row(cfg)
        shape = folder / "shape.json"
        shape.write_text(json.dumps({"config": cfg.to_dict(), "labels": row, "threads": args.threads}))
        workers = [
            Worker(lb, py, impl, shape, weights, folder / f"worker_{i}.log") for i, (lb, py, impl) in enumerate(specs)
        ]
        try:
            versions = {w.label: w.read()["torch"] for w in workers}  # every worker loaded its weights
            print(
                f"preset {args.preset}: W {cfg.width}, depth {cfg.depth}, heads {cfg.heads}, n_ctx {cfg.n_ctx}, "
                f"attn_order {cfg.attn_order}, blocks {cfg.blocks}, {cfg.l_bins} codes, "
                f"{sum(p.numel() for p in prior.parameters()) / 1e6:.1f} M params; {args.tokens} new tokens "
                f"per call, {args.threads} thread(s), fp32, {args.rounds} rounds, median; torch {versions}"
            )
            print(describe_cpu())
            print(f"greedy check ({CHECK_TOKENS} tokens, batch 1) against ours (fp32 per-token path):")
            for label, line in check_logits(workers, prior, row, folder).items():
                print(f"  {label:14s} {line}")
            load_before = os.getloadavg()
            rates = measure(workers, args.batches, args.tokens, args.rounds)
            load_after = os.getloadavg()
        finally:
            for w in workers:
                w.close()
    fmt = lambda load: ", ".join(f"{x:.2f}" for x in load)  # noqa: E731
    print(f"load average (1, 5, 15 min): before {fmt(load_before)}, after {fmt(load_after)}; {os.cpu_count()} CPUs")
    spread = max(max(v) / min(v) for v in rates.values())
    print(f"tokens/s summed over the batch, median of {args.rounds} rounds (widest max/min over rounds: {spread:.2f}):")
    medians = {k: statistics.median(v) for k, v in rates.items()}
    print(table([label for label, _, _ in specs], peers, args.batches, medians))


if __name__ == "__main__":
    main()

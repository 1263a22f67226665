"""How well a small lyrics prior learns to align lyrics to audio: median error of the exported alignment.

    python benchmarks/eval_lyrics_alignment.py --work DIR [--preset tiny_top_single] [--steps 1500]

Builds the sung-letters data set (every character's time is known), trains a tiny VQ-VAE and a
lyrics prior on it (or reuses them in DIR), then aligns held-out songs from their true codes
with the attention head the training chose, and prints the median and 90th-percentile error of the
character start times in seconds, next to the error of the linear rule (characters spread evenly).
The alignment is the attention's alone, without the prior around the linear rule that sampling adds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from openjukebox.api import encode
from openjukebox.audio.sung_letters import write_sung_letters
from openjukebox.checkpoint import load_prior
from openjukebox.codec.config import get_preset as codec_preset
from openjukebox.lyrics.timed import read_lyrics
from openjukebox.lyrics.tokenizer import Tokenizer
from openjukebox.prior.config import get_preset
from openjukebox.sampling.alignment import timing_errors
from openjukebox.training.prior import TRAIN_PRESETS as PRIOR_TRAIN
from openjukebox.training.prior import train_prior
from openjukebox.training.vqvae import TRAIN_PRESETS as VQ_TRAIN
from openjukebox.training.vqvae import train_vqvae

SR = 22050


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="folder for the data and the models (reused when present)")
    p.add_argument("--preset", default="tiny_top_single", choices=["tiny_top_single", "tiny_top_lyrics"])
    p.add_argument("--songs", type=int, default=48)
    p.add_argument("--held-out", type=int, default=6)
    p.add_argument("--vqvae-steps", type=int, default=600)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--n-tokens", type=int, help="lyric characters per window (default: the preset's)")
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    work = Path(args.work)
    manifest = work / "train" / "manifest.jsonl"
    if not manifest.exists():
        write_sung_letters(work / "train", SR, args.songs, seconds=12.0, seed=0)
    held = work / "held_out" / "manifest.jsonl"
    if not held.exists():
        write_sung_letters(work / "held_out", SR, args.held_out, seconds=12.0, seed=1)
    started = time.time()
    vq_dir = work / "vqvae"
    if not (vq_dir / "model.safetensors").exists():
        tc = dataclasses.replace(VQ_TRAIN["tiny"], steps=args.vqvae_steps, eval_every=args.vqvae_steps)
        train_vqvae(manifest, vq_dir, codec_preset("tiny"), tc)
    cfg = get_preset(args.preset)
    if args.n_tokens:
        cfg = dataclasses.replace(cfg, lyrics=dataclasses.replace(cfg.lyrics, n_tokens=args.n_tokens))
    prior_dir = work / f"{args.preset}_{cfg.lyrics.n_tokens}"
    if not (prior_dir / "model.safetensors").exists():
        tc = dataclasses.replace(PRIOR_TRAIN["tiny_top"], steps=args.steps, eval_every=250, save_every=250)
        final = train_prior(manifest, prior_dir, 2, vq_dir, cfg, tc)
        print("validation:", json.dumps(final))
    train_minutes = (time.time() - started) / 60
    prior, _, doc = load_prior(prior_dir)
    tokenizer = Tokenizer.from_dict(doc["vocab"]["lyrics"])
    lc = prior.cfg.lyrics
    print(f"alignment head chosen in training: layer {lc.alignment_layer}, head {lc.alignment_head}")
    errors, linear_errors = [], []
    for line in held.read_text().splitlines():
        entry = json.loads(line)
        path = held.parent / entry["path"]
        song = read_lyrics(entry, path, tokenizer)
        codes = encode(path, vq_dir, levels=[2]).codes[2]
        by_spread, linear = timing_errors(prior, tokenizer, codes, song, artist=1, genres=(1,), spreads=(0.0,))
        error = np.abs(by_spread[0.0])  # the attention alone: sampling's prior width was chosen on the shipped model
        errors.extend(error)
        linear_errors.extend(np.abs(linear))
    errors, linear_errors = np.array(errors), np.array(linear_errors)
    print(
        f"{args.preset}, {lc.n_tokens} lyric tokens per window: {len(errors)} held-out characters, "
        f"{args.held_out} songs of ~12 s"
    )
    for name, e in (("alignment error", errors), ("linear rule    ", linear_errors)):
        print(f"  {name}: median {np.median(e):.3f} s, 90th percentile {np.percentile(e, 90):.3f} s")
    print(f"  training time (this run): {train_minutes:.1f} min")


if __name__ == "__main__":
    main()

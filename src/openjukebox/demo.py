"""The end-to-end demo: render scores, train a tiny VQ-VAE, round-trip a piece it never heard.

It is what the README's first command runs until a trained model ships with the package.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from .api import decode, encode, write_audio
from .audio.io import load_audio, save_audio
from .audio.synth import render_score, write_rendered_dataset
from .codec.config import get_preset
from .codec.losses import spectral_convergence_db
from .training.vqvae import TRAIN_PRESETS, train_vqvae

TRAIN_SCORES = ("ode_to_joy", "frere_jacques")


def run_demo(out: Path, steps: int = 400, progress: bool = True) -> dict:
    """Write rendered audio, a trained model, reconstructions per level and ``report.json`` to ``out``."""
    cfg = get_preset("tiny")
    data = out / "data"
    if not data.exists():
        print(f"rendering scores to {data} ...")
        write_rendered_dataset(data, cfg.sample_rate, transposes=(0, 4, -5), scores=TRAIN_SCORES)
    model_dir = out / "model"
    tc = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=steps, eval_every=max(steps // 4, 1))
    if (model_dir / "train_state.pt").exists():
        train_vqvae(data, model_dir, cfg, tc, resume=True, progress=progress, cache=out / "cache")
    else:
        train_vqvae(data, model_dir, cfg, tc, progress=progress, cache=out / "cache")
    piece = out / "minuet_original.wav"  # a score the model never heard
    save_audio(piece, render_score("minuet_in_g", "piano", cfg.sample_rate), cfg.sample_rate)
    codes = encode(piece, model_dir)
    codes.save(out / "minuet.codes")
    original = torch.from_numpy(load_audio(piece, cfg.sample_rate)).view(1, 1, -1)
    report = {"piece": str(piece), "steps": steps, "levels": {}}
    for level in sorted(codes.codes):
        audio = decode(codes, level, model_dir)
        write_audio(out / f"minuet_level_{level}.wav", audio, cfg.sample_rate)
        sc = float(spectral_convergence_db(original, torch.from_numpy(audio).view(1, 1, -1)))
        report["levels"][level] = {"hop": cfg.hop_lengths[level], "spectral_convergence_db": round(sc, 2)}
        print(
            f"level {level} (hop {cfg.hop_lengths[level]:3d}): spectral convergence {sc:6.2f} dB "
            f"-> {out / f'minuet_level_{level}.wav'}"
        )
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"done: listen to {out}/minuet_original.wav and minuet_level_*.wav")
    return report

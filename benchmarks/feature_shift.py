"""How far generated clips sit from real music in the conditioning judges' features.

    python benchmarks/feature_shift.py --runs WORK --clips-dir DIR [--guidance default] [--out FILE]

For every feature of ``clip_classifier.clip_features``: the mean over generated level-0 clips (kept by
``eval_model.py --clips-dir``) minus the mean over the real training clips as the VQ-VAE renders them at
level 0, in standard deviations of the latter; the real held-out clips, rendered the same way, are the
control (they are not generated, so they should sit near 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from clip_classifier import FEATURE_NAMES, SR, clip_features, codec_features, split_clips  # beside this script
from generated_clips import kept_files  # beside this script
from reports import emit  # beside this script

from openjukebox.audio.io import load_audio
from openjukebox.checkpoint import load_vqvae


def shift(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per column: (mean of ``other`` - mean of ``reference``) / standard deviation of ``reference``."""
    return (other.mean(0) - reference.mean(0)) / (reference.std(0) + 1e-12)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, required=True, help="the recipe's folder (all.jsonl, top/split.json, vqvae)")
    p.add_argument("--clips-dir", type=Path, required=True, help="eval_model.py's --clips-dir")
    p.add_argument("--guidance", default="default", help="which kept clips: the folder guidance_NAME (default)")
    p.add_argument("--out", type=Path, help="write the report here too (JSON)")
    args = p.parse_args()
    vq = load_vqvae(args.runs / "vqvae")
    train, held = split_clips(args.runs, 4 * SR)  # as eval_model.py's conditioning takes them
    real = {"train": codec_features(vq, train, 0), "held": codec_features(vq, held, 0)}
    files = kept_files(args.clips_dir, args.guidance, 0)
    generated = np.array([clip_features(load_audio(f, SR)) for f in files])
    z_gen, z_held = shift(real["train"], generated), shift(real["train"], real["held"])
    order = np.argsort(-np.abs(z_gen))
    report = {
        "clips": {"real_training": len(real["train"]), "real_held_out": len(real["held"]), "generated": len(files)},
        "generated_minus_real_sd": {FEATURE_NAMES[i]: round(float(z_gen[i]), 2) for i in order},
        "real_held_out_minus_real_sd": {FEATURE_NAMES[i]: round(float(z_held[i]), 2) for i in order},
    }
    for name in list(report["generated_minus_real_sd"])[:12]:
        print(
            f"{name:22s} generated {report['generated_minus_real_sd'][name]:+6.2f} sd   "
            f"real held-out {report['real_held_out_minus_real_sd'][name]:+6.2f} sd"
        )
    emit(report, args.out, show=False)  # the table above is what it prints


if __name__ == "__main__":
    main()

"""VQ-VAE quality on held-out tracks: spectral convergence (dB, lower is better) per level.

    python benchmarks/eval_codec.py --model RUN_DIR [--seconds 60]

Reads the run's held-out files from RUN_DIR/split.json (or takes --files), encodes and decodes
up to --seconds of each (chunked, as `openjukebox encode/decode` do) and prints per-track and mean
spectral convergence per level.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from openjukebox.api import decode, encode
from openjukebox.audio.io import load_audio, save_audio
from openjukebox.checkpoint import load_vqvae
from openjukebox.codec.losses import spectral_convergence_db


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--files", nargs="*", help="default: the validation files of the model's split.json")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--save", help="folder for the first track's reconstructions (listen to them)")
    args = p.parse_args()
    files = args.files or json.loads((Path(args.model) / "split.json").read_text())["validation"]
    model = load_vqvae(args.model)
    sr = model.config.sample_rate
    scores = {lv: [] for lv in range(model.config.levels)}
    tmp = Path(args.model) / ".eval_excerpt.wav"
    for i, path in enumerate(files):
        audio = load_audio(path, sr, allow_silent=True)[: int(args.seconds * sr)]
        save_audio(tmp, audio, sr)
        codes = encode(tmp, args.model)
        x = torch.from_numpy(load_audio(tmp, sr, allow_silent=True)).view(1, 1, -1)
        line = []
        for lv in scores:
            y = decode(codes, lv, args.model, model=model)
            sc = float(spectral_convergence_db(x, torch.from_numpy(y).view(1, 1, -1)))
            scores[lv].append(sc)
            line.append(f"level {lv} {sc:6.2f} dB")
            if args.save and i == 0:
                save_audio(Path(args.save) / f"level_{lv}.wav", y[0], sr)
        if args.save and i == 0:
            save_audio(Path(args.save) / "original.wav", audio, sr)
        print(f"{Path(path).name[:40]:40s} " + "  ".join(line))
    tmp.unlink(missing_ok=True)
    means = "  ".join(f"level {lv} {np.mean(v):6.2f} dB" for lv, v in scores.items())
    print(f"{'mean over ' + str(len(files)) + ' held-out tracks':40s} {means}")


if __name__ == "__main__":
    main()

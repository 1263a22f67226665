"""Pack the codes of recipes/music_model.sh's data small enough to carry to a lent GPU machine.

    python recipes/gpu_priors_pack.py WORK [--out gpu_pack] [--vqvae DIR] [--levels 2 1] [--max-train-hours H]

The priors train on codes, not audio, so the pack holds the VQ-VAE, every file's codes at ``--levels``
(``.npz`` compressed with xz, in parts of at most about ``--part-mb``), each file's length, labels and lyrics, the
training/validation split (the one a CPU run of the recipe holds out), and the wheels of the
libraries openjukebox imports that a device image may lack. Codes not yet in WORK/cache (where the
recipe's prior stages leave them) are encoded first: about 13 minutes per level for the recipe's
7.7 hours on one core (5 for level 0). Then, with the pack's folder ignored by git
(``echo /gpu_pack >> .git/info/exclude``), one device call trains:

    run(carry=["gpu_pack"], timeout_s=570, command="bash recipes/gpu_priors.sh")

Level 0 has four times level 1's codes: all 7.7 hours would not fit the 64 MiB a device call
carries. ``--max-train-hours`` keeps that many hours of the training files, each next file taken
from the artist and genre with the least kept so far (so an artist with hours of music does not
crowd out the others); the held-out files stay whole. The bottom upsampler's pack and call:

    python recipes/gpu_priors_pack.py WORK --levels 1 0 --max-train-hours 2.05 --pythons 3.12 --out gpu_pack
    run(carry=["gpu_pack"], timeout_s=570, command="JOBS=up0 MINUTES=7.5 bash recipes/gpu_priors.sh")

(2.05 hours made 27.7 MiB, beside 34.6 MiB of the checkout: the script says when the two pass 64.)
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from openjukebox.audio.dataset import prepare_audio
from openjukebox.checkpoint import load_vqvae, model_id
from openjukebox.training.code_windows import encode_tracks, level_file
from openjukebox.training.loop import TrainConfig

WHEELS = ["soundfile", "soxr", "cffi", "pycparser", "safetensors", "tqdm"]
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def balanced(tracks: list, max_samples: float) -> list:
    """Tracks whose lengths add up to at most ``max_samples``, each taken (in order) from the pair of
    artist and genre with the least music kept so far, so that their shares even out; in their
    original order."""
    queues: dict[tuple, list] = {}
    for t in tracks:
        queues.setdefault((t.meta.get("artist", ""), str(t.meta.get("genre", ""))), []).append(t)
    have = dict.fromkeys(queues, 0)
    kept, total = set(), 0
    while waiting := [k for k, queue in queues.items() if queue]:
        key = min(waiting, key=have.get)  # the first such pair on a tie
        t = queues[key].pop(0)
        if total + t.n_samples <= max_samples:
            kept.add(t.path)
            total, have[key] = total + t.n_samples, have[key] + t.n_samples
    return [t for t in tracks if t.path in kept]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path)
    p.add_argument("--out", type=Path, default=Path("gpu_pack"))
    p.add_argument("--vqvae", default="src/openjukebox/models/default/vqvae", help="the VQ-VAE whose codes to pack")
    p.add_argument("--levels", type=int, nargs="+", default=[2, 1])
    p.add_argument("--part-mb", type=float, default=12.0, help="about the largest file of codes in the pack")
    p.add_argument("--max-train-hours", type=float, help="keep this many hours of training files (see above)")
    p.add_argument("--no-wheels", action="store_true", help="leave the wheels out (a device image that has them)")
    p.add_argument("--pythons", nargs="+", default=PYTHONS, help=f"the wheels' Python versions (default {PYTHONS})")
    args = p.parse_args(argv)
    vq = load_vqvae(args.vqvae, "cpu")
    vq_id = model_id(args.vqvae)
    codes_dir = args.work / "cache" / "codes" / vq_id
    tc = TrainConfig()  # the split of a run with the default --seed and validation share
    audio = prepare_audio(
        args.work / "all.jsonl", vq.config.sample_rate, args.work / "cache" / "audio", 1, tc.val_fraction, tc.seed
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vqvae").mkdir(exist_ok=True)  # the VQ-VAE travels with its codes
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(Path(args.vqvae) / name, args.out / "vqvae" / name)
    if args.max_train_hours is not None:
        audio = dataclasses.replace(
            audio, train=balanced(audio.train, args.max_train_hours * 3600 * vq.config.sample_rate)
        )
    sides = {"train": audio.train, "val": audio.val}
    doc = {"vqvae_id": vq_id, "sample_rate": vq.config.sample_rate, "levels": args.levels, "parts": []}
    for side, tracks in sides.items():
        doc[side] = [
            {"path": t.path, "stem": Path(t.cache).stem, "n_samples": t.n_samples, "meta": t.meta} for t in tracks
        ]
    with torch.inference_mode():  # what is cached already is reused
        encode_tracks(vq, audio.train + audio.val, args.levels, codes_dir, lambda xs: tqdm(xs, desc="encoding codes"))
    for level in args.levels:  # one .npz per part: arrays named by file stem
        part, size = {}, 0
        tracks = audio.train + audio.val
        for i, t in enumerate(tracks):
            stem = Path(t.cache).stem
            part[stem] = np.load(level_file(codes_dir / stem, level))
            size += part[stem].nbytes
            if size > 2.5 * args.part_mb * 2**20 or i == len(tracks) - 1:  # int16 codes: about 2.5:1 in xz
                buf = io.BytesIO()
                np.savez(buf, **part)
                packed = lzma.compress(buf.getvalue(), preset=9)  # a quarter smaller than np.savez_compressed
                name = f"codes_l{level}_{len(doc['parts']):02d}.npz.xz"
                (args.out / name).write_bytes(packed)
                doc["parts"].append({"file": name, "level": level})
                print(f"{name}: {len(part)} files, {len(packed) / 2**20:.1f} MiB")
                part, size = {}, 0
    (args.out / "tracks.json").write_text(json.dumps(doc, ensure_ascii=False))
    wheels = args.out / "wheels"
    for version in [] if args.no_wheels else args.pythons:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps"]
            + ["--python-version", version, "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64"]
            + ["--platform", "manylinux_2_17_x86_64", "-d", str(wheels), *WHEELS],
            check=True,
        )
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    hours = sum(t.n_samples for t in audio.train + audio.val) / vq.config.sample_rate / 3600
    print(
        f"{len(audio.train)} training and {len(audio.val)} held-out files ({hours:.2f} hours): "
        f"{size / 2**20:.1f} MiB in {args.out}"
    )
    tree = travelling_bytes()
    if tree is not None and size + tree > 64 * 2**20:
        print(
            f"with the {tree / 2**20:.1f} MiB of files this checkout sends along that is over the 64 MiB a device call "
            "carries: give a smaller --max-train-hours (or fewer --levels, --pythons, --no-wheels)"
        )


def travelling_bytes() -> int | None:
    """The size of the files a device call sends from this checkout (tracked, and untracked but not
    ignored), or None outside a git checkout."""
    git = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    try:
        names = subprocess.run(git, capture_output=True, check=True).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return None
    return sum(p.stat().st_size for p in (Path(os.fsdecode(n)) for n in names if n) if p.is_file())


if __name__ == "__main__":
    main()

"""Train one prior on a pack of codes (recipes/gpu_priors_pack.py), where the audio is not.

    python recipes/gpu_priors.py PACK --out DIR --level L (--preset P | --init-from DIR) [train options]
    python recipes/gpu_priors.py PACK --unpack-only

The pack's codes are unpacked into the cache as the recipe's own encoding would leave them, so the
run is an ordinary ``train prior`` run (resumable, its split and logs in DIR) on the files, labels,
lyrics and split of the CPU recipe. The VQ-VAE is the pack's own copy unless --vqvae names
another; it must be the one the pack was encoded with.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import lzma
import os
from pathlib import Path

import numpy as np

from openjukebox.audio.dataset import AudioSet, Track
from openjukebox.checkpoint import model_id
from openjukebox.fileio import atomic_path
from openjukebox.prior.config import get_preset
from openjukebox.training.code_windows import level_file
from openjukebox.training.finetune import FinetuneSpec
from openjukebox.training.prior import TRAIN_PRESETS, train_prior


def unpack(pack: Path, cache: Path, vqvae: str) -> AudioSet:
    """The pack's codes into ``cache/codes/<vqvae id>`` (once), and its tracks as an AudioSet."""
    doc = json.loads((pack / "tracks.json").read_text())
    if doc["vqvae_id"] != model_id(vqvae):
        raise SystemExit(f"the pack holds the codes of VQ-VAE {doc['vqvae_id']}, not of {vqvae} ({model_id(vqvae)})")
    codes = cache / "codes" / doc["vqvae_id"]
    codes.mkdir(parents=True, exist_ok=True)
    for part in doc["parts"]:
        path = pack / part["file"]  # .npz.xz (or .npz: a pack made before)
        with np.load(io.BytesIO(lzma.decompress(path.read_bytes())) if path.suffix == ".xz" else path) as arrays:
            for stem in arrays.files:
                dest = level_file(codes / stem, part["level"])
                if not dest.exists():
                    with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                        np.save(f, arrays[stem])

    def tracks(side: str) -> list[Track]:
        return [
            Track(t["path"], str(cache / "audio" / f"{t['stem']}.npy"), t["n_samples"], t["meta"]) for t in doc[side]
        ]

    return AudioSet(tracks("train"), tracks("val"), [])


INT_OPTIONS = ("batch_size", "eval_every", "save_every", "warmup_steps")
FLOAT_OPTIONS = ("lr", "label_dropout", "align_weight", "lyric_jitter", "timed_share", "artist_balance")
TRAIN_FIELDS = {"steps", "bf16", "keep_best", *INT_OPTIONS, *FLOAT_OPTIONS}  # the TrainConfig fields given here


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pack", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--unpack-only", action="store_true", help="unpack the codes into --cache and stop")
    p.add_argument("--level", type=int)
    p.add_argument("--preset")
    p.add_argument("--init-from", help="fine-tune this prior (every weight) instead of a new one")
    p.add_argument("--vqvae", help="the VQ-VAE of the codes (default: the pack's own, PACK/vqvae)")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("OPENJUKEBOX_CACHE", "/tmp/openjukebox_cache")))
    p.add_argument("--steps", type=int, default=10**6)
    p.add_argument("--resume", action="store_true")
    for name in INT_OPTIONS:
        p.add_argument(f"--{name.replace('_', '-')}", type=int)
    for name in FLOAT_OPTIONS:
        p.add_argument(f"--{name.replace('_', '-')}", type=float)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--keep-best", action="store_true")
    args = p.parse_args(argv)
    vqvae = args.vqvae or str(args.pack / "vqvae")
    audio = unpack(args.pack, args.cache, vqvae)
    if args.unpack_only:
        return {}
    if args.out is None:
        p.error("give --out, the run folder")
    given = {k: v for k, v in vars(args).items() if k in TRAIN_FIELDS and v is not None and v is not False}
    tc = dataclasses.replace(TRAIN_PRESETS.get(args.preset, TRAIN_PRESETS["mini_top_lyrics"]), **given)
    cfg = get_preset(args.preset) if args.preset else None
    finetune = FinetuneSpec(args.init_from, "full") if args.init_from else None
    final = train_prior(
        audio, args.out, args.level, vqvae, cfg, tc, args.resume, False, args.cache, changes=given, finetune=finetune
    )
    print(json.dumps(final))
    return final


if __name__ == "__main__":
    main()

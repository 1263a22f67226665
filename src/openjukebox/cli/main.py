"""The ``openjukebox`` command: a thin layer over the Python API.

Errors a user can fix (bad files, wrong model folder, unknown preset) print one clear line and
exit with status 2; Ctrl-C exits with 130 after saving what can be saved.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from .. import __version__


def _train_vqvae(args: argparse.Namespace) -> int:
    from ..codec.config import get_preset
    from ..training.vqvae import TRAIN_PRESETS, TrainConfig, train_vqvae

    cfg = get_preset(args.preset)
    tc = TRAIN_PRESETS.get(args.preset, TrainConfig())
    overrides = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "sample_length": args.sample_length,
        "lr": args.lr,
        "seed": args.seed,
        "save_every": args.save_every,
        "eval_every": args.eval_every,
    }
    tc = dataclasses.replace(tc, **{k: v for k, v in overrides.items() if v is not None}, bf16=args.bf16)
    metrics = train_vqvae(args.data, args.out, cfg, tc, resume=args.resume, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 reports
    if metrics:
        levels = sorted(int(k.rsplit("_l", 1)[1]) for k in metrics if k.startswith("sc_db_l"))
        for lv in levels:
            print(
                f"level {lv}: validation spectral convergence {metrics[f'sc_db_l{lv}']:.2f} dB, "
                f"recons {metrics[f'recons_l{lv}']:.4g}, codes used {int(metrics[f'codes_used_l{lv}'])}"
            )
    print(f"model written to {args.out} (use it as --model {args.out})")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from ..api import encode

    codes = encode(args.audio, args.model, args.levels, args.chunk_seconds, args.device, progress=not args.quiet)
    codes.save(args.output)
    shapes = ", ".join(f"level {lv}: {tuple(c.shape[1:])}" for lv, c in sorted(codes.codes.items()))
    print(f"wrote {args.output} ({shapes} codes at {codes.sample_rate} Hz)")
    return 0


def _decode(args: argparse.Namespace) -> int:
    from ..api import decode, write_audio
    from ..codes import CodesFile

    codes = CodesFile.load(args.codes)
    audio = decode(codes, args.level, args.model, args.chunk_seconds, args.device, progress=not args.quiet)
    for path in write_audio(args.output, audio, codes.sample_rate):
        print(f"wrote {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(Path(args.out), steps=args.steps, progress=not args.quiet)
    return 0


def _presets(args: argparse.Namespace) -> int:
    from ..codec.config import PRESETS

    for name, cfg in PRESETS.items():
        print(f"{name:8s} vqvae  {cfg.sample_rate} Hz, hops {cfg.hop_lengths}, {cfg.l_bins} codes, width {cfg.width}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="openjukebox", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"openjukebox {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on your own audio")
    tsub = train.add_subparsers(dest="model_kind", required=True)
    tv = tsub.add_parser("vqvae", help="train the hierarchical VQ-VAE")
    tv.add_argument("--data", required=True, help="folder of audio files, or a JSONL manifest")
    tv.add_argument("--preset", default="small", help="model preset (see `openjukebox presets`)")
    tv.add_argument("--out", required=True, help="run folder: checkpoints, logs and the trained model")
    tv.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    tv.add_argument("--steps", type=int, help="total training steps")
    tv.add_argument("--batch-size", type=int, help="global batch size (split over torchrun processes)")
    tv.add_argument("--sample-length", type=int, help="training crop length in samples")
    tv.add_argument("--lr", type=float)
    tv.add_argument("--seed", type=int)
    tv.add_argument("--save-every", type=int, help="checkpoint interval in steps")
    tv.add_argument("--eval-every", type=int, help="validation interval in steps")
    tv.add_argument("--bf16", action="store_true", help="bf16 autocast (for GPUs)")
    tv.set_defaults(func=_train_vqvae)

    enc = sub.add_parser("encode", help="audio file -> codes file")
    enc.add_argument("audio")
    enc.add_argument("--model", required=True, help="VQ-VAE model folder")
    enc.add_argument("-o", "--output", required=True, help="codes file to write")
    enc.add_argument("--levels", type=int, nargs="+", help="levels to encode (default: all)")
    enc.set_defaults(func=_encode)

    dec = sub.add_parser("decode", help="codes file -> audio file")
    dec.add_argument("codes")
    dec.add_argument("--level", type=int, required=True)
    dec.add_argument("--model", help="VQ-VAE model folder (default: the one recorded in the codes file)")
    dec.add_argument("-o", "--output", required=True, help=".wav or .flac file to write")
    dec.set_defaults(func=_decode)
    for cmd in (enc, dec):
        cmd.add_argument("--chunk-seconds", type=float, default=10.0, help="work in chunks of this length")
        cmd.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cuda if available)")

    demo = sub.add_parser("demo", help="render music, train a tiny codec on it, encode and decode")
    demo.add_argument("--out", default="demo", help="folder for the audio, model and report")
    demo.add_argument("--steps", type=int, default=400)
    demo.set_defaults(func=_demo)

    sub.add_parser("presets", help="list model presets").set_defaults(func=_presets)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:
        print(f"openjukebox: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

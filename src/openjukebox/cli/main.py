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


def _is_main_process() -> bool:
    """False in the other ranks of a torchrun job: only rank 0 reports."""
    return int(os.environ.get("RANK", "0")) == 0


def _overrides(args: argparse.Namespace) -> dict:
    names = ("steps", "batch_size", "sample_length", "lr", "seed", "save_every", "eval_every", "label_dropout")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _train_vqvae(args: argparse.Namespace) -> int:
    from ..codec.config import get_preset
    from ..training.vqvae import TRAIN_PRESETS, TrainConfig, train_vqvae

    cfg = get_preset(args.preset)
    tc = dataclasses.replace(TRAIN_PRESETS.get(args.preset, TrainConfig()), **_overrides(args), bf16=args.bf16)
    metrics = train_vqvae(args.data, args.out, cfg, tc, resume=args.resume, progress=not args.quiet, cache=args.cache)
    if not _is_main_process():
        return 0
    if metrics:
        levels = sorted(int(k.rsplit("_l", 1)[1]) for k in metrics if k.startswith("sc_db_l"))
        for lv in levels:
            print(
                f"level {lv}: validation spectral convergence {metrics[f'sc_db_l{lv}']:.2f} dB, "
                f"recons {metrics[f'recons_l{lv}']:.4g}, codes used {int(metrics[f'codes_used_l{lv}'])}"
            )
    print(f"model written to {args.out} (use it as --model {args.out})")
    return 0


def _train_prior(args: argparse.Namespace) -> int:
    from ..prior.config import get_preset
    from ..training.prior import TRAIN_PRESETS, TrainConfig, train_prior

    tc = dataclasses.replace(TRAIN_PRESETS.get(args.preset, TrainConfig()), **_overrides(args), bf16=args.bf16)
    metrics = train_prior(
        args.data,
        args.out,
        args.level,
        args.vqvae,
        get_preset(args.preset),
        tc,
        resume=args.resume,
        progress=not args.quiet,
        cache=args.cache,
    )
    if _is_main_process():
        if metrics:
            print(
                f"validation: {metrics['bits_per_token']:.3f} bits per token "
                f"(unigram entropy of the codes: {metrics['unigram_bits']:.3f})"
            )
        print(f"model written to {args.out}")
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


def _report_sampled(meta: dict, out) -> None:
    for level, files in sorted(meta["files"].items()):
        print(f"level {level}: {', '.join(files)}")
    print(f"codes, metadata and spectrogram in {out} ({meta['elapsed_s']} s)")


def _sample(args: argparse.Namespace) -> int:
    from ..api import sample
    from ..models import default_model

    meta = sample(
        args.model or default_model(),
        args.out,
        args.seconds,
        args.artist,
        args.genre,
        args.n_samples,
        args.lowest_level,
        args.temperature,
        args.top_k,
        args.top_p,
        args.seed,
        args.device,
        progress=not args.quiet,
        prompt_audio=args.prompt,
        prompt_seconds=args.prompt_seconds,
        codes_file=args.codes,
        lyrics_file=args.lyrics,
        alignment_head=_layer_head(args.alignment_head),
        guidance=args.guidance,
    )
    _report_sampled(meta, args.out)
    return 0


def _layer_head(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        layer, head = (int(v) for v in text.split(":"))
    except ValueError:
        raise SystemExit(f"--alignment-head takes LAYER:HEAD, e.g. 68:2; got {text!r}") from None
    return layer, head


def _compose(args: argparse.Namespace) -> int:
    from ..compose import ask_in_terminal, compose

    meta = compose(
        args.model,
        args.out,
        args.seconds,
        args.step_seconds,
        ask_in_terminal,
        args.artist,
        args.genre,
        args.candidates,
        args.seed,
        args.device,
        progress=not args.quiet,
        temperature=args.temperature,
        guidance=args.guidance,
    )
    _report_sampled(meta, Path(args.out) / "final")
    return 0


def _data_debian(args: argparse.Namespace) -> int:
    from ..data.debian_music import build_debian_music

    entries = build_debian_music(args.out, args.root, args.limit)
    hours = sum(e["duration"] for e in entries) / 3600
    artists = len({e["artist"] for e in entries})
    print(f"wrote {args.out}: {len(entries)} tracks, {hours:.2f} hours, {artists} artists")
    return 0


def _data_scores(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data.scores import build_scores

    bar = None if args.quiet else lambda jobs: tqdm(jobs, desc="rendering scores", unit="score")
    manifest = build_scores(
        args.out, args.sample_rate, args.composers, args.per_composer, args.sets, args.max_seconds, bar
    )
    print(f"wrote {manifest}: {sum(1 for _ in open(manifest))} tracks")
    return 0


def _data_chorales(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data.chorales import build_chorales

    bar = None if args.quiet else lambda items: tqdm(items, desc="singing chorales", unit="chorale")
    manifest = build_chorales(args.out, args.sample_rate, args.limit, args.accompaniment, args.max_seconds, bar)
    print(f"wrote {manifest}: {sum(1 for _ in open(manifest))} sung chorales with timed lyrics")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(Path(args.out), steps=args.steps, progress=not args.quiet)
    return 0


def _import_openai(args: argparse.Namespace) -> int:
    from ..convert.importer import import_checkpoint, import_hf, import_release, read_hparams

    if sum(map(bool, (args.checkpoint, args.release, args.hf))) != 1:
        raise ValueError("give one of: a CHECKPOINT file, --release DIR, --hf DIR")
    if args.preset and args.hparams:
        raise ValueError("give either --preset or --hparams, not both")
    if args.release:
        done = import_release(args.release, args.out, args.ids)
    elif args.hf:
        done = import_hf(args.hf, args.out, args.ids)
    else:
        hparams = read_hparams(args.hparams) if args.hparams else None
        done = [import_checkpoint(args.checkpoint, args.out, args.preset, hparams, args.vqvae, args.ids)]
    for item in done:
        size = f", {item['parameters']:,} parameters" if "parameters" in item else ""
        print(f"{item['kind']}: {item['out']} ({item['tensors']} tensors{size})")
    if not args.ids and any(d["kind"] == "prior" for d in done):
        print("note: no --ids given: artist and genre names cannot be looked up (ids only)", file=sys.stderr)
    return 0


def _presets(args: argparse.Namespace) -> int:
    from ..codec.config import PRESETS
    from ..prior.config import PRESETS as PRIOR_PRESETS

    for name, cfg in PRESETS.items():
        print(f"{name:18s} vqvae  {cfg.sample_rate} Hz, hops {cfg.hop_lengths}, {cfg.l_bins} codes, width {cfg.width}")
    for name, p in PRIOR_PRESETS.items():
        kind = "upsampler" if p.conditioner else "prior"
        print(f"{name:18s} {kind:9s} width {p.width}, depth {p.depth}, heads {p.heads}, n_ctx {p.n_ctx}")
    return 0


def _training_args(p: argparse.ArgumentParser, default_preset: str) -> None:
    p.add_argument("--data", required=True, help="folder of audio files, or a JSONL manifest")
    p.add_argument("--preset", default=default_preset, help="model preset (see `openjukebox presets`)")
    p.add_argument("--out", required=True, help="run folder: checkpoints, logs and the trained model")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--steps", type=int, help="total training steps")
    p.add_argument("--batch-size", type=int, help="global batch size (split over torchrun processes)")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--save-every", type=int, help="checkpoint interval in steps")
    p.add_argument("--eval-every", type=int, help="validation interval in steps")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (for GPUs)")
    p.add_argument(
        "--cache", help="cache of decoded audio and codes (default: $OPENJUKEBOX_CACHE or ~/.cache/openjukebox)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="openjukebox", description="openjukebox: train, encode, decode and sample music with Jukebox-style models."
    )
    p.add_argument("--version", action="version", version=f"openjukebox {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on your own audio")
    tsub = train.add_subparsers(dest="model_kind", required=True)
    tv = tsub.add_parser("vqvae", help="train the hierarchical VQ-VAE")
    _training_args(tv, default_preset="small")
    tv.add_argument("--sample-length", type=int, help="training crop length in samples")
    tv.set_defaults(func=_train_vqvae)
    tp = tsub.add_parser("prior", help="train a top-level prior or an upsampler on a VQ-VAE's codes")
    _training_args(tp, default_preset="tiny_top")
    tp.add_argument("--level", type=int, required=True, help="VQ-VAE level: the top for a prior, lower for upsamplers")
    tp.add_argument("--vqvae", required=True, help="the trained VQ-VAE model folder whose codes to model")
    tp.add_argument(
        "--label-dropout",
        type=float,
        help="probability of training a window with artist (and, apart, genre) unknown; needed by --guidance",
    )
    tp.set_defaults(func=_train_prior)

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

    smp = sub.add_parser("sample", help="sample new music with a model bundle")
    smp.add_argument(
        "--model", help="bundle folder: vqvae/ and prior_level_N/ model folders (default: the model that ships inside)"
    )
    smp.add_argument("--out", required=True, help="output folder; sampling again into it resumes")
    smp.add_argument("--seconds", type=float, help="length of the song (with --codes: default the file's length)")
    smp.add_argument("--artist", help="artist name (see the model's vocabulary)")
    smp.add_argument("--genre", help="genre name (see the model's vocabulary)")
    smp.add_argument("--n-samples", type=int, default=1)
    smp.add_argument("--lowest-level", type=int, help="stop above level 0 (e.g. the top level alone: a quick preview)")
    smp.add_argument("--temperature", type=float, default=0.99)
    smp.add_argument("--top-k", type=int, default=0)
    smp.add_argument("--top-p", type=float, default=0.0)
    smp.add_argument("--seed", type=int, default=0)
    smp.add_argument(
        "--guidance",
        type=float,
        help="classifier-free guidance on artist and genre: 1 none, 2-5 stronger "
        "(default: 3 for models trained with --label-dropout, else 1)",
    )
    smp.add_argument("--device", help="cpu, cuda, mps (default: cuda if available)")
    smp.add_argument("--prompt", help="primed mode: an audio file whose beginning the songs continue")
    smp.add_argument("--prompt-seconds", type=float, default=2.0, help="how much of --prompt to keep")
    smp.add_argument(
        "--lyrics",
        help="lyrics to sing: a .txt file, or .lrc for timed lyrics (needs a model trained with lyrics); "
        "their alignment is written to OUT/alignment/ as JSON, LRC and PNG",
    )
    smp.add_argument(
        "--alignment-head",
        help="LAYER:HEAD whose attention gives the lyric alignment (default: the model's, else the most monotonic)",
    )
    smp.add_argument("--codes", help="continue a codes file to --seconds, or upsample its complete top level")
    smp.set_defaults(func=_sample)

    cmp = sub.add_parser("compose", help="co-compose: pick among candidate continuations, then upsample")
    cmp.add_argument("--model", required=True, help="bundle folder: vqvae/ and prior_level_N/ model folders")
    cmp.add_argument("--out", required=True, help="output folder: round_NN/ previews, chosen.codes, final/")
    cmp.add_argument("--seconds", type=float, required=True, help="length of the finished song")
    cmp.add_argument("--step-seconds", type=float, default=4.0, help="how much each round adds")
    cmp.add_argument("--candidates", type=int, default=3)
    cmp.add_argument("--artist")
    cmp.add_argument("--genre")
    cmp.add_argument("--temperature", type=float, default=0.99)
    cmp.add_argument("--guidance", type=float, help="as for sample")
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--device")
    cmp.set_defaults(func=_compose)

    data = sub.add_parser("data", help="build training manifests from data that installs offline")
    dsub = data.add_subparsers(dest="builder", required=True)
    deb = dsub.add_parser("debian-music", help="real recordings: Debian's wesnoth and warzone2100 music packages")
    deb.add_argument("--out", required=True, help="manifest (.jsonl) to write")
    deb.add_argument("--root", default="/usr/share/games", help="where the packages installed their music")
    deb.add_argument("--limit", type=int, help="at most this many tracks")
    deb.set_defaults(func=_data_debian)
    from ..data.scores import COMPOSERS, INSTRUMENT_SETS

    sco = dsub.add_parser("scores", help="the music21 corpus rendered with General MIDI instrument sets as genres")
    sco.add_argument("--out", required=True, help="folder for the audio and manifest.jsonl")
    sco.add_argument(
        "--composers", nargs="+", default=["bach", "beethoven", "mozart", "haydn"], choices=list(COMPOSERS)
    )
    sco.add_argument("--per-composer", type=int, default=8, help="scores per composer")
    sco.add_argument(
        "--sets", nargs="+", default=["piano", "strings", "organ", "guitar", "choir"], choices=list(INSTRUMENT_SETS)
    )
    sco.add_argument("--max-seconds", type=float, default=60.0, help="cut each rendering at this length")
    sco.add_argument("--sample-rate", type=int, default=22050)
    sco.set_defaults(func=_data_scores)
    cho = dsub.add_parser("chorales", help="Bach chorales with their German lyrics sung (espeak-ng + WORLD), timed")
    cho.add_argument("--out", required=True, help="folder for the audio and manifest.jsonl")
    cho.add_argument("--limit", type=int, default=20, help="number of chorales")
    cho.add_argument("--accompaniment", default="organ", choices=list(INSTRUMENT_SETS))
    cho.add_argument("--max-seconds", type=float, default=90.0)
    cho.add_argument("--sample-rate", type=int, default=22050)
    cho.set_defaults(func=_data_chorales)

    demo = sub.add_parser("demo", help="render music, train a tiny codec on it, encode and decode")
    demo.add_argument("--out", default="demo", help="folder for the audio, model and report")
    demo.add_argument("--steps", type=int, default=400)
    demo.set_defaults(func=_demo)

    imp = sub.add_parser(
        "import-openai",
        help="convert original Jukebox checkpoints (.pth.tar) into openjukebox model folders",
        description="Convert an original Jukebox checkpoint, loaded with weights_only=True (files that would run "
        "code are refused), or a whole release folder (--release) into ready-to-sample bundles.",
    )
    imp.add_argument("checkpoint", nargs="?", help="an original .pth.tar (VQ-VAE or prior)")
    imp.add_argument("--out", required=True, help="model folder to write (with --release: a folder of bundles)")
    imp.add_argument("--preset", help="official preset (vqvae, prior_5b, ...); default: the checkpoint's hps")
    imp.add_argument("--hparams", help="JSON of original hyperparameter names, overriding the checkpoint's hps")
    imp.add_argument("--vqvae", help="the imported VQ-VAE folder this prior was trained on (hop lengths, identity)")
    imp.add_argument("--ids", help="data/ids folder of the original repository: artist and genre ids (v2/v3)")
    imp.add_argument("--release", help="folder in the release layout: 5b/, 5b_lyrics/, 1b_lyrics/ with .pth.tar")
    imp.add_argument(
        "--hf", help="folder of the Hugging Face mirror (transformers port), e.g. openai/jukebox-1b-lyrics"
    )
    imp.set_defaults(func=_import_openai)

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

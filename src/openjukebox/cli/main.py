"""The ``openjukebox`` command: the parser, and the one place where errors become messages.

Every option is checked as it is parsed (``cli/args.py``); each command checks its paths and
models before any work (``cli/commands.py``). An error a user can fix prints one line,
``openjukebox: error: <what was wrong and what to do>``, and exits with status 2, without a
traceback; output folders the failed command created are removed when empty. Ctrl-C exits with
130 after saving what can be saved. ``OPENJUKEBOX_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from . import args as A
from . import commands as C
from .guard import OutputGuard, describe, one_line_warnings


def _training_args(p: argparse.ArgumentParser, presets: str, required: bool = True) -> None:
    p.add_argument("--data", required=required, help="folder of audio files, or a JSONL manifest")
    p.add_argument("--preset", help=f"model preset (default {presets}; see `openjukebox presets`); not with --resume")
    p.add_argument("--out", required=required, help="run folder: checkpoints, logs and the trained model")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out where it stopped, with its saved settings; --steps, --save-every, "
        "--eval-every, --bf16 and --keep-best may change them",
    )
    p.add_argument("--steps", type=A.positive_int, help="total training steps (default: the preset's)")
    p.add_argument("--batch-size", type=A.positive_int, help="global batch size (split over torchrun processes)")
    p.add_argument("--lr", type=A.positive_float, help="learning rate after warmup (default: the preset's)")
    p.add_argument("--seed", type=A.seed, help="seed of the weights and of the data order (default 0)")
    p.add_argument("--save-every", type=A.positive_int, help="checkpoint interval in steps")
    p.add_argument("--eval-every", type=A.positive_int, help="validation interval in steps")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (for GPUs)")
    p.add_argument(
        "--keep-best",
        action="store_true",
        help="also export the model of the lowest validation loss so far into OUT/best (a run that starts to "
        "overfit keeps its best model)",
    )
    p.add_argument(
        "--cache", help="cache of decoded audio and codes (default: $OPENJUKEBOX_CACHE or ~/.cache/openjukebox)"
    )


def _large_model_args(p: argparse.ArgumentParser) -> None:
    """``train prior``'s options for fine-tuning and for priors that outgrow one device."""
    p.add_argument(
        "--init-from",
        help="fine-tune this prior instead of a new one: a prior model folder, a bundle (its --level prior, "
        "else its top; its vqvae/ is the default --vqvae), or 'default', the shipped model; not with --preset",
    )
    p.add_argument(
        "--finetune",
        choices=["full", "frozen", "lora"],
        default="lora",
        help="with --init-from: train every weight (full), all but the transformer blocks (frozen), or LoRA "
        "adapters and the label embeddings (lora: a small adapter folder for `sample --adapter`; default)",
    )
    p.add_argument(
        "--new-labels",
        choices=["mean", "unknown"],
        default="mean",
        help="with --init-from: embedding rows of artists and genres new to the model start as the mean of the "
        "known rows (default), or as 'unknown'",
    )
    p.add_argument(
        "--strategy",
        choices=["ddp", "fsdp"],
        help="under torchrun: ddp (every rank holds the whole model; default) or fsdp (fully_shard per residual "
        "block, sharded checkpoints that resume on any number of ranks); may change on --resume",
    )
    p.add_argument(
        "--activation-checkpointing",
        action="store_true",
        help="recompute each transformer block in the backward pass: the same training, far less memory",
    )
    p.add_argument("--lora-rank", type=A.positive_int, default=8, help="rank of the LoRA adapters (default 8)")
    p.add_argument(
        "--lora-alpha", type=A.positive_float, default=16.0, help="LoRA scale alpha (update x alpha/rank; default 16)"
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the memory per rank of training --preset (DDP and FSDP, with and without activation "
        "checkpointing) for --world-size ranks, worked out on the meta device, and stop",
    )
    p.add_argument(
        "--world-size", type=A.world_size, default=1, help="with --plan: the number of ranks (GPUs) to plan for"
    )


def _sampling_args(p: argparse.ArgumentParser) -> None:
    """The options ``sample`` and ``compose`` share."""
    p.add_argument(
        "--model", help="bundle folder: vqvae/ and prior_level_N/ model folders (default: the model that ships inside)"
    )
    p.add_argument("--artist", help="artist name (`openjukebox info MODEL` lists them)")
    p.add_argument("--genre", help="genre name (`openjukebox info MODEL` lists them)")
    p.add_argument(
        "--temperature",
        type=A.per_level,
        default=0.99,
        help="above 0; below 1 makes the likeliest codes likelier, above 1 makes choices more random; one number "
        "for every level, or one per level from the top down (0.99,0.9,0.9 samples the upsamplers cooler) "
        "(default 0.99)",
    )
    p.add_argument(
        "--guidance",
        type=A.per_level,
        help="classifier-free guidance on artist and genre: 1 none, 2-5 stronger; one number for every level, "
        "or one per level from the top down (3,1,1 guides only the top of 3 levels, faster) (default: 3 on every "
        "level whose prior was trained with --label-dropout, else 1)",
    )
    p.add_argument("--seed", type=A.seed, help="random seed (default: a new one, printed and saved in metadata.json)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    p.add_argument(
        "--adapter",
        help="a LoRA adapter folder (`train prior --init-from ... --finetune lora`) made for a prior of --model; "
        "it is merged into that prior, which then also takes the new artists and genres",
    )
    p.add_argument(
        "--quantize",
        choices=["none", "int8"],
        default="none",
        help="int8: int8 weights in the priors' transformers, CPU only; faster for wide priors (at width 512 and "
        "batch 1, 2.6-3.3x measured on a CPU with AVX-512 VNNI, 1.4x with AVX2 only), slower for the small shipped "
        "model (default none)",
    )
    p.add_argument(
        "--segments",
        type=A.number(int, 1, 64),
        default=1,
        help="sample each upsampled level in up to this many stretches side by side, each run in before its "
        "seam: about this many times fewer steps, not the same codes (default 1: window after window)",
    )


def _add(sub, name: str, func, **kw) -> argparse.ArgumentParser:
    p = sub.add_parser(name, **kw)
    A.quiet_flag(p)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every option with its help, checked as it is parsed."""
    p = A.Parser(
        prog="openjukebox", description="openjukebox: train, encode, decode and sample music with Jukebox-style models."
    )
    p.add_argument("--version", action="version", version=f"openjukebox {__version__}", help="print the version")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model on your own audio")
    tsub = train.add_subparsers(dest="model_kind", required=True, metavar="KIND")
    tv = _add(tsub, "vqvae", C.train_vqvae, help="train the hierarchical VQ-VAE")
    _training_args(tv, presets="small")
    tv.add_argument("--sample-length", type=A.positive_int, help="training crop length in samples")
    tp = _add(tsub, "prior", C.train_prior, help="train a top-level prior or an upsampler on a VQ-VAE's codes")
    _training_args(tp, presets="tiny_top", required=False)  # --plan needs neither data nor a run folder
    tp.add_argument("--level", type=A.non_negative_int, help="VQ-VAE level: the top for a prior, lower for upsamplers")
    tp.add_argument("--vqvae", help="the trained VQ-VAE model folder whose codes to model")
    tp.add_argument(
        "--label-dropout",
        type=A.number(float, 0, 1),
        help="probability of training a window with artist (and, apart, genre) unknown; needed by --guidance",
    )
    tp.add_argument(
        "--align-weight",
        type=A.number(float, 0, 100),
        help="lyrics priors: weight of the lyric-alignment loss, which teaches the alignment head the character "
        "sung at each moment of the songs with timed lyrics (default 0: the head learns without it)",
    )
    tp.add_argument(
        "--lyric-jitter",
        type=A.number(float, 0, 60),
        help="lyrics priors: move each training window's lyrics by up to this many seconds either way, as "
        "plain-text lyrics are misplaced when sampling (default 0)",
    )
    tp.add_argument(
        "--timed-share",
        type=A.number(float, 0, 1),
        help="lyrics priors: the share of each batch drawn from the songs with timed lyrics (default 0: "
        "windows are drawn by length alone)",
    )
    tp.add_argument(
        "--artist-balance",
        type=A.number(float, 0, 1),
        help="the share of the windows --timed-share leaves (all without it) drawn with every artist equally "
        "likely, so that an artist with few tracks is learned too (default 0: windows are drawn by length alone)",
    )
    tp.add_argument(
        "--sampled-inputs",
        type=A.number(float, 0, 1),
        help="the share of each window's input codes replaced by the prior's own draws, so that it learns to go "
        "on from codes it drew itself, as it must when sampling (default 0: always the true codes)",
    )
    _large_model_args(tp)

    enc = _add(sub, "encode", C.encode, help="audio file -> codes file")
    enc.add_argument("audio", help="audio file: WAV, FLAC, Ogg Vorbis, Opus or MP3")
    enc.add_argument("--model", help="VQ-VAE model folder, or a bundle (default: the model that ships inside)")
    enc.add_argument("-o", "--output", required=True, help="codes file to write (e.g. song.codes)")
    enc.add_argument("--levels", type=A.non_negative_int, nargs="+", help="levels to encode (default: all)")

    dec = _add(sub, "decode", C.decode, help="codes file -> audio file")
    dec.add_argument("codes", help="codes file written by encode or sample")
    dec.add_argument("--level", type=A.non_negative_int, required=True, help="which level of the codes to decode")
    dec.add_argument(
        "--model", help="VQ-VAE model folder or bundle (default: the one recorded in the codes file, else the shipped)"
    )
    dec.add_argument("-o", "--output", required=True, help="audio file to write: .wav, .flac, .ogg or .mp3")
    for cmd in (enc, dec):
        cmd.add_argument(
            "--chunk-seconds", type=A.seconds, default=10.0, help="work in chunks of this length (default 10)"
        )
        cmd.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cuda if available)")

    smp = _add(sub, "sample", C.sample, help="sample new music with a model bundle")
    _sampling_args(smp)
    smp.add_argument("--out", required=True, help="output folder; sampling again into it resumes")
    smp.add_argument("--seconds", type=A.seconds, help="length of the song (with --codes: default the file's length)")
    smp.add_argument("--n-samples", type=A.positive_int, default=1, help="how many songs to sample (default 1)")
    smp.add_argument(
        "--lowest-level",
        type=A.non_negative_int,
        help="stop above level 0 (e.g. the top level alone: a quick preview); run again without it to continue down",
    )
    smp.add_argument(
        "--top-k", type=A.non_negative_int, default=0, help="sample among the k likeliest codes only (default 0: off)"
    )
    smp.add_argument(
        "--top-p",
        type=A.probability,
        default=0.0,
        help="sample among the likeliest codes whose probabilities add up to p, from 0 to 1 (default 0: off)",
    )
    smp.add_argument("--prompt", help="primed mode: an audio file whose beginning the songs continue")
    smp.add_argument("--prompt-seconds", type=A.seconds, default=2.0, help="how much of --prompt to keep (default 2)")
    smp.add_argument(
        "--lyrics",
        help="lyrics to sing: a .txt file, or .lrc for timed lyrics (needs a model trained with lyrics); "
        "their alignment is written to OUT/alignment/ as JSON, LRC and PNG",
    )
    smp.add_argument(
        "--alignment-head",
        type=A.layer_head,
        help="LAYER:HEAD whose attention gives the lyric alignment (default: the model's, else the most monotonic)",
    )
    smp.add_argument("--codes", help="continue a codes file to --seconds, or upsample its complete top level")
    smp.add_argument(
        "--keep-down-to",
        type=A.number(int, 1),
        metavar="LEVEL",
        help="with --codes of a complete song: keep its codes from the top level down to LEVEL and sample only "
        "the levels below (default: the top level alone)",
    )

    cmp = _add(sub, "compose", C.compose, help="co-compose: pick among candidate continuations, then upsample")
    _sampling_args(cmp)
    cmp.add_argument("--out", required=True, help="output folder: round_NN/ previews, chosen.codes, final/")
    cmp.add_argument("--seconds", type=A.seconds, required=True, help="length of the finished song")
    cmp.add_argument("--step-seconds", type=A.seconds, default=4.0, help="how much each round adds (default 4)")
    cmp.add_argument("--candidates", type=A.positive_int, default=3, help="continuations per round (default 3)")

    inf = _add(sub, "info", C.info, help="list a model's artists, genres, lyric characters and song lengths")
    inf.add_argument("model", nargs="?", help="bundle or model folder (default: the model that ships inside)")

    data = sub.add_parser("data", help="build training manifests from data that installs offline")
    dsub = data.add_subparsers(dest="builder", required=True, metavar="BUILDER")
    deb = _add(dsub, "debian-music", C.data_debian, help="real recordings: Debian's wesnoth and warzone2100 music")
    deb.add_argument("--out", required=True, help="manifest (.jsonl) to write")
    deb.add_argument("--root", default="/usr/share/games", help="where the packages installed their music")
    deb.add_argument("--limit", type=A.positive_int, help="at most this many tracks")
    from ..data.scores import COMPOSERS, INSTRUMENT_SETS

    sco = _add(dsub, "scores", C.data_scores, help="the music21 corpus rendered with General MIDI instrument sets")
    sco.add_argument("--out", required=True, help="folder for the audio and manifest.jsonl")
    sco.add_argument(
        "--composers",
        nargs="+",
        default=["bach", "beethoven", "mozart", "haydn"],
        choices=list(COMPOSERS),
        help="composers to render (they become the artists)",
    )
    sco.add_argument("--per-composer", type=A.positive_int, default=8, help="scores per composer")
    sco.add_argument(
        "--sets",
        nargs="+",
        default=["piano", "strings", "organ", "guitar", "choir"],
        choices=list(INSTRUMENT_SETS),
        help="instrument sets (they become the genres)",
    )
    sco.add_argument("--max-seconds", type=A.seconds, default=60.0, help="cut each rendering at this length")
    sco.add_argument("--sample-rate", type=A.positive_int, default=22050, help="sample rate of the audio in Hz")
    cho = _add(dsub, "chorales", C.data_chorales, help="Bach chorales with their German lyrics sung, timed")
    cho.add_argument("--out", required=True, help="folder for the audio and manifest.jsonl")
    cho.add_argument("--limit", type=A.positive_int, default=20, help="number of chorales")
    cho.add_argument(
        "--accompaniment", default="organ", choices=list(INSTRUMENT_SETS), help="instrument set of the lower parts"
    )
    cho.add_argument("--max-seconds", type=A.seconds, default=90.0, help="cut each chorale at this length")
    cho.add_argument("--sample-rate", type=A.positive_int, default=22050, help="sample rate of the audio in Hz")
    cho.add_argument(
        "--skip", type=A.non_negative_int, default=0, help="pass over the first chorales (songs another build sang)"
    )
    cho.add_argument(
        "--uneven", action="store_true", help="sing in rubato: phrases at varied tempi, rests after the fermatas"
    )

    demo = _add(sub, "demo", C.demo, help="render music, train a tiny codec on it, encode and decode")
    demo.add_argument("--out", default="demo", help="folder for the audio, model and report")
    demo.add_argument("--steps", type=A.positive_int, default=400, help="training steps of the tiny codec")

    imp = _add(
        sub,
        "import-openai",
        C.import_openai,
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

    srv = _add(
        sub,
        "serve",
        C.serve,
        help="a browser page and a REST API for generating songs (needs openjukebox[serve])",
        description="Serve a page (Gradio) and a REST API (FastAPI, schema at /api/openapi.json) over one queue "
        "of generation jobs, kept in --work and resumed after a restart.",
    )
    srv.add_argument("--model", help="bundle folder (default: the model that ships inside)")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=A.port, default=7860, help="port (default 7860)")
    srv.add_argument("--work", default="openjukebox-serve", help="folder for the jobs (default ./openjukebox-serve)")
    srv.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    _add(sub, "presets", C.presets, help="list model presets")
    return p


def _outputs(args: argparse.Namespace) -> list[str]:
    """The folders this command writes into (for an output file, its folder)."""
    folders = [getattr(args, "out", None), getattr(args, "work", None)]
    if getattr(args, "output", None):
        folders.append(os.path.dirname(os.path.abspath(args.output)))
    return [f for f in folders if f]


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    debug = bool(os.environ.get("OPENJUKEBOX_DEBUG"))
    with one_line_warnings():
        try:
            args = build_parser().parse_args(argv)
        except A.UsageError as e:
            print(f"openjukebox: error: {describe(e)}", file=sys.stderr)
            return 2
        try:
            with OutputGuard(_outputs(args)):
                return args.func(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except (ValueError, OSError) as e:  # UserError and the other problems with the user's input
            if debug:
                raise
            print(f"openjukebox: error: {describe(e)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())

"""What each subcommand does: a thin layer over the Python API.

Every command checks its paths and options before any work (an output that cannot be written, an
audio format that cannot be made, a model that does not fit), so a refused command has done nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from ..errors import UserError

TRAIN_OPTIONS = (
    "steps",
    "batch_size",
    "sample_length",
    "lr",
    "seed",
    "save_every",
    "eval_every",
    "label_dropout",
    "align_weight",
    "lyric_jitter",
    "timed_share",
    "artist_balance",
    "sampled_inputs",
    "strategy",
)


def is_main_process() -> bool:
    """False in the other ranks of a torchrun job: only rank 0 reports."""
    return int(os.environ.get("RANK", "0")) == 0


def _given(args: argparse.Namespace) -> dict:
    """The training options given on the command line (not their defaults)."""
    given = {k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k, None) is not None}
    flags = {k: True for k in ("bf16", "activation_checkpointing", "keep_best") if getattr(args, k, False)}
    return {**given, **flags}


def _out_folder(path: str) -> Path:
    """A folder to write into: refused before any work when it is a file or cannot be written."""
    from ..api import check_output_folder

    check_output_folder(Path(path))
    return Path(path)


def _out_file(path: str, what: str) -> Path:
    """A file to write: refused before any work when it is a folder or its folder cannot be written."""
    from ..api import probe_writable

    out = Path(path)
    if out.is_dir():
        raise UserError(f"{out}: is a folder; give -o the name of the {what} to write, e.g. {out / ('x' + what)}")
    probe_writable(out.parent)
    return out


def train_vqvae(args: argparse.Namespace) -> int:
    """``train vqvae``."""
    from ..codec.config import get_preset
    from ..training.vqvae import TRAIN_PRESETS, TrainConfig, train_vqvae

    out = _out_folder(args.out)
    preset = args.preset or ("small" if not args.resume else None)
    cfg = get_preset(preset) if preset else None
    tc = dataclasses.replace(TRAIN_PRESETS.get(preset, TrainConfig()), **_given(args))
    metrics = train_vqvae(
        args.data, out, cfg, tc, resume=args.resume, progress=not args.quiet, cache=args.cache, changes=_given(args)
    )
    if not is_main_process():
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


def train_prior(args: argparse.Namespace) -> int:
    """``train prior``."""
    from ..prior.config import get_preset
    from ..training import finetune as FT
    from ..training.prior import TRAIN_PRESETS, TrainConfig, train_prior

    if args.plan:
        return _plan(args)
    spec = _finetune_spec(args)
    for option in ("data", "out", "vqvae"):
        if getattr(args, option) is None:
            raise UserError(f"train prior needs --{option} (only --plan goes without it)")
    out = _out_folder(args.out)
    if not args.resume and args.level is None and spec is None:
        raise UserError("say which VQ-VAE level the prior models (--level; the top level for a prior)")
    preset = args.preset or ("tiny_top" if not (args.resume or spec) else None)
    cfg = get_preset(preset) if preset else None
    if spec is not None and cfg is not None:
        raise UserError("give either --preset (a new prior) or --init-from (a prior to fine-tune), not both")
    base = FT.train_config(spec, args.level) if spec is not None else TRAIN_PRESETS.get(preset, TrainConfig())
    tc = dataclasses.replace(base, **_given(args))
    metrics = train_prior(
        args.data,
        out,
        args.level,
        args.vqvae,
        cfg,
        tc,
        resume=args.resume,
        progress=not args.quiet,
        cache=args.cache,
        changes=_given(args),
        finetune=spec,
    )
    if is_main_process():
        if metrics:
            print(
                f"validation: {metrics['bits_per_token']:.3f} bits per token "
                f"(unigram entropy of the codes: {metrics['unigram_bits']:.3f})"
            )
        what = "adapter" if (out / "adapter_config.json").exists() else "model"  # a LoRA run, new or resumed
        print(f"{what} written to {args.out}")
    return 0


def _finetune_spec(args: argparse.Namespace):
    """The fine-tune asked for with --init-from (None without it); its bundle's VQ-VAE is the default --vqvae."""
    from ..training import finetune as FT

    if args.init_from is None:
        return None
    if args.resume:
        raise UserError("resuming continues the run as it started; leave out --init-from")
    if args.vqvae is None:
        args.vqvae = FT.default_vqvae(args.init_from)
    return FT.FinetuneSpec(args.init_from, args.finetune, args.new_labels, args.lora_rank, args.lora_alpha)


def _plan(args: argparse.Namespace) -> int:
    """``train prior --plan``: the memory plan of --preset on --world-size ranks; nothing is trained."""
    from ..prior.config import get_preset
    from ..training.plan import memory_plan
    from ..training.prior import TRAIN_PRESETS, TrainConfig

    if args.resume:
        raise UserError("--plan plans a new run from --preset; leave out --resume")
    preset = args.preset or "tiny_top"
    batch = args.batch_size or TRAIN_PRESETS.get(preset, TrainConfig()).batch_size
    print(memory_plan(preset, get_preset(preset), args.world_size, batch).table())
    return 0


def codec_folder(model: str | None) -> Path:
    """The VQ-VAE folder of ``--model``: a VQ-VAE folder, a bundle's ``vqvae/``, or the shipped model's."""
    from ..models import default_model

    path = Path(model) if model else default_model()
    return path / "vqvae" if (path / "vqvae").is_dir() and not (path / "config.json").exists() else path


def encode(args: argparse.Namespace) -> int:
    """``encode``."""
    from ..api import encode

    output = _out_file(args.output, ".codes")
    codes = encode(args.audio, codec_folder(args.model), args.levels, args.chunk_seconds, args.device, not args.quiet)
    codes.save(output)
    shapes = ", ".join(f"level {lv}: {tuple(c.shape[1:])}" for lv, c in sorted(codes.codes.items()))
    print(f"wrote {output} ({shapes} codes at {codes.sample_rate} Hz)")
    return 0


def decode(args: argparse.Namespace) -> int:
    """``decode``."""
    from ..api import decode, write_audio
    from ..audio.io import check_output_format
    from ..codes import CodesFile

    output = _out_file(args.output, ".wav")
    check_output_format(output)
    codes = CodesFile.load(args.codes)
    model = codec_folder(args.model) if args.model or not codes.model.get("path") else None
    audio = decode(codes, args.level, model, args.chunk_seconds, args.device, progress=not args.quiet)
    for path in write_audio(output, audio, codes.sample_rate):
        print(f"wrote {path}")
    return 0


def _report_sampled(meta: dict, out) -> None:
    for level, files in sorted(meta["files"].items()):
        print(f"level {level}: {', '.join(files)}")
    print(f"codes, metadata and spectrogram in {out} ({meta['elapsed_s']} s); seed {meta['seed']}")


def _shared_sampling(args: argparse.Namespace) -> dict:
    """The keyword options ``sample`` and ``compose`` share (main.py's ``_sampling_args``)."""
    return {
        "temperature": args.temperature,
        "guidance": args.guidance,
        "quantize": args.quantize,
        "adapter": args.adapter,
        "segments": args.segments,
    }


def sample(args: argparse.Namespace) -> int:
    """``sample``."""
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
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        prompt_audio=args.prompt,
        prompt_seconds=args.prompt_seconds,
        codes_file=args.codes,
        keep_down_to=args.keep_down_to,
        lyrics_file=args.lyrics,
        alignment_head=args.alignment_head,
        **_shared_sampling(args),
    )
    _report_sampled(meta, args.out)
    return 0


def compose(args: argparse.Namespace) -> int:
    """``compose``: needs a terminal (or answers piped in) to pick candidates."""
    from ..compose import ask_in_terminal, compose
    from ..models import default_model

    if sys.stdin is None or sys.stdin.closed:
        raise UserError("compose asks which candidate to keep, but its input is closed; run it in a terminal")
    _out_folder(args.out)
    meta = compose(
        args.model or default_model(),
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
        **_shared_sampling(args),
    )
    _report_sampled(meta, Path(args.out) / "final")
    return 0


def info(args: argparse.Namespace) -> int:
    """``info [MODEL]``: what a bundle or model folder knows (names, lyric characters, lengths)."""
    from .info import describe_model

    print(describe_model(args.model))
    return 0


def data_debian(args: argparse.Namespace) -> int:
    """``data debian-music``."""
    from ..data.debian_music import build_debian_music

    entries = build_debian_music(args.out, args.root, args.limit)
    hours = sum(e["duration"] for e in entries) / 3600
    artists = len({e["artist"] for e in entries})
    print(f"wrote {args.out}: {len(entries)} tracks, {hours:.2f} hours, {artists} artists")
    return 0


def data_scores(args: argparse.Namespace) -> int:
    """``data scores``."""
    from tqdm import tqdm

    from ..data.scores import build_scores

    bar = None if args.quiet else lambda jobs: tqdm(jobs, desc="rendering scores", unit="score")
    manifest = build_scores(
        args.out, args.sample_rate, args.composers, args.per_composer, args.sets, args.max_seconds, bar
    )
    print(f"wrote {manifest}: {sum(1 for _ in open(manifest))} tracks")
    return 0


def data_chorales(args: argparse.Namespace) -> int:
    """``data chorales``."""
    from tqdm import tqdm

    from ..data.chorales import build_chorales

    bar = None if args.quiet else lambda items: tqdm(items, desc="singing chorales", unit="chorale")
    manifest = build_chorales(
        args.out, args.sample_rate, args.limit, args.accompaniment, args.max_seconds, bar, args.skip, args.uneven
    )
    print(f"wrote {manifest}: {sum(1 for _ in open(manifest))} sung chorales with timed lyrics")
    return 0


def demo(args: argparse.Namespace) -> int:
    """``demo``."""
    from ..demo import run_demo

    run_demo(_out_folder(args.out), steps=args.steps, progress=not args.quiet)
    return 0


def import_openai(args: argparse.Namespace) -> int:
    """``import-openai``."""
    from ..convert.importer import import_checkpoint, import_hf, import_release, read_hparams

    if sum(map(bool, (args.checkpoint, args.release, args.hf))) != 1:
        raise UserError("give one of: a CHECKPOINT file, --release DIR, --hf DIR")
    if args.preset and args.hparams:
        raise UserError("give either --preset or --hparams, not both")
    _out_folder(args.out)
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


def serve(args: argparse.Namespace) -> int:
    """``serve``: the page and the REST API until Ctrl-C; jobs left running resume at the next start."""
    try:
        import fastapi  # noqa: F401
        import gradio  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise UserError(f"serve needs {e.name}: pip install 'openjukebox[serve]'") from None
    from ..models import default_model
    from ..serve.app import create_app
    from ..serve.jobs import JobStore
    from ..serve.ui import mount

    store = JobStore(args.model or default_model(), _out_folder(args.work), args.device)
    app = mount(create_app(store), store)
    print(f"openjukebox serve: http://{args.host}:{args.port}/ (API docs at /api/docs); jobs in {args.work}")
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        store.close()
    return 0


def presets(args: argparse.Namespace) -> int:
    """``presets``."""
    from ..codec.config import PRESETS
    from ..prior.config import PRESETS as PRIOR_PRESETS

    for name, cfg in PRESETS.items():
        print(f"{name:18s} vqvae  {cfg.sample_rate} Hz, hops {cfg.hop_lengths}, {cfg.l_bins} codes, width {cfg.width}")
    for name, p in PRIOR_PRESETS.items():
        kind = "upsampler" if p.conditioner else "prior"
        print(f"{name:18s} {kind:9s} width {p.width}, depth {p.depth}, heads {p.heads}, n_ctx {p.n_ctx}")
    return 0

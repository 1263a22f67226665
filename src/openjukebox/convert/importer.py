"""``openjukebox import-openai``: original Jukebox checkpoints to openjukebox model folders.

A checkpoint is read with ``torch.load(weights_only=True)`` only: a file that needs arbitrary
Python objects to load is refused. The model is described by an official preset (``--preset``),
or by the original's hyperparameters: those stored in the checkpoint (``hps``), or a JSON of the
same names (``--hparams``). Shapes are always taken from the weights themselves (the ``hps`` the
original stores are the merged defaults of a run, which need not match the weights); the
hyperparameters give what weights cannot tell (heads, attention pattern, blocks, dilations,
durations, sample rate). The model is built on the meta device and every converted tensor is
moved out of the loaded checkpoint as it is converted, so the largest prior is never held twice.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path

import torch

from ..checkpoint import load_state_strict, model_id, read_model_config, save_state
from ..codec.config import LossConfig, VQVAEConfig
from ..codec.config import get_preset as codec_preset
from ..codec.vqvae import VQVAE
from ..fileio import read_text
from ..lyrics.tokenizer import Tokenizer
from ..prior.config import ConditionerConfig, LabelConfig, LyricsConfig, PriorConfig
from ..prior.config import get_preset as prior_preset
from ..prior.model import build_prior
from ..prior.vocab import OfficialVocab
from .openai import ConversionError, convert_prior_state

RELEASE = {  # release layout (under jukebox/models/) -> (output folder, preset)
    "5b/vqvae.pth.tar": ("vqvae", "vqvae"),
    "5b/prior_level_0.pth.tar": ("prior_level_0", "upsampler_level_0"),
    "5b/prior_level_1.pth.tar": ("prior_level_1", "upsampler_level_1"),
    "5b/prior_level_2.pth.tar": ("5b/prior_level_2", "prior_5b"),
    "5b_lyrics/prior_level_2.pth.tar": ("5b_lyrics/prior_level_2", "prior_5b_lyrics"),
    "1b_lyrics/prior_level_2.pth.tar": ("1b_lyrics/prior_level_2", "prior_1b_lyrics"),
}


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict with any DDP ``module.`` prefix removed, stored hps) of an original checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such checkpoint file")
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:  # files saved before torch 1.6 (the release) cannot be memory-mapped
            if "mmap" not in str(e) and "zip" not in str(e):
                raise
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).strip().splitlines()[0][:300]
        raise ConversionError(
            f"{path} was refused: it cannot be loaded with weights_only=True, which means it holds Python "
            f"objects that would run code when unpickled ({reason}). openjukebox never loads such files; "
            "if you trust the file, re-save its tensors alone with the code that made it."
        ) from None
    except Exception as e:  # a truncated or foreign file
        raise ConversionError(f"{path} is not a readable PyTorch checkpoint: {e}") from None
    if isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict):
        state, hps = ckpt["model"], dict(ckpt.get("hps") or {})
    elif isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state, hps = ckpt, {}
    else:
        raise ConversionError(f"{path} holds no Jukebox state dict (expected {{'model': ..., 'hps': ...}})")
    return {k.removeprefix("module."): v for k, v in state.items()}, hps


def read_hparams(path: str | os.PathLike) -> dict:
    """Original hyperparameter names as JSON: a flat dict, or {"full_hparams", "overrides"}."""
    import json

    try:
        doc = json.loads(read_text(path, "hparams JSON file"))
    except json.JSONDecodeError as e:
        raise ConversionError(f"{path}: not valid JSON ({e}); give a JSON object of hyperparameters") from None
    if not isinstance(doc, dict):
        raise ConversionError(f"{path}: holds no JSON object; give a JSON object of hyperparameters")
    if "full_hparams" in doc or "overrides" in doc:
        return {**doc.get("full_hparams", {}), **doc.get("overrides", {})}
    return doc


def kind_of(state: dict) -> str:
    if any(k.startswith(("encoders.", "decoders.", "bottleneck.")) for k in state):
        return "vqvae"
    if any(k.startswith("prior.") for k in state):
        return "prior"
    raise ConversionError("the checkpoint is neither a Jukebox VQ-VAE nor a prior (no encoders./prior. keys)")


def _opt(h: dict, key: str, default):
    """An optional hyperparameter; None (unset in the original's defaults) counts as missing."""
    value = h.get(key)
    return default if value is None else value


def _need(h: dict, key: str, why: str):
    if key not in h or h[key] is None:
        raise ConversionError(f"hyperparameter {key!r} is needed ({why}); give it with --hparams or use --preset")
    return h[key]


def vqvae_config(h: dict, state: dict) -> VQVAEConfig:
    """A VQVAEConfig from the original's hyperparameters; codebook size and width from the weights."""
    k = state.get("bottleneck.level_blocks.0.k")
    if k is None:
        raise ConversionError("the VQ-VAE has no codebook (bottleneck.level_blocks.0.k)")
    levels = int(_need(h, "levels", "number of VQ-VAE levels"))
    return VQVAEConfig(
        sample_rate=int(_need(h, "sr", "sample rate")),
        levels=levels,
        downs_t=tuple(_need(h, "downs_t", "downsampling per level")),
        strides_t=tuple(_need(h, "strides_t", "stride per level")),
        emb_width=int(k.shape[1]),
        l_bins=int(k.shape[0]),
        width=int(_need(h, "width", "VQ-VAE width")),
        depth=int(_need(h, "depth", "VQ-VAE depth")),
        m_conv=float(_opt(h, "m_conv", 1.0)),
        dilation_growth_rate=int(_opt(h, "dilation_growth_rate", 1)),
        dilation_cycle=h.get("dilation_cycle"),
        multipliers=tuple(h.get("hvqvae_multipliers") or (1,) * levels),
        reverse_decoder_dilation=bool(_opt(h, "vqvae_reverse_decoder_dilation", True)),
        mu=float(_opt(h, "l_mu", 0.99)),
        revival_threshold=float(_opt(h, "revival_threshold", 1.0)),
        loss=LossConfig(
            l2=float(_opt(h, "lmix_l2", 1.0)),
            linf=float(_opt(h, "lmix_linf", 0.02)),
            linf_k=int(_opt(h, "linf_k", 2048)),
            spectral=float(_opt(h, "spectral", 0.0)),
            multispectral=float(_opt(h, "multispectral", 1.0)),
            commit=float(_opt(h, "commit", 0.02)),
            multispec_n_fft=tuple(_opt(h, "multispec_loss_n_fft", (2048, 1024, 512))),
            multispec_hop=tuple(_opt(h, "multispec_loss_hop_length", (240, 120, 50))),
            multispec_window=tuple(_opt(h, "multispec_loss_window_size", (1200, 600, 240))),
        ),
    )


def _count(state: dict, pattern: str) -> int:
    return len({m.group(1) for k in state if (m := re.match(pattern, k))})


def _hop(h: dict, level: int, codec: VQVAEConfig | None, upsample: int | None = None) -> tuple[int, int]:
    """(hop length, sample rate) of ``level``: from the VQ-VAE when given, else from consistent hps.

    ``upsample`` (an upsampler's conditioner factor, read from its weights) must equal the ratio of
    the hps' hops of ``level + 1`` and ``level``: the stored hps of an upsampler are often the
    original's defaults (2 levels, downs_t (1, 1)), which would give a wrong hop without a word.
    """
    if codec is not None:
        if level >= codec.levels:
            raise ConversionError(f"the prior is for level {level}, but the VQ-VAE has {codec.levels} levels")
        return codec.hop_lengths[level], codec.sample_rate
    downs, strides, levels = h.get("downs_t"), h.get("strides_t"), h.get("levels")
    hint = "pass --vqvae with the (imported) VQ-VAE this prior was trained on"
    if not (downs and strides and levels and level < levels == len(downs) == len(strides)):
        raise ConversionError(
            f"the checkpoint's hps (levels {levels}, downs_t {downs}) do not say the hop length of level "
            f"{level}; {hint}"
        )
    hops = [math.prod(s**d for s, d in zip(strides[: i + 1], downs[: i + 1], strict=True)) for i in range(levels)]
    if upsample is not None and (level + 1 >= levels or hops[level + 1] != hops[level] * upsample):
        above = f"level {level + 1} has hop {hops[level + 1]}" if level + 1 < levels else f"no level {level + 1}"
        raise ConversionError(
            f"this upsampler of level {level} turns each code of level {level + 1} into {upsample} codes, but the "
            f"checkpoint's hps (levels {levels}, downs_t {downs}, strides_t {strides}) give level {level} hop "
            f"{hops[level]} and {above}: they are the original's defaults, not this model's; {hint}"
        )
    return hops[level], int(h["sr"])


def prior_config(h: dict, state: dict, codec: VQVAEConfig | None = None) -> PriorConfig:
    """A PriorConfig from the original's hyperparameters, with every shape read from the weights."""
    level = int(_need(h, "level", "the prior's level"))
    emb, pos = state["prior.x_emb.weight"], state["prior.pos_emb.pos_emb"]
    for key in ("spread", "prime_spread"):
        if h.get(key):
            raise ConversionError(f"{key}={h[key]}: summary attention is not supported (no official model uses it)")
    lyrics = None
    single = bool(h.get("single_enc_dec"))
    n_ctx, l_bins = pos.shape[0], emb.shape[0]
    frac = float(_opt(h, "prime_loss_fraction", 0.4))
    align = dict(alignment_layer=h.get("alignment_layer"), alignment_head=h.get("alignment_head"))
    if single:
        n_tokens, n_vocab = int(_need(h, "n_tokens", "lyric tokens")), int(_need(h, "n_vocab", "lyric vocabulary"))
        n_ctx, l_bins = n_ctx - n_tokens, l_bins - n_vocab
        lyrics = LyricsConfig(n_tokens=n_tokens, n_vocab=n_vocab, single_enc_dec=True, loss_fraction=frac, **align)
    elif "prime_prior.x_emb.weight" in state:
        p_emb = state["prime_prior.x_emb.weight"]
        lyrics = LyricsConfig(
            n_tokens=int(state["prime_prior.pos_emb.pos_emb"].shape[0]),
            n_vocab=int(p_emb.shape[0]),
            width=int(p_emb.shape[1]),
            depth=_count(state, r"prime_prior\.transformer\._attn_mods\.(\d+)\."),
            heads=int(_need(h, "prime_heads", "lyric encoder heads")),
            attn_order=int(_opt(h, "prime_attn_order", 0)),
            blocks=h.get("prime_blocks"),
            init_scale=float(_opt(h, "prime_init_scale", 1.0)),
            loss_fraction=frac,
            **align,
        )
    labels = None
    if "y_emb.artist_emb.emb.weight" in state:
        timing = "y_emb.total_length_emb.emb.weight" in state
        labels = LabelConfig(
            genre_bins=int(state["y_emb.bow_genre_emb.emb.weight"].shape[0]),
            artist_bins=int(state["y_emb.artist_emb.emb.weight"].shape[0]),
            max_bow_genre_size=int(_need(h, "max_bow_genre_size", "genre slots")),
            t_bins=int(state["y_emb.total_length_emb.emb.weight"].shape[0]) if timing else int(_opt(h, "t_bins", 128)),
            timing=timing,
            min_duration=float(_opt(h, "min_duration", 0.0) or 0.0),
            max_duration=float(_opt(h, "max_duration", 600.0)),
        )
    conditioner = None
    if "conditioner_blocks.0.x_emb.weight" in state:
        c = "conditioner_blocks.0.cond.model."
        stages = _count(state, re.escape(c) + r"([1-9]\d*)\.1\.weight")  # transposed convs: one per x stride
        up = state[f"{c}1.1.weight"]
        named = any(".blocks." in k for k in state if k.startswith(c))
        res = r"\.blocks\.(\d+)\." if named else r"\.model\.(\d+)\.model\."
        conditioner = ConditionerConfig(
            width=int(state[f"{c}0.weight"].shape[0]),
            depth=_count(state, re.escape(f"{c}1.0") + res),
            dilation_growth_rate=int(_opt(h, "cond_dilation_growth_rate", 1)),
            dilation_cycle=h.get("cond_dilation_cycle"),
            res_scale=bool(_opt(h, "cond_res_scale", False)),
            down_t=stages,
            stride_t=int(up.shape[-1]) // 2,
            named_blocks=named,
        )
    hop, sr = _hop(h, level, codec, conditioner.upsample if conditioner else None)
    return PriorConfig(
        level=level,
        l_bins=int(l_bins),
        n_ctx=int(n_ctx),
        width=int(emb.shape[1]),
        depth=_count(state, r"prior\.transformer\._attn_mods\.(\d+)\."),
        heads=int(_need(h, "heads", "attention heads")),
        attn_order=int(_opt(h, "attn_order", 0)),
        blocks=h.get("blocks"),
        init_scale=float(_opt(h, "init_scale", 1.0)),
        m_attn=float(_opt(h, "m_attn", 0.25)),
        m_mlp=float(_opt(h, "m_mlp", 1.0)),
        merged_decoder=bool(_opt(h, "merged_decoder", False)),
        sample_rate=sr,
        hop_length=hop,
        labels=labels,
        conditioner=conditioner,
        lyrics=lyrics,
    )


def _vocab(cfg: PriorConfig, h: dict, ids: str | os.PathLike | None, preset: str | None) -> dict | None:
    """The label vocabulary stored with an imported prior: official v2/v3 ids and lyric tokenizer."""
    if cfg.labels is None:
        return None
    v3 = bool(h.get("labels_v3")) or (preset == "prior_1b_lyrics")
    version = "v3" if v3 else "v2"
    vocab = OfficialVocab.read(ids, version).to_dict() if ids else {"official": version, "artists": {}, "genres": {}}
    if cfg.lyrics is not None:
        tokenizer = Tokenizer.official(version)
        if tokenizer.n_vocab != cfg.lyrics.n_vocab:
            raise ConversionError(
                f"the prior has {cfg.lyrics.n_vocab} lyric ids; the {version} vocabulary {tokenizer.n_vocab}"
            )
        vocab["lyrics"] = tokenizer.to_dict()
    return vocab


def import_checkpoint(
    path: str | os.PathLike,
    out: str | os.PathLike,
    preset: str | None = None,
    hparams: dict | None = None,
    vqvae_dir: str | os.PathLike | None = None,
    ids: str | os.PathLike | None = None,
) -> dict:
    """Convert one original checkpoint into the model folder ``out``; returns a summary."""
    state, stored = read_checkpoint(path)
    return import_state(state, {**stored, **(hparams or {})}, out, preset, vqvae_dir, ids, str(path))


def import_state(
    state: dict[str, torch.Tensor],
    h: dict,
    out: str | os.PathLike,
    preset: str | None = None,
    vqvae_dir: str | os.PathLike | None = None,
    ids: str | os.PathLike | None = None,
    source: str = "",
) -> dict:
    """Convert a state dict with the original's key names (consumed) into the model folder ``out``."""
    if kind_of(state) == "vqvae":
        if preset and preset != "vqvae":
            raise ConversionError(f"{source} is a VQ-VAE; --preset {preset} is a prior preset")
        cfg = codec_preset("vqvae") if preset else vqvae_config(h, state)
        with torch.device("meta"):
            model = VQVAE(cfg)
        load_state_strict(model, state, source, assign=True)  # checks every key and shape
        save_state(out, {k: v.float() for k, v in state.items()}, "vqvae", cfg.to_dict(), source=source)
        return {"kind": "vqvae", "out": str(out), "tensors": len(state)}
    codec = None
    if vqvae_dir is not None:
        codec = VQVAEConfig.from_dict(read_model_config(vqvae_dir, "vqvae")["config"])
    cfg = prior_preset(preset) if preset else prior_config(h, state, codec)
    extra = {"source": source}
    vocab = _vocab(cfg, h, ids, preset)  # before the long part: a wrong --ids fails at once
    if vocab is not None:
        extra["vocab"] = vocab
    if vqvae_dir is not None:
        extra["vqvae"] = {"id": model_id(vqvae_dir), "path": str(Path(vqvae_dir).resolve())}
    with torch.device("meta"):
        model = build_prior(cfg)
    converted = convert_prior_state(state, model, consume=True)
    n = sum(v.numel() for v in converted.values())
    save_state(out, converted, "prior", cfg.to_dict(), **extra)
    return {"kind": "prior", "out": str(out), "tensors": len(converted), "parameters": n}


def import_hf(folder: str | os.PathLike, out: str | os.PathLike, ids: str | os.PathLike | None = None) -> list[dict]:
    """Convert a transformers-port folder (e.g. openai/jukebox-1b-lyrics) into the bundle ``out``
    (vqvae/ and prior_level_{0,1,2}/), with the official presets."""
    from .hf import read_hf

    parts = read_hf(folder)
    if "vqvae" not in parts:
        raise ConversionError(f"{folder} holds no vqvae.* weights")
    out = Path(out)
    done = [import_state(parts.pop("vqvae"), {}, out / "vqvae", "vqvae", source=str(folder))]
    for part in sorted(parts, reverse=True):
        state = parts.pop(part)
        level = int(part.rsplit("_", 1)[1])
        if level == 2:
            rows = state["prior.x_emb.weight"].shape[0]
            preset = (
                "prior_5b_lyrics"
                if "prime_prior.x_emb.weight" in state
                else "prior_1b_lyrics"
                if rows == 2048 + 79
                else "prior_5b"
            )
        else:
            preset = f"upsampler_level_{level}"
        done.append(import_state(state, {}, out / part, preset, out / "vqvae", ids, str(folder)))
    return done


def import_release(
    folder: str | os.PathLike, out: str | os.PathLike, ids: str | os.PathLike | None, presets: bool = True
) -> list[dict]:
    """Convert the release layout under ``folder`` into ready-to-sample bundles under ``out``:
    ``out/{5b,5b_lyrics,1b_lyrics}/`` each with vqvae/ and prior_level_{0,1,2}/ (the shared VQ-VAE
    and upsamplers are converted once and linked into each bundle). One prior in memory at a time.
    ``presets=False`` describes each model by its stored hps instead of the official presets."""
    folder, out = Path(folder), Path(out)
    found = {rel: folder / rel for rel in RELEASE if (folder / rel).is_file()}
    if "5b/vqvae.pth.tar" not in found:
        raise ConversionError(f"{folder} has no 5b/vqvae.pth.tar: point --release at the folder holding 5b/, ...")
    shared = out / "shared"
    done = []
    for rel, path in found.items():
        target, preset = RELEASE[rel]
        dest = shared / target if target.startswith(("vqvae", "prior_level")) else out / target
        vq = None if preset == "vqvae" else shared / "vqvae"
        done.append(import_checkpoint(path, dest, preset=preset if presets else None, vqvae_dir=vq, ids=ids))
    for name in ("5b", "5b_lyrics", "1b_lyrics"):
        if not (out / name / "prior_level_2").is_dir():
            continue
        for part in ("vqvae", "prior_level_0", "prior_level_1"):
            link = out / name / part
            if (shared / part).is_dir() and not link.exists():
                link.symlink_to(Path("..") / "shared" / part, target_is_directory=True)
    return done

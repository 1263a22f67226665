"""The Hugging Face mirrors (transformers' Jukebox port) back to the original key names, by one table.

The port stores one ``JukeboxModel``: ``vqvae.*`` and ``priors.{0,1,2}.*`` (priors.0 is the top
level, priors.2 level 0), in sharded ``pytorch_model-*.bin`` (or ``*.safetensors``) files. Its
names are mapped back to the original's here, so that everything after (the original's key table,
strict shape checks, presets) is shared with ``import-openai`` of the original files.

Block indices differ: the port flattens the original's nested ``model.i.j`` Sequentials of the
VQ-VAE and the upsampler conditioner into ``downsample_block.{2i+j}`` (encoders) and
``upsample_block.{2i+j-2}`` (decoders, conditioner). Rules give a template and, where needed, a
function of the matched index.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file

from .importer import read_checkpoint
from .openai import ConversionError

WB = {"weight": "w", "bias": "b"}


def _enc_proj(m, down_t):  # encoders.L.level_blocks.B.proj_out -> model.{down_t}
    return f"encoders.{m[1]}.level_blocks.{m[2]}.model.{down_t[('encoders', m[1], m[2])]}.{m[3]}"


# (pattern on the port's key, original key template or function(match, down_t) -> key)
VQVAE_RULES: list[tuple[str, str | Callable]] = [
    (
        r"encoders\.(\d+)\.level_blocks\.(\d+)\.downsample_block\.(\d+)\.(weight|bias)",
        lambda m, _: f"encoders.{m[1]}.level_blocks.{m[2]}.model.{int(m[3]) // 2}.0.{m[4]}",
    ),
    (
        r"encoders\.(\d+)\.level_blocks\.(\d+)\.downsample_block\.(\d+)\.resnet_block\.(\d+)\.conv1d_([12])\.(weight|bias)",
        lambda m, _: (
            f"encoders.{m[1]}.level_blocks.{m[2]}.model.{int(m[3]) // 2}.1.model.{m[4]}.model."
            f"{1 if m[5] == '1' else 3}.{m[6]}"
        ),
    ),
    (r"encoders\.(\d+)\.level_blocks\.(\d+)\.proj_out\.(weight|bias)", _enc_proj),
    (r"decoders\.(\d+)\.level_blocks\.(\d+)\.proj_in\.(weight|bias)", "decoders.{0}.level_blocks.{1}.model.0.{2}"),
    (
        r"decoders\.(\d+)\.level_blocks\.(\d+)\.upsample_block\.(\d+)\.resnet_block\.(\d+)\.conv1d_([12])\.(weight|bias)",
        lambda m, _: (
            f"decoders.{m[1]}.level_blocks.{m[2]}.model.{int(m[3]) // 2 + 1}.0.model.{m[4]}.model."
            f"{1 if m[5] == '1' else 3}.{m[6]}"
        ),
    ),
    (
        r"decoders\.(\d+)\.level_blocks\.(\d+)\.upsample_block\.(\d+)\.(weight|bias)",
        lambda m, _: f"decoders.{m[1]}.level_blocks.{m[2]}.model.{(int(m[3]) + 1) // 2}.1.{m[4]}",
    ),
    (r"decoders\.(\d+)\.out\.(weight|bias)", "decoders.{0}.out.{1}"),
    (r"bottleneck\.level_blocks\.(\d+)\.codebook", "bottleneck.level_blocks.{0}.k"),
]

_T = r"(prior|encoder)\.transformer\._attn_mods\.(\d+)\."
PRIOR_RULES: list[tuple[str, str | Callable]] = [
    (r"metadata_embedding\.(bow_genre|artist)_emb\.weight", "y_emb.{0}_emb.emb.weight"),
    (r"metadata_embedding\.(total_length|absolute_pos|relative_pos)_emb\.emb\.weight", "y_emb.{0}_emb.emb.weight"),
    (r"prior\.embed_tokens\.weight", "prior.x_emb.weight"),
    (r"prior\.pos_emb\.pos_emb", "prior.pos_emb.pos_emb"),
    (r"prior\.start_token", "prior.start_token"),
    (r"prior\.fc_proj_out\.weight", "prior.x_out.weight"),
    (
        _T + r"(attn\.c_attn|attn\.c_proj|attn\.c_enc_kv|mlp\.c_fc|mlp\.c_proj)\.(weight|bias)",
        lambda m, _: f"{_side(m[1])}.transformer._attn_mods.{m[2]}.{m[3]}.{WB[m[4]]}",
    ),
    (
        _T + r"layer_norm_([01])\.(weight|bias)",
        lambda m, _: f"{_side(m[1])}.transformer._attn_mods.{m[2]}.ln_{m[3]}.{m[4]}",
    ),
    (r"encoder\.embed_tokens\.weight", "prime_prior.x_emb.weight"),
    (r"encoder\.pos_emb\.pos_emb", "prime_prior.pos_emb.pos_emb"),
    (r"encoder\.start_token", "prime_prior.start_token"),
    (r"encoder\.proj_in\.(weight|bias)", lambda m, _: f"prime_state_proj.{WB[m[1]]}"),
    (r"encoder\.final_layer_norm\.(weight|bias)", "prime_state_ln.{0}"),
    (r"encoder\.lm_head\.weight", "prime_x_out.weight"),
    (r"conditioner_blocks\.embed_tokens\.weight", "conditioner_blocks.0.x_emb.weight"),
    (r"conditioner_blocks\.layer_norm\.(weight|bias)", "conditioner_blocks.0.ln.{0}"),
    (r"conditioner_blocks\.upsampler\.proj_in\.(weight|bias)", "conditioner_blocks.0.cond.model.0.{0}"),
    # the official upsamplers name their conditioner's resnets ".blocks." (the original's cond_c_res)
    (
        r"conditioner_blocks\.upsampler\.upsample_block\.(\d+)\.resnet_block\.(\d+)\.conv1d_([12])\.(weight|bias)",
        lambda m, _: (
            f"conditioner_blocks.0.cond.model.{int(m[1]) // 2 + 1}.0.blocks.{m[2]}.model."
            f"{1 if m[3] == '1' else 3}.{m[4]}"
        ),
    ),
    (
        r"conditioner_blocks\.upsampler\.upsample_block\.(\d+)\.(weight|bias)",
        lambda m, _: f"conditioner_blocks.0.cond.model.{(int(m[1]) + 1) // 2}.1.{m[2]}",
    ),
]


def _side(name: str) -> str:
    return "prime_prior" if name == "encoder" else "prior"


def _down_t(keys) -> dict:
    """Downsampling stages of each encoder block: the number of its strided convs."""
    counts: dict = {}
    for k in keys:
        m = re.fullmatch(r"encoders\.(\d+)\.level_blocks\.(\d+)\.downsample_block\.(\d+)\.weight", k)
        if m:
            key = ("encoders", m[1], m[2])
            counts[key] = max(counts.get(key, 0), int(m[3]) // 2 + 1)
    return counts


def to_original(state: dict[str, torch.Tensor], rules) -> dict[str, torch.Tensor]:
    """Rename one part (the VQ-VAE, or one prior, without its ``vqvae.``/``priors.N.`` prefix)."""
    down_t = _down_t(state)
    out, unmapped = {}, []
    for key, value in state.items():
        for pattern, target in rules:
            m = re.fullmatch(pattern, key)
            if m:
                out[target(m, down_t) if callable(target) else target.format(*m.groups())] = value
                break
        else:
            unmapped.append(key)
    if unmapped:
        raise ConversionError(f"keys of the Hugging Face format that no rule maps: {unmapped[:20]}")
    return out


def read_hf(folder: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """The parts of a transformers-port checkpoint folder: {"vqvae": ..., "prior_level_2": ..., ...},
    each renamed to the original's keys. Weights are read with weights_only=True (or safetensors)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise ConversionError(f"{folder} has no pytorch_model*.bin or *.safetensors files of the transformers port")
    merged: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix == ".safetensors":
            merged.update(load_file(f))
        else:
            merged.update(read_checkpoint(f)[0])
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in merged.items():
        m = re.match(r"(vqvae|priors\.(\d+))\.(.+)", key)
        if not m:
            raise ConversionError(f"{key}: not a key of the transformers port (vqvae.* or priors.N.*)")
        part = "vqvae" if m[1] == "vqvae" else f"prior_level_{2 - int(m[2])}"  # priors.0 is the top level
        parts.setdefault(part, {})[m[3]] = value
    return {p: to_original(s, VQVAE_RULES if p == "vqvae" else PRIOR_RULES) for p, s in parts.items()}

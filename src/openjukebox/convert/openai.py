"""Map the original Jukebox state dicts onto ours through one declarative table.

Each rule is (original key pattern, our key template, transform). ``{attn_in}`` resolves to the
layer's input projection (``qkv`` for self attention, ``q`` for cross attention). The original's
Conv1D stores weights as (in, out): they are transposed into nn.Linear's (out, in). Any original
key no rule maps, any of our keys left unfilled, and any shape mismatch is an error naming each.
"""

from __future__ import annotations

import re
from string import Formatter

import torch
from torch import nn

from ..errors import UserError

T, SAME = "transpose", "same"
_ATTN = r"(prior|prime_prior)\.transformer\._attn_mods\.(\d+)\."
_LAYER = "{prefix}transformer.layers.{1}."

PRIOR_RULES: list[tuple[str, str, str]] = [
    (r"prior\.x_emb\.weight", "x_emb.weight", SAME),
    (r"prior\.pos_emb\.pos_emb", "pos_emb", SAME),
    (r"prior\.start_token", "start_token", SAME),
    (r"prior\.x_out\.weight", "x_out.weight", SAME),
    (_ATTN + r"attn\.c_attn\.w", _LAYER + "attn.{attn_in}.weight", T),
    (_ATTN + r"attn\.c_attn\.b", _LAYER + "attn.{attn_in}.bias", SAME),
    (_ATTN + r"attn\.c_enc_kv\.w", _LAYER + "attn.kv.weight", T),
    (_ATTN + r"attn\.c_enc_kv\.b", _LAYER + "attn.kv.bias", SAME),
    (_ATTN + r"attn\.c_proj\.w", _LAYER + "attn.proj.weight", T),
    (_ATTN + r"attn\.c_proj\.b", _LAYER + "attn.proj.bias", SAME),
    (_ATTN + r"mlp\.c_fc\.w", _LAYER + "mlp.fc.weight", T),
    (_ATTN + r"mlp\.c_fc\.b", _LAYER + "mlp.fc.bias", SAME),
    (_ATTN + r"mlp\.c_proj\.w", _LAYER + "mlp.proj.weight", T),
    (_ATTN + r"mlp\.c_proj\.b", _LAYER + "mlp.proj.bias", SAME),
    (_ATTN + r"(ln_[01])\.(weight|bias)", _LAYER + "{2}.{3}", SAME),
    # The separate lyric encoder (5b_lyrics) and its projection into the prior's cross-attention.
    (r"prime_prior\.x_emb\.weight", "lyric_encoder.x_emb.weight", SAME),
    (r"prime_prior\.pos_emb\.pos_emb", "lyric_encoder.pos_emb", SAME),
    (r"prime_prior\.start_token", "lyric_encoder.start_token", SAME),
    (r"prime_state_proj\.w", "lyric_proj.weight", T),
    (r"prime_state_proj\.b", "lyric_proj.bias", SAME),
    (r"prime_state_ln\.(weight|bias)", "lyric_ln.{0}", SAME),
    (r"prime_x_out\.weight", "lyric_out.weight", SAME),
    (r"y_emb\.bow_genre_emb\.emb\.weight", "labels.genre_emb.weight", SAME),
    (r"y_emb\.artist_emb\.emb\.weight", "labels.artist_emb.weight", SAME),
    (r"y_emb\.(total_length|absolute_pos|relative_pos)_emb\.emb\.weight", "labels.{0}_emb.emb.weight", SAME),
    (r"conditioner_blocks\.0\.(.+)", "conditioner.{0}", SAME),
]


class ConversionError(UserError):
    """An original checkpoint that does not fit the model; the message names every problem."""


def _target(key: str, ours: dict[str, torch.Tensor]) -> tuple[str, str] | None:
    for pattern, template, transform in PRIOR_RULES:
        m = re.fullmatch(pattern, key)
        if m is None:
            continue
        groups = m.groups()
        prefix = "lyric_encoder." if groups and groups[0] == "prime_prior" else ""
        name = template.format(*groups, attn_in="{attn_in}", prefix=prefix)
        if "{attn_in}" in name:
            name = next((n for n in (name.format(attn_in="qkv"), name.format(attn_in="q")) if n in ours), name)
        return name, transform
    return None


def _unparse(pattern: str, values: list[str]) -> str:
    """The key a rule's pattern matches when its groups take ``values`` (patterns have flat groups)."""
    it = iter(values)
    return re.sub(r"\((?!\?)[^()]*\)", lambda _: next(it), pattern).replace("\\.", ".")


def _original_name(name: str, ours: dict[str, torch.Tensor]) -> str | None:
    """The original checkpoint's name for our key ``name``: the rules run backwards, checked forwards."""
    for pattern, template, _ in PRIOR_RULES:
        regex = ""
        for literal, field, _, _ in Formatter().parse(template):
            regex += re.escape(literal)
            if field == "prefix":
                regex += "(?P<prefix>(?:lyric_encoder\\.)?)"
            elif field == "attn_in":
                regex += "(?:qkv|q)"
            elif field is not None:
                regex += f"(?P<g{field}>.+?)"
        m = re.fullmatch(regex, name)
        if m is None:
            continue
        n_groups = re.compile(pattern).groups
        values = [m.groupdict().get(f"g{i}") for i in range(n_groups)]
        if pattern.startswith("(prior|prime_prior)"):
            values[0] = "prime_prior" if m.group("prefix") else "prior"
        if None in values:
            continue
        key = _unparse(pattern, values)
        found = _target(key, ours)
        if found is not None and found[0] == name:
            return key
    return None


def convert_prior_state(
    original: dict[str, torch.Tensor], model: nn.Module, consume: bool = False
) -> dict[str, torch.Tensor]:
    """The original prior state dict renamed, transposed and cast onto ``model``'s keys and dtypes.

    A tied output (``prior.x_out.weight`` when our model ties it to ``x_emb``) must equal the
    embedding and is dropped. Raises ConversionError listing every unmapped, missing or mis-shaped key.
    With ``consume``, each original tensor is removed from ``original`` once converted, so that the
    two state dicts together never hold the model twice.
    """
    ours = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    unmapped, shapes = [], []
    emb = original.get("prior.x_emb.weight")
    for key in list(original):
        value = original.pop(key) if consume else original[key]
        key = key.removeprefix("module.")
        found = _target(key, ours)
        if found is None:
            unmapped.append(key)
            continue
        name, transform = found
        if name == "x_out.weight" and name not in ours and "x_emb.weight" in ours:
            if emb is not None and not value.is_meta and not torch.equal(value, emb):  # meta layouts carry no values
                shapes.append("prior.x_out.weight: the model ties it to x_emb but the checkpoint's differs")
            continue
        if name not in ours:
            unmapped.append(f"{key} (-> {name}, which the model does not have)")
            continue
        value = value.t() if transform == T else value
        if value.shape != ours[name].shape:
            shapes.append(f"{key} -> {name}: checkpoint {tuple(value.shape)} vs model {tuple(ours[name].shape)}")
            continue
        out[name] = value.to(ours[name].dtype).contiguous()
    missing = [f"{k} ({_original_name(k, ours) or 'no original key maps to it'})" for k in sorted(set(ours) - set(out))]
    problems = [
        f"unexpected keys: {unmapped}" if unmapped else "",
        f"missing keys (ours, then as the checkpoint would name it): {missing}" if missing else "",
        f"wrong shapes: {shapes}" if shapes else "",
    ]
    if any(problems):
        raise ConversionError(
            "the checkpoint does not fit the model: "
            + "; ".join(p for p in problems if p)
            + "; check that the file is complete and that --preset or --hparams describe it (or leave them out)"
        )
    return out

"""``openjukebox info [MODEL]``: what a model knows, for choosing --artist, --genre, --lyrics and --seconds."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError


def _names(vocab) -> tuple[list[str], list[str]]:
    """(artists, genres) of a label vocabulary, without the reserved 'unknown' (id 0)."""
    if vocab is None:
        return [], []
    if hasattr(vocab, "version"):  # the original's ids
        return sorted(vocab.artists), sorted(vocab.genres)
    return list(vocab.artists.names[1:]), list(vocab.genres.names[1:])


def _prior_lines(level: int, cfg, vocab, tokenizer, top: bool) -> list[str]:
    seconds = cfg.sample_length / cfg.sample_rate
    kind = "top prior" if top else "upsampler"
    lines = [f"level {level}: {kind}, {cfg.n_ctx} codes of context ({seconds:.2f} s), hop {cfg.hop_length}"]
    artists, genres = _names(vocab)
    if cfg.labels is not None and vocab is not None:
        if artists or genres:
            lines.append(f"  artists ({len(artists)}): {', '.join(artists) or '-'}")
            lines.append(f"  genres ({len(genres)}): {', '.join(genres) or '-'}")
        else:
            lines.append("  artists and genres: ids only (imported without --ids)")
    if cfg.labels is not None:
        lc = cfg.labels
        if lc.timing:
            lines.append(f"  song lengths: from {lc.min_duration:g} s to under {lc.max_duration:g} s")
    if cfg.lyrics is not None and tokenizer is not None:
        chars = tokenizer.chars.replace("\n", "\\n").replace("\t", "\\t")
        lines.append(f"  sings lyrics; characters ({len(tokenizer.chars)}): {chars}")
    return lines


def describe_model(model: str | os.PathLike | None) -> str:
    """A readable summary of a bundle (default: the shipped model) or of one model folder."""
    from ..checkpoint import CONFIG_NAME, parse_config, read_model_config
    from ..codec.config import VQVAEConfig
    from ..models import default_model
    from ..sampling.bundle import Bundle

    path = Path(model) if model else default_model()
    if not path.exists():
        raise UserError(f"{path}: no such model folder; give a bundle or model folder (or nothing: the shipped model)")
    if (path / CONFIG_NAME).is_file():  # one model folder
        import json

        kind = json.loads((path / CONFIG_NAME).read_text()).get("kind")
        if kind == "vqvae":
            cfg = parse_config(path, read_model_config(path, "vqvae"), VQVAEConfig.from_dict)
            hops = ", ".join(map(str, cfg.hop_lengths))
            return f"{path}: VQ-VAE, {cfg.sample_rate} Hz, {cfg.levels} levels, hops {hops}, {cfg.l_bins} codes"
        from ..lyrics.tokenizer import Tokenizer
        from ..prior.config import PriorConfig
        from ..prior.vocab import vocab_from_dict

        doc = read_model_config(path, "prior")
        cfg = parse_config(path, doc, PriorConfig.from_dict)
        vocab = vocab_from_dict(doc["vocab"]) if doc.get("vocab") else None
        lyrics = (doc.get("vocab") or {}).get("lyrics")
        tokenizer = Tokenizer.from_dict(lyrics) if lyrics else None
        return "\n".join([f"{path}: prior", *_prior_lines(cfg.level, cfg, vocab, tokenizer, cfg.conditioner is None)])
    bundle = Bundle(path)
    top = bundle.configs[bundle.top]
    lines = [f"{path}: bundle, {top.sample_rate} Hz, levels {bundle.top} (top) to {min(bundle.configs)}"]
    shown = None
    for level in sorted(bundle.configs, reverse=True):
        cfg, vocab = bundle.configs[level], bundle.vocabs[level]
        same = shown is not None and _names(vocab) == shown
        lines += _prior_lines(level, cfg, None if same else vocab, bundle.tokenizers[level], level == bundle.top)
        if same:
            lines.append("  artists and genres: as above")
        shown = _names(vocab)
    guided = [str(lv) for lv in sorted(bundle.configs, reverse=True) if bundle.guidance(lv, None) != 1.0]
    if guided:
        levels = f"level{'s' * (len(guided) > 1)} {', '.join(guided)}"
        lines.append(f"guidance by default on {levels} (trained with label dropout)")
    return "\n".join(lines)

"""Fine-tuning an existing prior (ours, or an imported official one) on new data.

``--init-from`` names a prior model folder, or a bundle (its prior of ``--level``, else its top
prior; the bundle's ``vqvae/`` is the default ``--vqvae``); ``default`` is the shipped model.
Artists and genres of the data the prior does not know are appended to its vocabulary: known
names keep their ids, and the new embedding rows start from ``--new-labels`` (``mean`` of the
known rows, or ``unknown``'s row). What trains (``--finetune``):

- ``full``: every weight; the run exports a model folder, as a training from scratch does.
- ``frozen``: the transformer blocks are frozen; embeddings, label and upsampler conditioners
  and the output layer train; a model folder too.
- ``lora``: PEFT LoRA adapters on every attention and MLP projection, plus the label
  conditioner; the run exports a small adapter folder for ``sample --model BUNDLE --adapter``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .. import adapters
from ..checkpoint import load_prior, quick_id, read_model_config
from ..errors import UserError
from ..lyrics.tokenizer import Tokenizer
from ..prior.config import PriorConfig
from ..prior.extend import INITS, grow_labels
from ..prior.model import Prior, build_prior
from ..prior.vocab import LabelVocab, OfficialVocab
from .loop import TrainConfig

MODES = ("full", "frozen", "lora")
_BASE = TrainConfig(steps=300, batch_size=8, lr=1e-3, warmup_steps=20, eval_every=100, save_every=100)
FINETUNE_PRESETS = {"full": dataclasses.replace(_BASE, lr=1e-4), "frozen": _BASE, "lora": _BASE}


@dataclass(frozen=True)
class FinetuneSpec:
    """What to fine-tune from, and how."""

    init_from: str
    mode: str = "lora"
    new_labels: str = "mean"
    lora_rank: int = 8
    lora_alpha: float = 16.0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown fine-tuning mode {self.mode!r}; give one of: {', '.join(MODES)}")
        if self.new_labels not in INITS:
            raise ValueError(f"unknown label initialisation {self.new_labels!r}; give one of: {', '.join(INITS)}")


def _shipped_or(path: str) -> Path:
    if path == "default" and not Path(path).exists():
        from ..models import default_model

        return default_model()
    return Path(path)


def prior_folder(init_from: str, level: int | None) -> Path:
    """The prior model folder ``--init-from`` names (a model folder, or a bundle's prior of ``level``)."""
    path = _shipped_or(init_from)
    if (path / "config.json").is_file():
        return path
    levels = sorted(int(d.name.rsplit("_", 1)[1]) for d in path.glob("prior_level_[0-9]*"))
    if not levels:
        raise UserError(
            f"--init-from {init_from}: not a prior model folder nor a bundle (prior_level_N/ and vqvae/); "
            "give the model to fine-tune"
        )
    level = levels[-1] if level is None else level
    if level not in levels:
        raise UserError(f"--init-from {init_from} has priors of levels {levels}, not {level}; give one of them")
    return path / f"prior_level_{level}"


def default_vqvae(init_from: str) -> Path | None:
    """A bundle's VQ-VAE, the default ``--vqvae`` of a fine-tune from that bundle."""
    path = _shipped_or(init_from) / "vqvae"
    return path if (path / "config.json").is_file() else None


def train_config(spec: FinetuneSpec, level: int | None) -> TrainConfig:
    """The fine-tune's defaults, with the base model's label dropout (so guidance still works)."""
    doc = read_model_config(prior_folder(spec.init_from, level), "prior")
    return dataclasses.replace(FINETUNE_PRESETS[spec.mode], label_dropout=float(doc.get("label_dropout") or 0.0))


def open_base(spec: FinetuneSpec, level: int | None, vq, vq_id: str) -> tuple[Prior, dict, Path]:
    """The prior to start from (float32, trainable), its config document and folder, checked
    against the level asked for and the VQ-VAE whose codes the data become."""
    folder = prior_folder(spec.init_from, level)
    prior, _, doc = load_prior(folder)
    cfg = prior.cfg
    if level is not None and level != cfg.level:
        raise UserError(
            f"--init-from {folder} is a level-{cfg.level} prior, not level {level}; give --level {cfg.level}"
        )
    made_for = (doc.get("vqvae") or {}).get("id")
    if made_for and made_for != vq_id:
        raise UserError(
            f"--init-from {folder} was trained on the codes of another VQ-VAE than --vqvae; give the VQ-VAE it "
            "was trained on (a bundle's vqvae/)"
        )
    hop = vq.hop_lengths[cfg.level] if cfg.level < vq.config.levels else None
    if (cfg.l_bins, cfg.hop_length, cfg.sample_rate) != (vq.config.l_bins, hop, vq.config.sample_rate):
        raise UserError(
            f"--init-from {folder} cannot take the codes of --vqvae: it models {cfg.l_bins} codes every "
            f"{cfg.hop_length} samples at {cfg.sample_rate} Hz, the VQ-VAE's level {cfg.level} gives "
            f"{vq.config.l_bins} every {hop} at {vq.config.sample_rate} Hz; give the VQ-VAE it was trained on"
        )
    return adapters.as_float(prior).train(), doc, folder


def extend_labels(prior: Prior, doc: dict, entries: list[dict], init: str):
    """(prior grown for the data's new names, extended vocabulary or None, new artists, new genres)."""
    from ..prior.vocab import vocab_from_dict

    if prior.cfg.labels is None:
        return prior, None, [], []
    if not doc.get("vocab"):
        raise UserError(
            "--init-from has no artist and genre names (imported without --ids?); import it again with --ids"
        )
    vocab = vocab_from_dict(doc["vocab"])
    lc = prior.cfg.labels
    if isinstance(vocab, OfficialVocab):
        if not vocab.artists or not vocab.genres:  # every name would look new, and the old ones unknown
            raise UserError(
                "--init-from was imported without the original's artist and genre ids, so the names of the data "
                "cannot be matched to the model's own; import it again with --ids (the data/ids folder of the "
                "original repository)"
            )
        grown = vocab.extend(entries, lc.artist_bins, lc.genre_bins)
        sizes = max(grown.sizes[0], lc.artist_bins), max(grown.sizes[1], lc.genre_bins)
        new = [sorted(set(grown.artists) - set(vocab.artists)), sorted(set(grown.genres) - set(vocab.genres))]
    else:
        grown = vocab.extend(entries)
        sizes = max(len(grown.artists), lc.artist_bins), max(len(grown.genres), lc.genre_bins)
        new = [list(grown.artists.names[len(vocab.artists) :]), list(grown.genres.names[len(vocab.genres) :])]
    return grow_labels(prior, *sizes, init), grown, *new


def tokenizer_of(doc: dict) -> Tokenizer | None:
    lyrics = (doc.get("vocab") or {}).get("lyrics")
    return Tokenizer.from_dict(lyrics) if lyrics else None


def trainable(prior: Prior, mode: str, lora_rank: int, lora_alpha: float) -> nn.Module:
    """What the fine-tune optimises: the prior (all of it, or with its transformer frozen), or PEFT's LoRA wrapper."""
    if mode == "lora":
        return adapters.lora_model(prior, lora_rank, lora_alpha)
    return adapters.freeze_transformer(prior) if mode == "frozen" else prior


def resumed_model(cfg: PriorConfig, info: dict) -> nn.Module:
    """The model of a fine-tune being resumed (its weights come from the training state)."""
    return trainable(build_prior(cfg), info["mode"], info["lora_rank"], info["lora_alpha"])


def describe(info: dict, model: nn.Module) -> str:
    n_train, n_all = adapters.trainable_parameters(model)
    new = ", ".join(info["new_artists"] + info["new_genres"]) or "none"
    return (
        f"fine-tuning {info['init_from']} ({info['mode']}): {n_train:,} of {n_all:,} parameters train; "
        f"new names: {new} (rows start from {info['init']})"
    )


def info_of(spec: FinetuneSpec, folder: Path, new_artists: list[str], new_genres: list[str]) -> dict:
    """What a fine-tune records in its training state, model folder or adapter."""
    return {
        "init_from": str(folder.resolve()),
        "base_id": quick_id(folder),
        "mode": spec.mode,
        "init": spec.new_labels,
        "lora_rank": spec.lora_rank,
        "lora_alpha": spec.lora_alpha,
        "new_artists": new_artists,
        "new_genres": new_genres,
    }


def export_adapter(out: Path, model: nn.Module, info: dict, cfg: PriorConfig, vocab: dict, **extra) -> None:
    """The LoRA fine-tune's export: the adapter folder ``sample --adapter`` takes."""
    doc = {
        "level": cfg.level,
        "base": {"id": info["base_id"], "path": info["init_from"]},
        "config": cfg.to_dict(),
        "vocab": vocab,
        "init": info["init"],
        "new_artists": info["new_artists"],
        "new_genres": info["new_genres"],
        **extra,
    }
    json.dumps(doc)  # fails here, before any file is written, if something cannot be saved
    adapters.save_adapter(out, model, doc)


def vocab_dict(vocab: LabelVocab | OfficialVocab | None, tokenizer: Tokenizer | None) -> dict:
    base = vocab.to_dict() if vocab is not None else {}
    return {**base, "lyrics": None if tokenizer is None else tokenizer.to_dict()}

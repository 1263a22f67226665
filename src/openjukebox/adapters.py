"""LoRA adapters for priors, through PEFT: made by fine-tuning, loaded (merged) for sampling.

An adapter folder holds PEFT's ``adapter_config.json`` and ``adapter_model.safetensors`` (the
low-rank A/B matrices of every attention and MLP projection of the prior's transformer, and a
full copy of the label conditioner, whose rows for new names the fine-tune trained) and our
``adapter.json``: the level, the base prior it was made for (``quick_id``), the prior's config
and label vocabulary with the new names, the row initialisation and the training steps.

``pip install peft`` (PEFT brings transformers); it is imported only when adapters are used.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CheckpointError, quick_id
from .errors import UserError
from .fileio import atomic_path, file_sha256
from .prior.config import PriorConfig
from .prior.extend import grow_labels
from .prior.model import Prior

ADAPTER_NAME = "adapter.json"
# Every attention (qkv; q and kv of cross-attention) and MLP projection of the prior's transformer.
TARGETS = r"transformer\.layers\.\d+\.(attn\.(qkv|q|kv|proj)|mlp\.(fc|proj))"


def _peft():
    try:
        import peft
    except ImportError:
        raise UserError("LoRA adapters need PEFT: install it with `pip install peft`") from None
    return peft


def lora_model(prior: Prior, rank: int, alpha: float) -> nn.Module:
    """``prior`` wrapped by PEFT: only the LoRA matrices and a copy of the label conditioner train.

    The wrapper forwards ``condition``, ``loss`` and the rest of the prior's methods to it."""
    peft = _peft()
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=TARGETS,
        modules_to_save=["labels"] if prior.labels is not None else None,
    )
    return peft.get_peft_model(prior, config)


def save_adapter(out: str | os.PathLike, model: nn.Module, info: dict) -> Path:
    """Write PEFT's files and ``adapter.json`` (last) into ``out``, each file atomically."""
    out = Path(out)
    tmp = out / ".adapter.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        os.replace(tmp / name, out / name)
    shutil.rmtree(tmp, ignore_errors=True)
    doc = {"format_version": 1, "kind": "adapter", **info}
    with atomic_path(out / ADAPTER_NAME) as path:
        Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True))
    return out


def read_adapter(adapter_dir: str | os.PathLike) -> dict:
    """``adapter.json`` of an adapter folder, checked; an error naming the folder otherwise."""
    path = Path(adapter_dir)
    files = [path / ADAPTER_NAME, path / "adapter_config.json", path / "adapter_model.safetensors"]
    if not all(f.is_file() for f in files):
        raise CheckpointError(
            f"{path} is not an adapter folder: it needs {', '.join(f.name for f in files)} "
            "(`train prior --init-from ... --finetune lora` writes them into its --out)"
        )
    try:
        doc = json.loads(files[0].read_text())
        PriorConfig.from_dict(doc["config"]), int(doc["level"]), doc["base"]["id"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{files[0]} is damaged ({e!r}); copy the adapter folder again") from None
    return doc


def adapter_id(adapter_dir: str | os.PathLike) -> str:
    return file_sha256(Path(adapter_dir) / "adapter_model.safetensors")[:16]


def check_base(doc: dict, adapter_dir, prior_dir) -> None:
    """Refuse an adapter made for another prior than the one in ``prior_dir``."""
    if doc["base"]["id"] != quick_id(prior_dir):
        raise UserError(
            f"--adapter {adapter_dir} was made for another prior than {prior_dir} (it was fine-tuned from "
            f"{doc['base'].get('path')}); give --model the bundle it was made for"
        )


def apply_adapter(prior: Prior, adapter_dir: str | os.PathLike, merge: bool = True) -> nn.Module:
    """The base ``prior`` grown to the adapter's labels with the adapter loaded: merged into plain
    weights (a ``Prior``, as fast as the base) or, with ``merge=False``, PEFT's wrapper."""
    doc = read_adapter(adapter_dir)
    cfg = PriorConfig.from_dict(doc["config"])
    if cfg.labels is not None and prior.cfg.labels is not None:
        prior = grow_labels(prior, cfg.labels.artist_bins, cfg.labels.genre_bins, doc.get("init", "mean"))
    dtype = prior.pos_emb.dtype
    model = _peft().PeftModel.from_pretrained(prior.float(), str(adapter_dir), is_trainable=False)
    if not merge:
        return model.eval()
    merged = model.merge_and_unload()
    merged.cfg = cfg  # the alignment head chosen when the adapter was exported
    return merged.to(dtype).eval()


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, all) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def freeze_transformer(prior: Prior) -> Prior:
    """Frozen-transformer fine-tuning: the transformer blocks (and the lyric encoder's) keep their
    weights; embeddings, label conditioner, upsampler conditioner and output layer train."""
    for name, p in prior.named_parameters():
        p.requires_grad_("transformer." not in name)
    return prior


def as_float(prior: Prior) -> Prior:
    """A trainable float32 copy of a (memory-mapped) prior."""
    with torch.no_grad():
        return prior.float().to("cpu").requires_grad_(True)

"""Model folders (``config.json`` + ``model.safetensors``) and training-state files.

A model folder is what every command takes as ``--model``. Loading is strict: a missing,
unexpected or mis-shaped tensor is an error naming each one. Training state (optimizer, step,
codebook statistics, RNG) is a ``torch.save`` file read back with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .codec.config import VQVAEConfig
from .codec.vqvae import VQVAE
from .errors import UserError
from .fileio import atomic_path, file_sha256

FORMAT_VERSION = 1
CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"


class CheckpointError(UserError):
    """A model folder or checkpoint that cannot be loaded; the message says what is wrong."""


def save_model(model_dir: str | os.PathLike, model: nn.Module, kind: str, config: dict, **extra) -> Path:
    """Write ``config.json`` and ``model.safetensors`` atomically (weights first, config last)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return save_state(model_dir, state, kind, config, **extra)


def save_state(model_dir: str | os.PathLike, state: dict[str, torch.Tensor], kind: str, config: dict, **extra) -> Path:
    """``save_model`` for a state dict that is already complete (an imported checkpoint)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / WEIGHTS_NAME) as tmp:
        save_file(state, tmp, metadata={"format": "openjukebox", "kind": kind})
    doc = {"format_version": FORMAT_VERSION, "kind": kind, "config": config, **extra}
    with atomic_path(model_dir / CONFIG_NAME) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=2, sort_keys=True))
    return model_dir


def read_model_config(model_dir: str | os.PathLike, kind: str) -> dict:
    """The parsed ``config.json`` of a model folder, checked to be of ``kind``."""
    model_dir = Path(model_dir)
    cfg_path = model_dir / CONFIG_NAME
    if not cfg_path.is_file() or not (model_dir / WEIGHTS_NAME).is_file():
        raise CheckpointError(
            f"{model_dir} is not a model folder: it needs {CONFIG_NAME} and {WEIGHTS_NAME} "
            "(a training run writes them into its --out folder)"
        )
    try:
        doc = json.loads(cfg_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{cfg_path} is damaged: not valid JSON ({e}); copy or export the model again") from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{cfg_path} is damaged: it holds no JSON object; copy or export the model again")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{cfg_path}: format_version {doc.get('format_version')} is not {FORMAT_VERSION}; export the model "
            "again with this version"
        )
    if doc.get("kind") != kind:
        raise CheckpointError(
            f"{model_dir} holds a {doc.get('kind')!r} model, but a {kind!r} model is needed; give the right folder"
        )
    if not isinstance(doc.get("config"), dict):
        raise CheckpointError(f"{cfg_path} has no 'config' object; copy or export the model again")
    return doc


def parse_config(model_dir: str | os.PathLike, doc: dict, parse):
    """``parse(doc["config"])`` (a config class's ``from_dict``), failing with the file named."""
    try:
        return parse(doc["config"])
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise CheckpointError(
            f"{Path(model_dir) / CONFIG_NAME} does not describe a model this version can build ({e!r}); "
            "copy or export the model again"
        ) from None


def read_weights(model_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a model folder's weights (memory-mapped), or an error naming the damaged file."""
    path = Path(model_dir) / WEIGHTS_NAME
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is damaged (truncated or not safetensors: {e}); copy the model again") from None


def check_weights(model_dir: str | os.PathLike, model: nn.Module) -> None:
    """Check a model folder's weights against ``model`` (built on the meta device) from the file's
    header alone: every name and shape, and that the file is complete. Raises CheckpointError."""
    path = Path(model_dir) / WEIGHTS_NAME
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is damaged (truncated or not safetensors: {e}); copy the model again") from None
    state = {k: torch.empty(v, device="meta") for k, v in shapes.items()}
    load_state_strict(model, state, str(model_dir), check_only=True)


def load_state_strict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, assign: bool = False, check_only: bool = False
) -> None:
    """Load a state dict, failing with every missing, unexpected and mis-shaped key named.

    ``assign`` makes the file's tensors the parameters (for models built on the meta device);
    ``check_only`` checks names and shapes without loading.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [
        (f"missing keys: {missing}" if missing else ""),
        (f"unexpected keys: {unexpected}" if unexpected else ""),
        (f"wrong shapes: {shapes}" if shapes else ""),
    ]
    if any(problems):
        raise CheckpointError(
            f"{source} does not fit the model: "
            + "; ".join(p for p in problems if p)
            + "; check that the weights and config.json belong together, or copy or export the model again"
        )
    if check_only:
        return
    model.load_state_dict(state, strict=True, assign=assign)


def load_vqvae(model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> VQVAE:
    """The VQ-VAE of a model folder, in eval mode on ``device``."""
    doc = read_model_config(model_dir, "vqvae")
    model = VQVAE(parse_config(model_dir, doc, VQVAEConfig.from_dict))
    load_state_strict(model, read_weights(model_dir), str(model_dir))
    return model.to(device).eval()


def load_prior(model_dir: str | os.PathLike, device: str | torch.device = "cpu"):
    """The prior of a model folder in eval mode, with its label vocabulary and config document.

    Weights stay memory-mapped from ``model.safetensors`` on CPU: pages load as they are used.
    """
    from .prior.config import PriorConfig
    from .prior.model import build_prior
    from .prior.vocab import vocab_from_dict

    doc = read_model_config(model_dir, "prior")
    with torch.device("meta"):  # no memory for weights yet: the file's memory-mapped tensors become them
        model = build_prior(parse_config(model_dir, doc, PriorConfig.from_dict))
    load_state_strict(model, read_weights(model_dir), str(model_dir), assign=True)
    vocab = vocab_from_dict(doc["vocab"]) if doc.get("vocab") else None
    return model.to(device).eval(), vocab, doc


def model_id(model_dir: str | os.PathLike) -> str:
    """A short content hash of a model's weights: codes record it to catch a wrong --model."""
    return file_sha256(Path(model_dir) / WEIGHTS_NAME)[:16]


def quick_id(model_dir: str | os.PathLike) -> str:
    """A cheap identity of a (possibly multi-GB) model folder: its config and its weights' size."""
    import hashlib

    weights = Path(model_dir) / WEIGHTS_NAME
    digest = hashlib.sha256((Path(model_dir) / CONFIG_NAME).read_bytes() + str(weights.stat().st_size).encode())
    return digest.hexdigest()[:16]


def save_train_state(path: str | os.PathLike, state: dict) -> None:
    """Atomically write training state (tensors, numbers, strings, lists and dicts only)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_train_state(path: str | os.PathLike) -> dict:
    """Read training state written by ``save_train_state``; never runs code from the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure here means the file is not ours or damaged
        raise CheckpointError(f"{path}: cannot be loaded safely ({e})") from None

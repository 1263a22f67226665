"""Shared fixtures: rendered music (made here, from real scores) and models trained on it."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _environment(tmp_path_factory):
    torch.set_num_threads(2)
    os.environ["OPENJUKEBOX_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # never the user's ~/.cache


@pytest.fixture(scope="session")
def rendered_dir(tmp_path_factory) -> Path:
    """Every score x instrument rendered once at 22.05 kHz (15 FLAC files, ~6 minutes of music)."""
    from openjukebox.audio.synth import write_rendered_dataset

    out = tmp_path_factory.mktemp("rendered")
    write_rendered_dataset(out, 22050, transposes=(0,))
    return out


@pytest.fixture(scope="session")
def labelled_manifest(rendered_dir) -> Path:
    """The rendered files with labels: the score as artist, the instrument as genre."""
    lines = []
    for path in sorted(rendered_dir.glob("*.flac")):
        score, instrument, _ = path.name.split("__")
        lines.append(json.dumps({"path": path.name, "artist": score, "genre": instrument}))
    manifest = rendered_dir / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.fixture(scope="session")
def trained_vqvae(rendered_dir, tmp_path_factory) -> tuple[Path, dict]:
    """The tiny VQ-VAE trained 300 steps on the rendered music: (run folder, last validation metrics)."""
    from openjukebox.codec.config import get_preset
    from openjukebox.training.vqvae import TRAIN_PRESETS, train_vqvae

    out = tmp_path_factory.mktemp("vqvae") / "run"
    tc = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=300, eval_every=300)
    final = train_vqvae(rendered_dir, out, get_preset("tiny"), tc, progress=False)
    return out, final

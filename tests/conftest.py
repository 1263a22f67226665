"""Shared fixtures: rendered music (made here, from real scores) and models trained on it."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

from openjukebox.checkpoint import model_id, save_model
from openjukebox.codec.config import get_preset as codec_preset
from openjukebox.codec.vqvae import VQVAE
from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.prior.vocab import LabelVocab

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


META = [{"artist": "Ada Lovelace", "genre": "organ"}, {"artist": "Bach", "genre": "choir"}]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    """vqvae/ and prior_level_{2,1,0}/ with random weights: tests the plumbing, not the music."""
    root = tmp_path_factory.mktemp("bundle")
    torch.manual_seed(0)
    vq = VQVAE(codec_preset("tiny")).eval()
    probe = torch.randn(1, 1, 8192) * 0.3
    for level, block in enumerate(vq.bottleneck.level_blocks):
        block.k.copy_(torch.randn_like(block.k) * vq.encoders[level](probe).std())
    save_model(root / "vqvae", vq, "vqvae", vq.config.to_dict())
    vocab = LabelVocab.from_metadata(META)
    vq_id = model_id(root / "vqvae")
    for level, preset in ((2, "tiny_top"), (1, "tiny_upsampler_1"), (0, "tiny_upsampler_0")):
        prior = build_prior(get_preset(preset))
        save_model(
            root / f"prior_level_{level}",
            prior,
            "prior",
            prior.cfg.to_dict(),
            vocab=vocab.to_dict(),
            vqvae={"id": vq_id},
        )
    return root


@pytest.fixture(scope="session")
def lyrics_bundle(bundle, tmp_path_factory):
    """``bundle`` with its top prior replaced by a random single-sequence lyrics prior."""
    import shutil

    from openjukebox.lyrics.tokenizer import Tokenizer

    root = tmp_path_factory.mktemp("lyrics_bundle")
    for part in ("vqvae", "prior_level_1", "prior_level_0"):
        shutil.copytree(bundle / part, root / part)
    torch.manual_seed(1)
    tokenizer = Tokenizer.build(["la la lu, hey you\n"])
    cfg = get_preset("tiny_top_single")
    cfg = dataclasses.replace(cfg, lyrics=dataclasses.replace(cfg.lyrics, n_vocab=tokenizer.n_vocab))
    prior = build_prior(cfg)
    vocab = {**LabelVocab.from_metadata(META).to_dict(), "lyrics": tokenizer.to_dict()}
    save_model(
        root / "prior_level_2", prior, "prior", cfg.to_dict(), vocab=vocab, vqvae={"id": model_id(root / "vqvae")}
    )
    return root

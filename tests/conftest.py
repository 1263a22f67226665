"""Shared fixtures: rendered music (made here, from real scores) and tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def rendered_dir(tmp_path_factory) -> Path:
    """Every score x instrument rendered once at 22.05 kHz (15 FLAC files, ~6 minutes of music)."""
    from openjukebox.audio.synth import write_rendered_dataset

    out = tmp_path_factory.mktemp("rendered")
    write_rendered_dataset(out, 22050, transposes=(0,))
    return out

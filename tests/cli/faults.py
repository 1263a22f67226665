"""Inputs and faults for ``test_bad_inputs.py``: each helper builds one kind of damage in a row's folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ..conftest import FIXTURES

OPENAI = FIXTURES / "openai"


@dataclass(frozen=True)
class Row:
    """``argv`` with {placeholders} (see ``_places``); ``names``: what the one error line must name."""

    id: str
    argv: str
    names: str
    setup: object = None  # callable(tmp: Path, env: dict) run before the snapshot
    src: str = "new"
    process: dict = field(default_factory=dict)  # run in a subprocess with these options


def tone(path: Path, seconds: float = 1.0, sr: int = 22050) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    return path


def copy_bundle(name="bundle"):
    def setup(tmp: Path, env: dict) -> None:
        shutil.copytree(env[name], tmp / "model")

    return setup


def then(*steps):
    def setup(tmp: Path, env: dict) -> None:
        for step in steps:
            step(tmp, env)

    return setup


def write(rel: str, data: str | bytes):
    def setup(tmp: Path, env: dict) -> None:
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)

    return setup


def mkdir(rel: str):
    return lambda tmp, env: (tmp / rel).mkdir(parents=True)


def truncate(rel: str, keep: float = 0.5):
    def setup(tmp: Path, env: dict) -> None:
        path = tmp / rel
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return setup


def edit_config(rel: str, change):
    def setup(tmp: Path, env: dict) -> None:
        path = tmp / rel / "config.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return setup


def wrong_shape(tmp: Path, env: dict) -> None:
    from safetensors.torch import load_file, save_file

    path = tmp / "model" / "prior_level_0" / "model.safetensors"
    state = load_file(path)
    key = next(k for k in state if k.endswith("x_emb.weight"))
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    save_file(state, path)


def tone_at(rel: str, seconds: float = 1.0):
    return lambda tmp, env: tone(tmp / rel, seconds)


def truncated_wav(tmp: Path, env: dict) -> None:
    data = tone(tmp / "whole.wav", 2.0).read_bytes()
    (tmp / "cut.wav").write_bytes(data[: len(data) // 3])
    (tmp / "whole.wav").unlink()


def codes_file(tmp: Path, env: dict) -> None:
    shutil.copy(env["codes"], tmp / "song.codes")


def run_folder(tmp: Path, env: dict) -> None:
    shutil.copytree(env["run"], tmp / "run")


def sampled(tmp: Path, env: dict) -> None:
    shutil.copytree(env["sampled"], tmp / "out")


def tampered(tmp: Path, env: dict) -> None:
    ckpt = torch.load(OPENAI / "upsampler_l1.pth.tar", map_location="cpu", weights_only=True)
    ckpt["model"].pop("prior.transformer._attn_mods.3.mlp.c_fc.w")
    torch.save(ckpt, tmp / "missing.pth.tar")


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def evil(tmp: Path, env: dict) -> None:
    state = torch.load(OPENAI / "vqvae.pth.tar", map_location="cpu", weights_only=True)
    state["opt"] = Payload()
    torch.save(state, tmp / "evil.pth.tar")


def immutable(tmp: Path, env: dict) -> None:
    (tmp / "out").mkdir()
    if subprocess.run(["chattr", "+i", str(tmp / "out")], capture_output=True).returncode:
        pytest.skip("chattr +i is not allowed here")


def adapter_for_another_prior(tmp: Path, env: dict) -> None:
    """An adapter folder whose adapter.json names a base prior no bundle has."""
    from openjukebox.prior.config import get_preset

    ad = tmp / "ad"
    ad.mkdir()
    doc = {"format_version": 1, "kind": "adapter", "level": 2, "base": {"id": "0" * 16, "path": "elsewhere"}}
    doc |= {"config": get_preset("tiny_top").to_dict(), "vocab": {"artists": ["unknown"], "genres": ["unknown"]}}
    (ad / "adapter.json").write_text(json.dumps(doc))
    (ad / "adapter_config.json").write_text("{}")
    (ad / "adapter_model.safetensors").write_bytes(b"")

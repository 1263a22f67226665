"""Checkpoints in the original Jukebox format, made here from a key layout (for tests and benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def random_original_checkpoint(
    layout_json: str | Path, path: str | Path, hps: dict | None = None, seed: int = 0, legacy: bool = False
) -> int:
    """Write ``{'hps', 'model', 'opt', 'step'}`` with random tensors of the layout's keys, shapes and
    dtypes (a tied ``prior.x_out.weight`` equals ``prior.x_emb.weight``); returns the parameter count."""
    layout = json.loads(Path(layout_json).read_text())
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, (shape, dtype) in layout.items():
        state[key] = (torch.randn(shape, generator=gen) * 0.02).to(getattr(torch, dtype))
    tied = hps is not None and not hps.get("merged_decoder", True)
    if tied and "prior.x_out.weight" in state:
        state["prior.x_out.weight"] = state["prior.x_emb.weight"]
    # legacy: torch's pre-1.6 serialisation, which the 2020 release files use (it cannot be memory-mapped)
    ckpt = {"hps": hps or {}, "model": state, "opt": None, "step": 0}
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    return sum(v.numel() for k, v in state.items() if not (tied and k == "prior.x_out.weight"))

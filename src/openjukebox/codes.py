"""The versioned codes file: discrete codes per level plus what is needed to use them later.

Stored as safetensors (no pickle): one int32 tensor ``level_{L}`` of shape (N, T_L) per level,
and a JSON header in the metadata with the format version, sample rate, original length in
samples, hop lengths, the model that made the codes and free-form ``extra`` fields (labels,
sampling settings, random state, added by the sampler).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import UserError
from .fileio import atomic_path

CODES_FORMAT, CODES_VERSION = "openjukebox.codes", 1


@dataclass
class CodesFile:
    """Codes by level {L: (N, T_L) int64}, with sample_rate, n_samples (audio length) and model."""

    codes: dict[int, torch.Tensor]
    sample_rate: int
    n_samples: int
    hop_lengths: tuple[int, ...]
    model: dict = field(default_factory=dict)  # {"path": ..., "id": ..., "kind": "vqvae"}
    extra: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> Path:
        header = {
            "format": CODES_FORMAT,
            "version": CODES_VERSION,
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "hop_lengths": list(self.hop_lengths),
            "levels": sorted(self.codes),
            "model": self.model,
            "extra": self.extra,
        }
        tensors = {f"level_{lv}": c.to(torch.int32).contiguous().cpu() for lv, c in self.codes.items()}
        with atomic_path(path) as tmp:
            save_file(tensors, tmp, metadata={"openjukebox": json.dumps(header)})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CodesFile:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such codes file; check the path")
        try:
            with safe_open(str(path), framework="pt") as f:
                header = json.loads((f.metadata() or {})["openjukebox"])
                codes = {int(k.split("_")[1]): f.get_tensor(k).long() for k in f.keys()}
        except Exception as e:  # noqa: BLE001 - any parse failure means "not a codes file"
            raise UserError(
                f"{path}: not an openjukebox codes file ({e}); give a file written by encode or sample"
            ) from None
        if header.get("format") != CODES_FORMAT:
            raise ValueError(f"{path}: not an openjukebox codes file (format {header.get('format')!r})")
        if header.get("version") != CODES_VERSION:
            raise ValueError(
                f"{path}: codes file version {header.get('version')} is not supported (this is "
                f"openjukebox with version {CODES_VERSION})"
            )
        return cls(
            codes=codes,
            sample_rate=header["sample_rate"],
            n_samples=header["n_samples"],
            hop_lengths=tuple(header["hop_lengths"]),
            model=header.get("model", {}),
            extra=header.get("extra", {}),
        )

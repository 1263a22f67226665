"""Spectrogram pictures of audio (matplotlib, no display needed)."""

from __future__ import annotations

import os

import numpy as np
import torch


def save_spectrogram(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, title: str = "") -> None:
    """Write a log-magnitude spectrogram of mono audio (T,) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    spec = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()
    db = 20 * torch.log10(spec.clamp(min=1e-5)).numpy()
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    seconds = len(audio) / sample_rate
    ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=db.max() - 80,
        vmax=db.max(),
        extent=(0, seconds, 0, sample_rate / 2000),
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

"""The conditioning measure's classifier: clips of the data, their features, the fit and its scores.

Shared by ``eval_model.py`` (does a generated clip carry the artist and genre asked for?) and
``finetune_new_artist.py`` (does a fine-tuned model carry a new artist?).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from openjukebox.audio.io import load_audio
from openjukebox.codec.vqvae import decode_chunked, encode_chunked

SR = 22050


def mel_features(audio: np.ndarray, sr: int = SR) -> np.ndarray:
    """Mean and standard deviation over time of 40 log-mel bands: the classifier's features.

    Band energies are summed from ``torch.stft`` over mel-spaced bands: coarse features, enough for
    a linear classifier. Every conditioning figure in the model card was measured with exactly
    these, so they stay as they are rather than become librosa's filterbank (other figures)."""
    x = torch.from_numpy(audio).float()
    spec = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs() ** 2
    freqs = torch.linspace(0, sr / 2, spec.shape[0])
    mel = lambda f: 2595 * torch.log10(1 + f / 700)  # noqa: E731
    edges = torch.linspace(mel(torch.tensor(30.0)), mel(torch.tensor(sr / 2)), 42)
    m = mel(freqs)
    bands = torch.stack([((m >= edges[i]) & (m < edges[i + 2])).float() for i in range(40)])
    logmel = torch.log(bands @ spec + 1e-6)
    return torch.cat([logmel.mean(1), logmel.std(1)]).numpy()


def real_clips(runs: Path, entries: list[dict], files: list[str], step: int, per_file: int = 8) -> list[tuple]:
    """(audio, genre, artist) for clips of ``step`` samples of the listed files: consecutive, or
    ``per_file`` spread evenly over a file that holds more (a long track does not outvote the rest)."""
    paths = {str(Path(p).resolve()) for p in files}
    clips = []
    for e in entries:
        path = str((runs / e["path"]).resolve())
        if path in paths:
            audio = load_audio(path, SR)
            starts = range(0, max(1, len(audio) - step), step)
            if len(starts) > per_file:
                starts = [starts[round(i * (len(starts) - 1) / (per_file - 1))] for i in range(per_file)]
            clips += [(audio[i : i + step], e["genre"], e["artist"]) for i in starts]
    return clips


@torch.no_grad()
def through_codec(vq, audio: np.ndarray, level: int) -> np.ndarray:
    """The audio as the VQ-VAE renders it from its own codes at ``level``."""
    hop = vq.hop_lengths[-1]
    x = torch.from_numpy(np.pad(audio, (0, -len(audio) % hop))).view(1, 1, -1)
    z = encode_chunked(vq, x, level, 10 * SR)
    return decode_chunked(vq, z, level, 10 * SR)[0, 0, : len(audio)].numpy()


def fit(features: list, labels: list):
    """Logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(np.array(features), labels)


def recognition(pred: np.ndarray, want: list, classes: list) -> dict:
    """Accuracy, balanced accuracy (mean per-class recall) and each requested class's recall."""
    from sklearn.metrics import balanced_accuracy_score

    want = np.array(want)
    recall = {c: round(float(np.mean(pred[want == c] == c)), 3) for c in classes if (want == c).any()}
    return {
        "accuracy": round(float(np.mean(pred == want)), 3),
        "balanced_accuracy": round(float(balanced_accuracy_score(want, pred)), 3),
        "recall": recall,
    }

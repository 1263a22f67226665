"""The conditioning measure's classifier: clips of the data, their features, the fit and its scores.

Shared by ``eval_model.py`` (does a generated clip carry the artist and genre asked for?) and
``finetune_new_artist.py`` (does a fine-tuned model carry a new artist?).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from openjukebox.audio.io import load_audio
from openjukebox.codec.vqvae import decode_chunked, encode_chunked
from openjukebox.fileio import atomic_path

SR = 22050
MEL_DIMS = 80  # mel_features' length: the first columns of clip_features


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


def music_features(audio: np.ndarray, sr: int = SR) -> np.ndarray:
    """38 features of what is played rather than the sound it is played with, none tied to a key:
    the shape of the mean chroma (its 12 values sorted, and its circular autocorrelation at shifts of
    0 to 6 semitones: which intervals the harmony favours), how fast the chroma changes (mean and
    standard deviation), the onset strength (mean, standard deviation) and onsets per second, and
    the spectral contrast of 7 bands (mean, standard deviation)."""
    import librosa

    chroma = librosa.feature.chroma_stft(y=audio, sr=sr, n_fft=2048, hop_length=512, tuning=0.0)
    profile = chroma.mean(1) / (chroma.mean(1).sum() + 1e-9)
    intervals = [float(np.sum(profile * np.roll(profile, k))) for k in range(7)]
    frames = chroma / (chroma.sum(0, keepdims=True) + 1e-9)
    change = np.linalg.norm(np.diff(frames, axis=1), axis=0)
    onsets = librosa.onset.onset_strength(y=audio, sr=sr)
    rate = len(librosa.onset.onset_detect(onset_envelope=onsets, sr=sr)) / (len(audio) / sr)
    contrast = librosa.feature.spectral_contrast(y=audio, sr=sr)
    return np.concatenate(
        [
            intervals,
            np.sort(profile)[::-1],
            [change.mean(), change.std(), onsets.mean(), onsets.std(), rate],
            contrast.mean(1),
            contrast.std(1),
        ]
    )


FEATURE_NAMES = (
    [f"logmel_mean_{i}" for i in range(40)]
    + [f"logmel_std_{i}" for i in range(40)]
    + [f"chroma_interval_{k}" for k in range(7)]
    + [f"chroma_sorted_{k}" for k in range(12)]
    + ["chroma_change_mean", "chroma_change_std", "onset_strength_mean", "onset_strength_std", "onsets_per_second"]
    + [f"contrast_mean_{b}" for b in range(7)]
    + [f"contrast_std_{b}" for b in range(7)]
)


def clip_features(audio: np.ndarray, sr: int = SR) -> np.ndarray:
    """``mel_features`` then ``music_features``: a candidate classifier uses the first or both."""
    return np.concatenate([mel_features(audio, sr), music_features(audio, sr)])


def real_clips(runs: Path, entries: list[dict], files: list[str], step: int, per_file: int = 8) -> list[tuple]:
    """(audio, genre, artist, piece) for clips of ``step`` samples of the listed files: consecutive,
    or ``per_file`` spread evenly over a file that holds more (a long track does not outvote the
    rest). The piece (a score's renderings share one; a recording is its own) groups the folds of
    ``choose``."""
    paths = {str(Path(p).resolve()) for p in files}
    resolved = [str((runs / e["path"]).resolve()) for e in entries]
    missing = paths - set(resolved)
    if missing:  # a split's paths are as the training run was given them: relative to where it ran
        raise SystemExit(
            f"{len(missing)} of the split's {len(paths)} files are not in {runs / 'all.jsonl'} as seen from here "
            f"(e.g. {min(missing)}): run this from the folder the recipe ran in"
        )
    clips = []
    for e, path in zip(entries, resolved, strict=True):
        if path in paths:
            audio = load_audio(path, SR)
            starts = range(0, max(1, len(audio) - step), step)
            if len(starts) > per_file:
                starts = [starts[round(i * (len(starts) - 1) / (per_file - 1))] for i in range(per_file)]
            clips += [(audio[i : i + step], e["genre"], e["artist"], e.get("piece", e["path"])) for i in starts]
    return clips


def split_clips(runs: Path, step: int) -> tuple[list[tuple], list[tuple]]:
    """``real_clips`` of the recipe folder's training and held-out files (``runs/top/split.json``)."""
    entries = [json.loads(line) for line in (runs / "all.jsonl").read_text().splitlines()]
    split = json.loads((runs / "top" / "split.json").read_text())
    return real_clips(runs, entries, split["train"], step), real_clips(runs, entries, split["validation"], step)


@torch.no_grad()
def through_codec(vq, audio: np.ndarray, level: int) -> np.ndarray:
    """The audio as the VQ-VAE renders it from its own codes at ``level``."""
    hop = vq.hop_lengths[-1]
    x = torch.from_numpy(np.pad(audio, (0, -len(audio) % hop))).view(1, 1, -1)
    z = encode_chunked(vq, x, level, 10 * SR)
    return decode_chunked(vq, z, level, 10 * SR)[0, 0, : len(audio)].numpy()


def codec_features(vq, clips: list[tuple], level: int, cache: Path | None = None, key: str = "") -> np.ndarray:
    """(clips, features) ``clip_features`` of the clips as the VQ-VAE renders them at ``level``; kept
    in ``cache`` (with ``key``, e.g. the VQ-VAE's model id, and the clips' count and length, so a
    cache of other clips or another VQ-VAE is recomputed)."""
    key = f"{key}:{level}:{len(clips)}:{len(clips[0][0]) if clips else 0}"
    if cache and cache.exists():
        with np.load(cache) as kept:
            if str(kept["key"]) == key:
                return kept["x"]
    x = np.array([clip_features(through_codec(vq, a, level)) for a, *_ in clips])
    if cache:
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, x=x, key=key)
    return x


# The classifier's settings are chosen on real training clips alone, never on generated ones: each
# candidate is scored by grouped cross-validation (a piece's renderings, or a recording, in one fold)
# with the metric its target uses, and the first best wins. Fixed before its results on generated
# clips were seen; the first candidate is the setting every earlier figure used. The feature set
# ("mel+music": clip_features' every column) joined the candidates on 2026-11-29, also before any
# generated clip was judged with it (docs/measurements/clip_features_rule.md).
CANDIDATES = tuple(
    {"features": f, "C": c, "class_weight": w}
    for f in ("mel", "mel+music")
    for w in (None, "balanced")
    for c in (1.0, 0.01, 0.1, 10.0)
)
METRICS = {"artist": "balanced_accuracy", "genre": "accuracy"}


def _first_columns(rows: np.ndarray, stop: int | None) -> np.ndarray:
    """A view of the first ``stop`` columns. A view, not a copy: the fit's sums then run in the order
    every figure in the model card was measured with (a copy flips a few borderline clips)."""
    return rows[:, :stop]


def fit(x: list, labels: list, features: str = "mel", C: float = 1.0, class_weight: str | None = None):
    """Logistic regression on standardised features: the ``mel`` columns of ``x`` (rows of
    ``clip_features``, or of ``mel_features`` alone), or all of them (``mel+music``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if features not in ("mel", "mel+music"):
        raise ValueError(f"features are 'mel' or 'mel+music', not {features!r}")
    x = np.array(x)
    width = x.shape[1]
    if width not in (MEL_DIMS, len(FEATURE_NAMES)) or (features == "mel+music" and width == MEL_DIMS):
        raise ValueError(f"rows of {width} features: mel_features has {MEL_DIMS}, clip_features {len(FEATURE_NAMES)}")
    model = LogisticRegression(C=C, class_weight=class_weight, max_iter=2000)
    pick = FunctionTransformer(_first_columns, kw_args={"stop": MEL_DIMS if features == "mel" else None})
    return make_pipeline(pick, StandardScaler(), model).fit(x, labels)


def choose(features: list, labels: list, groups: list, metric: str, folds: int = 5) -> tuple[dict, list[dict]]:
    """The candidate settings with the best mean ``metric`` over ``folds`` grouped folds (no group
    in two folds; fewer folds when there are fewer groups), and every candidate's scores:
    [{"settings", "folds", "mean"}]. With a single group nothing can be held out: the first
    candidate, and no scores."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import GroupKFold

    score = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score}[metric]
    x, y = np.array(features), np.array(labels)
    n_groups = len(set(groups))
    if n_groups < 2:
        return CANDIDATES[0], []
    splits = list(GroupKFold(n_splits=min(folds, n_groups)).split(x, y, groups))
    table = []
    for settings in CANDIDATES:
        with warnings.catch_warnings():  # a fold may lack a rare class that its classifier predicts
            warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
            scores = [float(score(y[te], fit(x[tr], y[tr], **settings).predict(x[te]))) for tr, te in splits]
        table.append({"settings": settings, "folds": [round(v, 3) for v in scores], "mean": float(np.mean(scores))})
    return best(table), table


def best(table: list[dict], features: str | None = None) -> dict:
    """The settings of the best mean in ``choose``'s table (the first of equal means), among every
    candidate or those of one feature set."""
    rows = [t for t in table if features is None or t["settings"]["features"] == features]
    if not rows:
        raise ValueError(f"no candidate of features {features!r} in the table")
    return max(enumerate(rows), key=lambda it: (it[1]["mean"], -it[0]))[1]["settings"]


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

"""Quality of a complete model, measured: codec, priors, conditioning and lyric alignment.

    pip install -e '.[eval]'
    python benchmarks/eval_model.py --runs WORK [--clips 6] [--seconds 4] [--out WORK/quality.json]

WORK is the folder of ``recipes/default_model.sh``: vqvae/, top/, up1/, up0/ (training runs, with
their held-out split and val.csv), bundle/, all.jsonl. Prints and writes:
- VQ-VAE spectral convergence per level on the held-out tracks (dB, lower is better);
- validation bits per token of every prior next to the unigram entropy of its codes;
- conditioning: logistic regression on log-mel statistics, trained on clips of the real training
  data, classifies clips the model generates for each requested genre and artist (accuracy vs chance);
- lyrics: median error (s) of the alignment exported for the held-out sung chorales.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from openjukebox.api import decode, encode, sample
from openjukebox.audio.io import load_audio, save_audio
from openjukebox.checkpoint import load_prior, load_vqvae
from openjukebox.codec.losses import spectral_convergence_db
from openjukebox.lyrics.timed import read_lyrics
from openjukebox.lyrics.tokenizer import Tokenizer
from openjukebox.sampling.alignment import align_songs
from openjukebox.training.metrics import read_csv


def _mel_features(audio: np.ndarray, sr: int) -> np.ndarray:
    """Mean and standard deviation over time of 40 log-mel bands: the classifier's features.

    Band energies are summed from ``torch.stft`` over mel-spaced bands: coarse features, enough for
    a linear classifier, without a mel library dependency for this one script."""
    x = torch.from_numpy(audio).float()
    spec = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs() ** 2
    freqs = torch.linspace(0, sr / 2, spec.shape[0])
    mel = lambda f: 2595 * torch.log10(1 + f / 700)  # noqa: E731
    edges = torch.linspace(mel(torch.tensor(30.0)), mel(torch.tensor(sr / 2)), 42)
    m = mel(freqs)
    bands = torch.stack([((m >= edges[i]) & (m < edges[i + 2])).float() for i in range(40)])
    logmel = torch.log(bands @ spec + 1e-6)
    return torch.cat([logmel.mean(1), logmel.std(1)]).numpy()


def codec_quality(run: Path, seconds: float) -> dict:
    model = load_vqvae(run)
    sr = model.config.sample_rate
    files = json.loads((run / "split.json").read_text())["validation"]
    scores = {lv: [] for lv in range(model.config.levels)}
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            clip = Path(tmp) / "clip.wav"
            save_audio(clip, load_audio(path, sr)[: int(seconds * sr)], sr)
            codes = encode(clip, run)
            x = torch.from_numpy(load_audio(clip, sr)).view(1, 1, -1)
            for lv in scores:
                y = torch.from_numpy(decode(codes, lv, run, model=model)).view(1, 1, -1)
                scores[lv].append(float(spectral_convergence_db(x, y)))
    return {f"level_{lv}_sc_db": round(float(np.mean(v)), 2) for lv, v in scores.items()} | {
        "held_out_tracks": len(files)
    }


def prior_quality(run: Path) -> dict:
    last = read_csv(run / "val.csv")[-1]
    keys = ("bits_per_token", "unigram_bits", "bits_per_token_cond_zeroed", "lyrics_bits_per_token")
    return {k: round(float(last[k]), 3) for k in keys if k in last}


def conditioning_quality(runs: Path, clips: int, seconds: float) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    entries = [json.loads(line) for line in (runs / "all.jsonl").read_text().splitlines()]
    split = json.loads((runs / "top" / "split.json").read_text())
    sr = 22050
    step = int(seconds * sr)
    data = {}  # "train"/"validation" -> [features, genres, artists] of the real clips
    for part in ("train", "validation"):
        paths = {str(Path(p).resolve()) for p in split[part]}
        rows = []
        for e in entries:
            path = str((runs / e["path"]).resolve())
            if path in paths:
                audio = load_audio(path, sr)
                starts = range(0, max(1, len(audio) - step), step)
                rows += [(_mel_features(audio[i : i + step], sr), e["genre"], e["artist"]) for i in starts]
        data[part] = [list(col) for col in zip(*rows, strict=True)]
    result = {}
    for column, kind in ((1, "genre"), (2, "artist")):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        clf.fit(np.array(data["train"][0]), data["train"][column])
        real = float(np.mean(clf.predict(np.array(data["validation"][0])) == np.array(data["validation"][column])))
        classes = sorted(set(data["train"][column]))
        predicted = {}
        for k, name in enumerate(classes):
            with tempfile.TemporaryDirectory() as tmp:
                meta = sample(runs / "bundle", tmp, seconds, n_samples=clips, seed=100 + k, **{kind: name})
                feats = np.array([_mel_features(load_audio(f, sr), sr) for f in meta["files"][0]])
                predicted[name] = [str(p) for p in clf.predict(feats)]
        correct = sum(p == name for name, preds in predicted.items() for p in preds)
        total = sum(len(p) for p in predicted.values())
        result[kind] = {
            "accuracy_on_generated": round(correct / total, 3),
            "chance": round(1 / len(classes), 3),
            "accuracy_on_real_held_out": round(real, 3),
            "generated_clips": total,
            "predicted_for_each_request": {
                name: {c: preds.count(c) for c in set(preds)} for name, preds in predicted.items()
            },
        }
    return result


def lyrics_quality(runs: Path) -> dict:
    prior, _, doc = load_prior(runs / "top")
    tokenizer = Tokenizer.from_dict(doc["vocab"]["lyrics"])
    held = [str(Path(p).resolve()) for p in json.loads((runs / "top" / "split.json").read_text())["validation"]]
    entries = {
        str((runs / e["path"]).resolve()): e for e in map(json.loads, (runs / "all.jsonl").read_text().splitlines())
    }
    errors, linear = [], []
    lc = prior.cfg.lyrics
    for path in held:
        entry = entries.get(path)
        if not entry or not isinstance(entry.get("lyrics"), list):
            continue
        song = read_lyrics(entry, path, tokenizer)
        codes = encode(path, runs / "vqvae", levels=[2]).codes[2]
        n = codes.shape[1] * prior.cfg.hop_length
        y = torch.tensor(
            [[n, 0, prior.cfg.sample_length, 0, *[-1] * prior.cfg.labels.max_bow_genre_size, *[0] * lc.n_tokens]]
        )
        [(alignment, _)], _ = align_songs(prior, codes, y, [song], tokenizer, hop_fraction=0.5)
        truth = np.array(song.times)
        errors.extend(np.abs(np.array(alignment.times) - truth))
        linear.extend(np.abs(np.arange(len(truth)) / len(truth) * n / prior.cfg.sample_rate - truth))
    if not errors:
        return {"note": "no held-out track with timed lyrics"}
    return {
        "median_error_s": round(float(np.median(errors)), 3),
        "linear_rule_median_error_s": round(float(np.median(linear)), 3),
        "characters": len(errors),
        "layer_head": [lc.alignment_layer, lc.alignment_head],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True)
    p.add_argument("--clips", type=int, default=6, help="generated clips per genre and per artist")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--out")
    p.add_argument("--only", nargs="+", choices=["vqvae", "priors", "lyrics_alignment", "conditioning"])
    args = p.parse_args()
    runs = Path(args.runs)
    parts = {
        "vqvae": lambda: codec_quality(runs / "vqvae", 20.0),
        "priors": lambda: {name: prior_quality(runs / name) for name in ("top", "up1", "up0")},
        "lyrics_alignment": lambda: lyrics_quality(runs),
        "conditioning": lambda: conditioning_quality(runs, args.clips, args.seconds),
    }
    report = {name: run() for name, run in parts.items() if not args.only or name in args.only}
    text = json.dumps(report, indent=1)
    print(text)
    Path(args.out or runs / "quality.json").write_text(text)


if __name__ == "__main__":
    main()

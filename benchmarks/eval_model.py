"""Quality of a complete model, measured: codec, priors, conditioning and lyric alignment.

    pip install -e '.[eval]'
    python benchmarks/eval_model.py --runs WORK [--clips 4] [--seconds 4] [--guidance 1 3] [--out WORK/quality.json]

WORK is the folder of ``recipes/default_model.sh``: vqvae/, top/, up1/, up0/ (training runs, with
their held-out split and val.csv), bundle/, all.jsonl. Prints and writes:
- VQ-VAE spectral convergence per level on the held-out tracks (dB, lower is better);
- validation bits per token of every prior next to the unigram entropy of its codes;
- conditioning: logistic regression on log-mel statistics, trained on the real training clips as
  the VQ-VAE renders them, classifies clips generated for every (artist, genre) pair of the training
  data, at each ``--guidance`` value, at the top level alone and through the full model (accuracy
  vs chance); a classifier trained on the raw recordings is reported too;
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
from openjukebox.codec.vqvae import decode_chunked, encode_chunked
from openjukebox.lyrics.timed import read_lyrics
from openjukebox.lyrics.tokenizer import Tokenizer
from openjukebox.prior.vocab import LabelVocab
from openjukebox.sampling.alignment import timing_errors
from openjukebox.training.metrics import read_csv

SR = 22050


def _mel_features(audio: np.ndarray, sr: int = SR) -> np.ndarray:
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


def _real_clips(runs: Path, entries: list[dict], files: list[str], step: int) -> list[tuple]:
    """(audio, genre, artist) for consecutive clips of ``step`` samples of the listed files."""
    paths = {str(Path(p).resolve()) for p in files}
    clips = []
    for e in entries:
        path = str((runs / e["path"]).resolve())
        if path in paths:
            audio = load_audio(path, SR)
            clips += [(audio[i : i + step], e["genre"], e["artist"]) for i in range(0, max(1, len(audio) - step), step)]
    return clips


@torch.no_grad()
def _through_codec(vq, audio: np.ndarray, level: int) -> np.ndarray:
    """The audio as the VQ-VAE renders it from its own codes at ``level``."""
    hop = vq.hop_lengths[-1]
    x = torch.from_numpy(np.pad(audio, (0, -len(audio) % hop))).view(1, 1, -1)
    z = encode_chunked(vq, x, level, 10 * SR)
    return decode_chunked(vq, z, level, 10 * SR)[0, 0, : len(audio)].numpy()


def _fit(features: list, labels: list):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(np.array(features), labels)


def conditioning_quality(runs: Path, clips: int, seconds: float, guidances: list[float]) -> dict:
    """Do generated clips carry the artist and genre they were asked for?

    Requests are the (artist, genre) pairs of the training data, ``clips`` each. Two classifiers
    per label, both trained on the training clips: one on the audio itself, one on the same audio
    rendered by the VQ-VAE at the level the generated clip is decoded from (the top level alone, or
    the full model down to level 0). The first cannot tell even the VQ-VAE's renderings of real
    held-out clips apart; the second measures what the priors add, against what the codec keeps."""
    entries = [json.loads(line) for line in (runs / "all.jsonl").read_text().splitlines()]
    split = json.loads((runs / "top" / "split.json").read_text())
    step = int(seconds * SR)
    train, held = (_real_clips(runs, entries, split[part], step) for part in ("train", "validation"))
    vq = load_vqvae(runs / "vqvae")
    levels = (vq.config.levels - 1, 0)
    feats = {
        "audio": {part: [_mel_features(a) for a, _, _ in rows] for part, rows in (("train", train), ("held", held))}
    }
    for lv in levels:
        feats[f"vqvae_level_{lv}"] = {
            part: [_mel_features(_through_codec(vq, a, lv)) for a, _, _ in rows]
            for part, rows in (("train", train), ("held", held))
        }
    train_paths = {str(Path(p).resolve()) for p in split["train"]}
    requests = sorted({(e["artist"], e["genre"]) for e in entries if str((runs / e["path"]).resolve()) in train_paths})
    generated = {}  # guidance -> level -> [(features, artist, genre)]
    for g in guidances:
        generated[g] = {lv: [] for lv in levels}
        for k, (artist, genre) in enumerate(requests):
            with tempfile.TemporaryDirectory() as tmp:
                meta = sample(runs / "bundle", tmp, seconds, artist, genre, n_samples=clips, seed=100 + k, guidance=g)
                for lv in levels:
                    generated[g][lv] += [(_mel_features(load_audio(f, SR)), artist, genre) for f in meta["files"][lv]]
    result = {"requests": [list(r) for r in requests], "clips_per_request": clips, "seconds": seconds}
    for column, kind in ((2, "artist"), (1, "genre")):
        classes = sorted({r[column] for r in train})
        out = {"chance": round(1 / len(classes), 3)}
        for name, f in feats.items():
            clf = _fit(f["train"], [r[column] for r in train])
            entry = {
                "real_held_out": round(float(np.mean(clf.predict(np.array(f["held"])) == [r[column] for r in held])), 3)
            }
            if name == "audio":  # the codec alone already defeats it: real clips through the VQ-VAE
                for lv in levels:
                    pred = clf.predict(np.array(feats[f"vqvae_level_{lv}"]["held"]))
                    entry[f"real_held_out_through_vqvae_level_{lv}"] = round(
                        float(np.mean(pred == [r[column] for r in held])), 3
                    )
            for lv in levels if name == "audio" else [int(name.rsplit("_", 1)[1])]:
                for g, rows in generated.items():
                    want = [r[1] if kind == "artist" else r[2] for r in rows[lv]]
                    pred = clf.predict(np.array([r[0] for r in rows[lv]]))
                    entry[f"generated_level_{lv}_guidance_{g:g}"] = round(float(np.mean(pred == np.array(want))), 3)
                    if name != "audio":
                        entry[f"predicted_level_{lv}_guidance_{g:g}"] = {
                            c: dict(zip(*np.unique(pred[np.array(want) == c], return_counts=True), strict=True))
                            for c in classes
                        }
            out[f"classifier_on_{name}"] = entry
        result[kind] = json.loads(json.dumps(out, default=int))
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
    vocab = LabelVocab.from_dict(doc["vocab"])
    for path in held:
        entry = entries.get(path)
        if not entry or not isinstance(entry.get("lyrics"), list):
            continue
        song = read_lyrics(entry, path, tokenizer)
        codes = encode(path, runs / "vqvae", levels=[2]).codes[2]
        genres = [g for g in vocab.genre_ids(entry.get("genre"), prior.cfg.labels.max_bow_genre_size) if g >= 0]
        error, rule = timing_errors(prior, tokenizer, codes, song, vocab.artist_id(entry.get("artist")), tuple(genres))
        errors.extend(error)
        linear.extend(rule)
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
    p.add_argument("--clips", type=int, default=4, help="generated clips per (artist, genre) of the training data")
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0, 3.0], help="guidance values to compare")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--out")
    p.add_argument("--only", nargs="+", choices=["vqvae", "priors", "lyrics_alignment", "conditioning"])
    args = p.parse_args()
    runs = Path(args.runs)
    parts = {
        "vqvae": lambda: codec_quality(runs / "vqvae", 20.0),
        "priors": lambda: {name: prior_quality(runs / name) for name in ("top", "up1", "up0")},
        "lyrics_alignment": lambda: lyrics_quality(runs),
        "conditioning": lambda: conditioning_quality(runs, args.clips, args.seconds, args.guidance),
    }
    report = {name: run() for name, run in parts.items() if not args.only or name in args.only}
    text = json.dumps(report, indent=1)
    print(text)
    Path(args.out or runs / "quality.json").write_text(text)


if __name__ == "__main__":
    main()

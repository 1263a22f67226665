"""Quality of a complete model, measured: codec, priors, conditioning and lyric alignment.

    pip install -e '.[eval]'
    python benchmarks/eval_model.py --runs WORK [--clips 4] [--seconds 4] [--guidance 1 3,1,1 default]
        [--clips-dir DIR] [--out WORK/quality.json]

WORK is the folder of ``recipes/music_model.sh``: vqvae/, top/ (or the run ``--top`` names, such
as the alignment fine-tune top_align/), up1/, up0/ (or those ``--up1``/``--up0`` name, such as
up1_ld/; training runs, with their held-out split and val.csv), bundle/, all.jsonl. Prints and writes:
- VQ-VAE spectral convergence and log-STFT distance per level on the held-out tracks, and on the
  held-out real recordings alone (dB, lower is better);
- audio measures (noise-likeness, HPSS harmonic share, pitched and stable-note frames) of generated
  clips next to held-out data clips as they are and through the VQ-VAE;
- validation bits per token of every prior next to the unigram entropy of its codes;
- conditioning: logistic regression on log-mel statistics (and, where cross-validation prefers them,
  key-free chroma, onset and contrast statistics), trained on the real training clips as the VQ-VAE
  renders them (its features and settings chosen by cross-validation on those clips, grouped by
  piece), classifies clips generated for every (artist, genre) pair of the training data, at each
  ``--guidance`` value, at the top level alone and through the full model (accuracy vs chance,
  balanced accuracy and per-class recall); a classifier on the raw recordings too;
- lyrics: median error (s) of the alignment exported for the held-out songs with timed lyrics (and
  those of --lyrics-songs), with the windows sampling uses, against the linear rule, for every
  width of the alignment's prior (the width chosen on the training songs), with a 90 % interval
  of the difference to the linear rule over the songs, and blended with the linear rule (the
  weight cross-fitted over two folds of pieces).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from alignment_blend import WEIGHTS, cross_fitted, median_abs, median_error, paired_interval  # beside this script
from clip_classifier import (  # beside this script
    METRICS,
    SR,
    best,
    choose,
    clip_features,
    codec_features,
    fit,
    real_clips,
    recognition,
    through_codec,
)
from generated_clips import clip_settings, sampled_clips  # beside this script
from lyric_songs import lyric_songs  # benchmarks/lyric_songs.py, beside this script
from tqdm import tqdm

from openjukebox.api import decode, encode, sample
from openjukebox.audio.dataset import held_out_pieces, read_sources
from openjukebox.audio.io import load_audio, save_audio
from openjukebox.audio.measures import mean_measures
from openjukebox.checkpoint import load_prior, load_vqvae
from openjukebox.cli.args import per_level
from openjukebox.codec.losses import log_stft_distance, spectral_convergence_db
from openjukebox.errors import UserError
from openjukebox.fileio import atomic_path
from openjukebox.lyrics.timed import read_lyrics
from openjukebox.lyrics.tokenizer import Tokenizer
from openjukebox.prior.vocab import LabelVocab
from openjukebox.sampling.alignment import ALIGN_SPREAD, timing_errors
from openjukebox.sampling.bundle import DEFAULT_GUIDANCE, Bundle
from openjukebox.training.loop import TrainConfig
from openjukebox.training.metrics import read_csv


def _guidance(value: str) -> float | tuple[float, ...] | None:
    """A --guidance value: as `openjukebox sample --guidance` takes it (a number for every level, or
    numbers from the top level down, "3,1,1"), or 'default' (each level's own, as without it)."""
    return None if value == "default" else per_level(value)


def default_guidances(bundle: Bundle) -> list[float | tuple[float, ...] | None]:
    """What --guidance compares by default: none, the top prior alone guided (as the default was
    before every level was), and each level's default; one value per level of ``bundle``."""
    top_only = (DEFAULT_GUIDANCE,) + (1.0,) * (len(bundle.prior_dirs) - 1)
    return [1.0, top_only if len(top_only) > 1 else DEFAULT_GUIDANCE, None]


def _name(g: float | tuple[float, ...] | None) -> str:
    return "default" if g is None else ",".join(f"{v:g}" for v in g) if isinstance(g, tuple) else f"{g:g}"


def _is_real(entry: dict) -> bool:
    """A recording (the Debian game music), not a rendering of a score."""
    return not str(entry.get("source", "")).startswith("music21")


def codec_quality(run: Path, seconds: float, entries: dict[str, dict]) -> dict:
    """Spectral convergence and log-STFT distance (dB) per level on the run's held-out files, over
    all of them and over the held-out real recordings alone."""
    model = load_vqvae(run)
    sr = model.config.sample_rate
    files = [str(Path(f).resolve()) for f in json.loads((run / "split.json").read_text())["validation"]]
    rows = []  # (real, {level: (sc_db, lsd_db)})
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            clip = Path(tmp) / "clip.wav"
            save_audio(clip, load_audio(path, sr)[: int(seconds * sr)], sr)
            codes = encode(clip, run)
            x = torch.from_numpy(load_audio(clip, sr)).view(1, 1, -1)
            per_level = {}
            for lv in range(model.config.levels):
                y = torch.from_numpy(decode(codes, lv, run, model=model)).view(1, 1, -1)
                per_level[lv] = (float(spectral_convergence_db(x, y)), float(log_stft_distance(x, y)))
            rows.append((_is_real(entries.get(path, {})), per_level))
    out = {}
    for name, chosen in (("held_out", rows), ("held_out_real", [r for r in rows if r[0]])):
        if not chosen:
            continue
        for lv in range(model.config.levels):
            out[f"{name}_level_{lv}_sc_db"] = round(float(np.mean([r[1][lv][0] for r in chosen])), 2)
            out[f"{name}_level_{lv}_log_stft_db"] = round(float(np.mean([r[1][lv][1] for r in chosen])), 2)
        out[f"{name}_tracks"] = len(chosen)
    return out


def prior_quality(run: Path) -> dict:
    """The validation of the run's model: its best/ model's step for a --keep-best run, else the last."""
    rows = read_csv(run / "val.csv")
    best = run / "best" / "config.json"
    if best.is_file():
        step = json.loads(best.read_text())["trained_steps"]
        rows = [r for r in rows if int(r["step"]) == step] or rows
    last = rows[-1]
    keys = (
        "bits_per_token",
        "unigram_bits",
        "bits_per_token_cond_zeroed",
        "bits_per_token_labels_unknown",
        "lyrics_bits_per_token",
        "align_bits",
        "align_accuracy",
    )
    return {k: round(float(last[k]), 3) for k in keys if last.get(k) not in (None, "")}


def held_out_files(runs: Path, entries: dict[str, dict]) -> list[str]:
    """The top prior's held-out files, or (without training runs) the held-out pieces of the data."""
    split = runs / "top" / "split.json"
    if split.exists():
        return [str(Path(f).resolve()) for f in json.loads(split.read_text())["validation"]]
    held = held_out_pieces([str(e["piece"]) for e in entries.values()], TrainConfig().val_fraction, TrainConfig().seed)
    return [path for path, e in entries.items() if str(e["piece"]) in held]


def audio_quality(
    bundle: Path,
    held: list[str],
    entries: dict[str, dict],
    clips: int,
    seconds: float,
    guidance: float | tuple[float, ...] | None,
    segments: int = 1,
    temperature: float | tuple[float, ...] = 0.99,
) -> dict:
    """Does it sound like music? The audio measures (``openjukebox.audio.measures``) of generated
    clips through the full model, next to held-out data clips as they are and through the VQ-VAE.

    Generated: ``clips`` clips of ``seconds`` for each of up to 4 (artist, genre) requests of the
    held-out data that the model knows, decoded from level 0 (and the top level alone). Data: the
    first ``seconds`` of each held-out file (at most 16)."""
    step = int(seconds * SR)
    data = [a for a in (load_audio(f, SR)[:step] for f in held[:16]) if len(a) == step]
    vq = load_vqvae(bundle / "vqvae")
    top = vq.config.levels - 1
    out = {
        "seconds": seconds,
        "data": mean_measures(data, SR),
        "data_through_vqvae_level_0": mean_measures([through_codec(vq, a, 0) for a in data], SR),
        f"data_through_vqvae_level_{top}": mean_measures([through_codec(vq, a, top) for a in data], SR),
    }
    vocab = LabelVocab.from_dict(load_prior(bundle / f"prior_level_{top}")[2]["vocab"])

    def known(entry: dict) -> bool:
        try:
            return vocab.artist_id(entry.get("artist")) > 0 and vocab.genre_ids(entry.get("genre"), 1)[0] > 0
        except ValueError:  # a name the model never saw
            return False

    requests = sorted({(entries[f]["artist"], entries[f]["genre"]) for f in held if f in entries and known(entries[f])})
    generated = {0: [], top: []}
    for k, (artist, genre) in enumerate(requests[:4]):
        with tempfile.TemporaryDirectory() as tmp:
            kwargs = {"guidance": guidance, "segments": segments, "temperature": temperature}
            meta = sample(bundle, tmp, seconds, artist, genre, n_samples=clips, seed=200 + k, **kwargs)
            for lv in generated:
                generated[lv] += [load_audio(f, SR) for f in meta["files"][lv]]
    out["generated_requests"] = [list(r) for r in requests[:4]]
    out["generated_guidance"], out["generated_segments"] = guidance, segments
    out["generated_temperature"] = temperature
    for lv, audio in generated.items():
        out[f"generated_level_{lv}"] = mean_measures(audio, SR)
    return out


def conditioning_quality(
    runs: Path,
    bundle: Path,
    clips: int,
    seconds: float,
    guidances: list[float | tuple[float, ...] | None],
    clips_dir: Path | None = None,
    first_seed: int = 100,
    temperature: float | tuple[float, ...] = 0.99,
) -> dict:
    """Do generated clips carry the artist and genre they were asked for?

    Requests are the (artist, genre) pairs of the training data, ``clips`` each. Two classifiers
    per label, both trained on the training clips: one on the audio itself, one on the same audio
    rendered by the VQ-VAE at the level the generated clip is decoded from (the top level alone, or
    the full model down to level 0). The first cannot tell even the VQ-VAE's renderings of real
    held-out clips apart; the second measures what the priors add, against what the codec keeps.
    Each classifier's settings are ``clip_classifier.choose``'s: the real training clips alone decide.

    ``clips_dir`` keeps the generated clips (a folder per guidance and request), so that a later
    run on the same bundle reads them back instead of sampling them again. Request k is sampled
    with seed ``first_seed`` + k."""
    entries = [json.loads(line) for line in (runs / "all.jsonl").read_text().splitlines()]
    split = json.loads((runs / "top" / "split.json").read_text())
    step = int(seconds * SR)
    train, held = (real_clips(runs, entries, split[part], step) for part in ("train", "validation"))
    vq = load_vqvae(runs / "vqvae")
    levels = (vq.config.levels - 1, 0)
    feats = {"audio": {part: [clip_features(a) for a, *_ in rows] for part, rows in (("train", train), ("held", held))}}
    for lv in levels:
        feats[f"vqvae_level_{lv}"] = {
            part: list(codec_features(vq, rows, lv)) for part, rows in (("train", train), ("held", held))
        }
    train_paths = {str(Path(p).resolve()) for p in split["train"]}
    requests = sorted({(e["artist"], e["genre"]) for e in entries if str((runs / e["path"]).resolve()) in train_paths})
    generated = {}  # guidance -> level -> [(features, artist, genre)]
    for g in guidances:
        generated[g] = {lv: [] for lv in levels}
        common = clip_settings(bundle, seconds, clips, g, temperature)  # hashes the weights once per guidance
        for k, (artist, genre) in enumerate(requests):
            with tempfile.TemporaryDirectory() as tmp:
                folder = clips_dir / f"guidance_{_name(g)}" / f"request_{k:02d}" if clips_dir else Path(tmp)
                request = {"artist": artist, "genre": genre, "seed": first_seed + k}
                files = sampled_clips(bundle, folder, common | request)
                for lv in levels:
                    generated[g][lv] += [(clip_features(load_audio(f, SR)), artist, genre) for f in files[lv]]
    result = {"requests": [list(r) for r in requests], "clips_per_request": clips, "seconds": seconds}
    result["first_seed"], result["temperature"] = first_seed, temperature

    def judged(name: str, kind: str, column: int, settings: dict, classes: list) -> dict:
        """One classifier of features ``name`` (``settings`` from ``choose``) on the real held-out
        clips and on every generated clip of its level."""
        f = feats[name]
        clf = fit(f["train"], [r[column] for r in train], **settings)
        truth = [r[column] for r in held]
        held_out = round(float(np.mean(clf.predict(np.array(f["held"])) == truth)), 3)
        entry = {"settings": settings, "real_held_out": held_out}
        if name == "audio":  # the codec alone already defeats it: real clips through the VQ-VAE
            for lv in levels:
                pred = clf.predict(np.array(feats[f"vqvae_level_{lv}"]["held"]))
                entry[f"real_held_out_through_vqvae_level_{lv}"] = round(float(np.mean(pred == truth)), 3)
        for lv in levels if name == "audio" else [int(name.rsplit("_", 1)[1])]:
            for g, rows in generated.items():
                want = [r[1] if kind == "artist" else r[2] for r in rows[lv]]
                pred = clf.predict(np.array([r[0] for r in rows[lv]]))
                entry[f"generated_level_{lv}_guidance_{_name(g)}"] = recognition(pred, want, classes)
                if name != "audio":
                    entry[f"predicted_level_{lv}_guidance_{_name(g)}"] = {
                        c: dict(zip(*np.unique(pred[np.array(want) == c], return_counts=True), strict=True))
                        for c in classes
                    }
        return entry

    for column, kind in ((2, "artist"), (1, "genre")):
        classes = sorted({r[column] for r in train})
        out = {"chance": round(1 / len(classes), 3)}
        for name, f in feats.items():
            settings, table = choose(f["train"], [r[column] for r in train], [r[3] for r in train], METRICS[kind])
            out[f"classifier_on_{name}"] = judged(name, kind, column, settings, classes) | {"cross_validation": table}
            # the timbre-only judge (log-mel statistics alone) of the figures before 2026-11-29, beside it
            timbre = best(table, "mel") if table else settings
            out[f"classifier_on_{name}_timbre_only"] = judged(name, kind, column, timbre, classes)
        result[kind] = json.loads(json.dumps(out, default=int))
    return result


SPREADS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)  # seconds: the alignment's prior around the windows
assert ALIGN_SPREAD in SPREADS, "the width sampling uses is among those measured"


def lyrics_quality(
    runs: Path, entries: dict[str, dict], extra: Path | None, top: str = "top", max_training: int = 30
) -> dict:
    """Median error (s) of the exported lyric alignment on every held-out song with timed lyrics,
    plus the songs of ``extra`` (a manifest of songs outside the training data), with the windows
    sampling uses for plain-text lyrics, and with windows chosen from the true times. ``entries``:
    the manifest ``top`` trained on (``lyric_songs`` chooses the songs).

    The alignment's ``spread`` (its prior around where the windows put each character) is chosen
    on the training songs with timed lyrics, never on the held-out ones (those songs' times trained
    the head, so they favour wide priors); the held-out errors are given for every spread tried,
    the headline for the one sampling uses (ALIGN_SPREAD), with a 90 % interval of its difference
    to the linear rule over the songs.
    """
    prior, _, doc = load_prior(runs / top)
    tokenizer = Tokenizer.from_dict(doc["vocab"]["lyrics"])
    held = [str(Path(p).resolve()) for p in json.loads((runs / top / "split.json").read_text())["validation"]]
    extra_songs = list(_manifest(extra).values()) if extra is not None else []
    songs, training, left_out = lyric_songs(entries, held, extra_songs, max_training)
    if not songs:
        return {"note": "no held-out song with timed lyrics"}
    vocab = LabelVocab.from_dict(doc["vocab"])

    def measure(chosen: list, with_timed_windows: bool) -> dict[str, list]:
        """Per key (a spread, the linear rule, timed windows): one array of signed character errors per song."""
        errors = {"linear_rule": [], "timed_windows": []} | {spread: [] for spread in SPREADS}
        for path, entry in tqdm(chosen, desc="alignment", leave=False):
            song = read_lyrics(entry, path, tokenizer)
            codes = encode(path, runs / "vqvae", levels=[2]).codes[2]
            genres = [g for g in vocab.genre_ids(entry.get("genre"), prior.cfg.labels.max_bow_genre_size) if g >= 0]
            args = (prior, tokenizer, codes, song, vocab.artist_id(entry.get("artist")), tuple(genres))
            by_spread, rule = timing_errors(*args, spreads=SPREADS)
            errors["linear_rule"].append(rule)
            for spread, error in by_spread.items():
                errors[spread].append(error)
            if with_timed_windows:
                alone = timing_errors(*args, windows_from_times=True, spreads=(0.0,))[0][0.0]  # attention alone
                errors["timed_windows"].append(alone)
        return errors

    median = lambda songs: round(median_abs(songs), 3)  # noqa: E731
    train = measure(training, False) if training else {}
    chosen = min(SPREADS, key=lambda s: median_abs(train[s])) if training else ALIGN_SPREAD
    errors = measure(songs, True)
    pieces = [e.get("piece") or path for path, e in songs]
    blend = cross_fitted(errors[ALIGN_SPREAD], errors["linear_rule"], pieces) if len(set(pieces)) > 1 else None
    lc = prior.cfg.lyrics
    return {
        "plain_text_windows_median_error_s": median(errors[ALIGN_SPREAD]),
        "timed_windows_median_error_s": median(errors["timed_windows"]),
        "linear_rule_median_error_s": median(errors["linear_rule"]),
        "plain_text_minus_linear_90pct_interval_s": paired_interval(errors[ALIGN_SPREAD], errors["linear_rule"]),
        "blend_with_linear_rule": {  # docs/measurements/alignment_blend_rule.md
            "held_out_median_error_s_by_weight": {
                str(w): round(median_error(errors[ALIGN_SPREAD], errors["linear_rule"], w), 3) for w in WEIGHTS
            },
            "cross_fitted_median_error_s": median(blend["errors"]) if blend else None,
            "cross_fitted_minus_linear_90pct_interval_s": paired_interval(blend["errors"], errors["linear_rule"])
            if blend
            else None,
            "weights_chosen_per_fold": blend["weights"] if blend else None,
            "training_median_error_s_by_weight": {  # reported only: the head trained on these songs' times
                str(w): round(median_error(train[ALIGN_SPREAD], train["linear_rule"], w), 3) for w in WEIGHTS
            }
            if training
            else {},
        },
        "spread_s": ALIGN_SPREAD,
        "spread_chosen_on_training_songs_s": chosen,
        "held_out_median_error_s_by_spread": {str(s): median(errors[s]) for s in SPREADS},
        "training_median_error_s_by_spread": {str(s): median(train[s]) for s in SPREADS} if training else {},
        "training_linear_rule_median_error_s": median(train["linear_rule"]) if training else None,
        "training_songs": len(training),
        "songs": len(songs),
        "held_out_songs": sum(path in held for path, _ in songs),  # the rest are from ``extra``
        "extra_songs_left_out_as_trained": left_out,
        "characters": sum(map(len, errors["linear_rule"])),
        "layer_head": [lc.alignment_layer, lc.alignment_head],
    }


def _manifest(path: Path) -> dict[str, dict]:
    """{resolved audio path: entry} of a JSONL manifest, read as training reads it (with its pieces)."""
    return {str(Path(e["path"]).resolve()): e | {"path": str(Path(e["path"]).resolve())} for e in read_sources(path)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True, help="the recipe's folder (all.jsonl; training runs where measured)")
    p.add_argument("--bundle", type=Path, help="the model to hear (default RUNS/bundle)")
    p.add_argument("--top", default="top", help="the top prior's run folder in RUNS (default top)")
    p.add_argument("--segments", type=int, default=1, help="upsampler segments of the generated clips (default 1)")
    p.add_argument(
        "--temperature",
        type=per_level,
        default=0.99,
        help="the generated clips' temperature, as `openjukebox sample --temperature` takes it (default 0.99)",
    )
    p.add_argument("--clips", type=int, default=4, help="generated clips per (artist, genre) of the training data")
    p.add_argument(
        "--guidance",
        type=_guidance,
        nargs="+",
        help="guidance values to compare: numbers (every level), numbers per level from the top down (3,1,1), "
        "or 'default' (each level's own); by default 1, the top prior alone guided (3,1,1 for 3 levels) and "
        "'default'; the audio measures take the last",
    )
    p.add_argument("--seconds", type=float, default=4.0, help="length of the conditioning clips")
    p.add_argument("--audio-seconds", type=float, default=10.0, help="length of the clips the audio measures hear")
    p.add_argument("--audio-clips", type=int, default=4, help="clips per request the audio measures hear (default 4)")
    p.add_argument(
        "--audio-key",
        default="audio",
        help="the report's key for the audio measures (default audio; e.g. audio_segments_8 for a run with "
        "--segments 8 beside the default one)",
    )
    p.add_argument("--lyrics-songs", type=Path, help="a manifest of timed-lyrics songs outside the training data")
    p.add_argument(
        "--lyrics-data",
        type=Path,
        help="the manifest the --top run trained on, when it is not RUNS/all.jsonl (the recipe's align.jsonl)",
    )
    p.add_argument("--up1", default="up1", help="the middle upsampler's run folder in RUNS (default up1)")
    p.add_argument("--up0", default="up0", help="the bottom upsampler's run folder in RUNS (default up0)")
    p.add_argument("--clips-dir", type=Path, help="keep the conditioning clips here, and reuse those already there")
    p.add_argument("--first-seed", type=int, default=100, help="the conditioning's first request's seed (default 100)")
    p.add_argument("--out")
    p.add_argument("--only", nargs="+", choices=["vqvae", "priors", "audio", "lyrics_alignment", "conditioning"])
    args = p.parse_args()
    runs = Path(args.runs)
    bundle = args.bundle or runs / "bundle"
    entries = _manifest(runs / "all.jsonl")
    parts = {
        "vqvae": lambda: codec_quality(runs / "vqvae", 20.0, entries),
        "priors": lambda: {
            name: prior_quality(runs / run) for name, run in (("top", args.top), ("up1", args.up1), ("up0", args.up0))
        },
        "audio": lambda: audio_quality(
            bundle,
            held_out_files(runs, entries),
            entries,
            args.audio_clips,
            args.audio_seconds,
            (args.guidance or default_guidances(Bundle(bundle)))[-1],
            args.segments,
            args.temperature,
        ),
        "lyrics_alignment": lambda: lyrics_quality(
            runs, _manifest(args.lyrics_data) if args.lyrics_data else entries, args.lyrics_songs, args.top
        ),
        "conditioning": lambda: conditioning_quality(
            runs,
            bundle,
            args.clips,
            args.seconds,
            args.guidance or default_guidances(Bundle(bundle)),  # a bundle only for the parts that sample
            args.clips_dir,
            args.first_seed,
            args.temperature,
        ),
    }
    if not args.only or {"audio", "conditioning"} & set(args.only):  # before the hours of features
        b = Bundle(bundle)
        try:
            [b.temperature(lv, args.temperature) for lv in b.prior_dirs]
        except UserError as e:
            raise SystemExit(f"--temperature: {e}") from None
    out = Path(args.out or runs / "quality.json")
    # with --only, the parts measured are merged into an existing report (rerun a failed part alone)
    report = json.loads(out.read_text()) if args.only and out.exists() else {}
    for name, run in parts.items():
        if not args.only or name in args.only:
            key = args.audio_key if name == "audio" else name
            report[key] = run()
            print(json.dumps({key: report[key]}, indent=1), flush=True)
            with atomic_path(out) as tmp:  # a later part's failure keeps this one
                Path(tmp).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Teach the shipped model a composer it never heard, with a LoRA adapter, and check that it took.

    pip install -e '.[eval]' peft
    openjukebox data scores --out WORK/scores --composers bach beethoven mozart haydn palestrina \\
        --per-composer 4 --sets piano strings organ guitar --max-seconds 30
    python benchmarks/finetune_new_artist.py --scores WORK/scores --new palestrina --out WORK/ft \\
        --steps 200 --replay 4

The shipped model knows Bach, Beethoven, Haydn and Mozart on piano, strings, organ and guitar
(these renderings among its training data), and never heard Palestrina. Steps, each timed (wall
clock, the threads torch uses):
1. ``train prior --init-from default --finetune lora`` on the new composer's pieces (their
   held-out split kept apart), with ``--replay N`` tracks of each known composer beside them so
   that "unknown" (what guidance contrasts with) and the old names stay as they were: the new name
   is appended to the vocabulary;
2. the adapter's size on disk;
3. top-level clips sampled with ``--adapter`` for every composer, old and new, on each instrument
   set, and the same for the old composers without the adapter (do the old names still work?);
4. (``--losses``: instead of 3 and 4) the held-out bits per token of the new composer's held-out
   track and of one track per known composer under every artist label, with and without the
   adapter: which label fits the audio best?
5. eval_model.py's classifier (logistic regression on log-mel statistics), trained on real clips
   of all five composers as the VQ-VAE's top level renders them (the new composer's training
   split only), labels each generated clip: the accuracy per requested composer, vs chance 1/5.
Prints the report and writes it to OUT/report.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from clip_classifier import SR, fit, mel_features, through_codec  # noqa: E402

from openjukebox.api import sample  # noqa: E402
from openjukebox.audio.io import load_audio  # noqa: E402
from openjukebox.checkpoint import load_vqvae  # noqa: E402
from openjukebox.models import default_model  # noqa: E402
from openjukebox.prior.vocab import normalise  # noqa: E402
from openjukebox.training.finetune import FinetuneSpec, train_config  # noqa: E402
from openjukebox.training.prior import train_prior  # noqa: E402

SETS = ("piano", "strings", "organ", "guitar")


def _clips(paths: list[Path], step: int) -> list[np.ndarray]:
    out = []
    for p in paths:
        audio = load_audio(p, SR)
        out += [audio[i : i + step] for i in range(0, max(1, len(audio) - step), step)]
    return out


@torch.no_grad()
def label_losses(run: Path, scores: Path, entries: list[dict], new: str) -> dict:
    """Bits per token of 4 half-overlapping windows of held-out or example tracks under every artist
    label (their own genre), with the adapter merged and without: {model: {track: {artist: bits}}}."""
    from openjukebox.api import encode
    from openjukebox.sampling.bundle import Bundle

    held = [p for p in json.loads((run / "split.json").read_text())["validation"] if Path(p).name.startswith(new)]
    first = {}
    for e in entries:
        first.setdefault(e["artist"], str((scores / e["path"]).resolve()))
    tracks = held + [p for p in first.values() if not Path(p).name.startswith(new)]
    out: dict = {}
    for name, adapter in (("with_adapter", run), ("without_adapter", None)):
        bundle = Bundle(default_model(), adapter)
        prior, vocab = bundle.load_prior(2).float(), bundle.vocabs[2]
        n, hop = prior.cfg.n_ctx, prior.cfg.hop_length
        for path in tracks:
            codes = encode(path, default_model() / "vqvae", levels=[2]).codes[2][0].long()
            wins = torch.stack([codes[i : i + n] for i in range(0, len(codes) - n, n // 2)][:4])
            genre = vocab.genre_ids(Path(path).stem.rsplit("_", 1)[1], 1)[0]
            row = lambda a, i: [len(codes) * hop, i * hop * (n // 2), n * hop, a, genre]  # noqa: E731
            pad = [0] * (prior.cfg.lyrics.n_tokens if prior.cfg.lyrics else 0)
            losses = {}
            for artist in vocab.artists.names:
                y = torch.tensor([row(vocab.artist_id(artist), i) + pad for i in range(len(wins))])
                losses[artist] = round(prior.loss(wins, prior.condition(y)).item(), 3)
            out.setdefault(name, {})[Path(path).name] = losses
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scores", type=Path, required=True, help="folder written by `openjukebox data scores`")
    ap.add_argument("--new", default="palestrina", help="the composer (manifest prefix) the shipped model never heard")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--clips", type=int, default=2, help="clips per (composer, instrument set) request")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--losses", action="store_true", help="only the label losses (step 4), no sampling")
    ap.add_argument("--guidance", type=float, help="sampling guidance (default: the model's, 3)")
    ap.add_argument(
        "--replay", type=int, default=0, help="also fine-tune on this many tracks of each known composer (rehearsal)"
    )
    args = ap.parse_args()
    entries = [json.loads(line) for line in (args.scores / "manifest.jsonl").read_text().splitlines()]
    new_name = next(e["artist"] for e in entries if e["path"].startswith(args.new))
    args.out.mkdir(parents=True, exist_ok=True)
    new = [{**e, "path": str((args.scores / e["path"]).resolve())} for e in entries if e["artist"] == new_name]
    for artist in sorted({e["artist"] for e in entries} - {new_name}):
        known = [e for e in entries if e["artist"] == artist][: args.replay]
        new += [{**e, "path": str((args.scores / e["path"]).resolve())} for e in known]
    (args.out / "new.jsonl").write_text("".join(json.dumps(e) + "\n" for e in new))
    run = args.out / "adapter"
    report: dict = {"new_artist": new_name, "tracks": len(new), "replay_per_composer": args.replay}
    report["threads"] = torch.get_num_threads()

    spec = FinetuneSpec("default", "lora")
    tc = train_config(spec, None)
    tc = type(tc)(**{**tc.__dict__, "steps": args.steps, "eval_every": args.steps, "save_every": args.steps})
    if not (run / "adapter.json").exists():
        start = time.time()
        final = train_prior(args.out / "new.jsonl", run, None, default_model() / "vqvae", None, tc, finetune=spec)
        report["finetune_s"] = round(time.time() - start, 1)
        report["validation_bits_per_token"] = round(final["bits_per_token"], 3)
    report["adapter_bytes"] = sum(f.stat().st_size for f in run.iterdir() if f.name.startswith("adapter"))

    entries = [json.loads(line) for line in (args.scores / "manifest.jsonl").read_text().splitlines()]  # all now
    if args.losses:
        report["label_losses"] = label_losses(run, args.scores, entries, args.new)
        print(json.dumps(report, indent=1))
        (args.out / "report_losses.json").write_text(json.dumps(report, indent=1))
        return
    vq = load_vqvae(default_model() / "vqvae")
    top = vq.config.levels - 1
    step = int(args.seconds * SR)
    split = json.loads((run / "split.json").read_text())["validation"]
    held = {str(Path(p).resolve()) for p in split if Path(p).name.startswith(args.new)}  # the new composer's
    train_x, train_y = [], []
    for e in entries:
        path = (args.scores / e["path"]).resolve()
        if str(path) in held:
            continue
        for clip in _clips([path], step):
            train_x.append(mel_features(through_codec(vq, clip, top)))
            train_y.append(normalise(e["artist"]))
    clf = fit(train_x, train_y)
    report["classes"] = sorted(set(train_y))
    report["chance"] = round(1 / len(report["classes"]), 3)
    held_x = [mel_features(through_codec(vq, c, top)) for c in _clips([Path(p) for p in held], step)]
    report["new_artist_real_held_out"] = round(float(np.mean(clf.predict(np.array(held_x)) == normalise(new_name))), 3)

    composers = sorted({e["artist"] for e in entries})
    results: dict = {}
    start = time.time()
    for adapter in (run, None):
        for k, artist in enumerate(composers):
            if adapter is None and artist == new_name:
                continue
            feats = []
            for j, genre in enumerate(SETS):
                with tempfile.TemporaryDirectory() as tmp:
                    meta = sample(
                        default_model(),
                        tmp,
                        args.seconds,
                        artist,
                        genre,
                        n_samples=args.clips,
                        lowest=top,
                        seed=1000 + 10 * k + j,
                        adapter=adapter,
                    )
                    feats += [mel_features(load_audio(f, SR)) for f in meta["files"][top]]
            pred = clf.predict(np.array(feats))
            key = "with_adapter" if adapter else "without_adapter"
            results.setdefault(key, {})[normalise(artist)] = {
                "recognised": round(float(np.mean(pred == normalise(artist))), 3),
                "predicted": dict(zip(*np.unique(pred, return_counts=True), strict=True)),
            }
    report["sampling_s"] = round(time.time() - start, 1)
    report["guidance"] = args.guidance
    report["generated"] = json.loads(json.dumps(results, default=int))
    text = json.dumps(report, indent=2)
    name = "report.json" if args.guidance is None else f"report_guidance_{args.guidance:g}.json"
    (args.out / name).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

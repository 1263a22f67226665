"""How much of the artist and genre do the upsamplers lose? Real held-out clips re-rendered below
their own top-level codes, judged with their true labels.

    python benchmarks/upsampler_loss.py --runs WORK [--bundle WORK/bundle] [--clips 64] [--temperature 0.99]
        [--keep LEVEL] [--cache FILE.npz] [--out FILE]

Each held-out real clip is encoded; its true top-level codes are kept and both upsamplers sample
the levels below them with the clip's own artist and genre (``openjukebox sample --codes``, the
upsample mode, default guidance). The level-0 audio is judged by the conditioning judges of
``eval_model.py`` (``clip_classifier.choose`` on the real training clips as the VQ-VAE renders them
at level 0: the chosen one, and the best on log-mel statistics alone) next to the same clips
through the codec (every level's true codes). What the judges lose between the two is the
upsamplers' loss, with no top prior in the way. ``--keep 1`` keeps the true codes of level 1 too,
so that only the bottom upsampler samples: what it loses alone.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from clip_classifier import METRICS, SR, best, choose, clip_features, codec_features, fit, recognition, split_clips
from reports import emit  # beside this script

from openjukebox.api import sample
from openjukebox.audio.io import load_audio
from openjukebox.checkpoint import load_vqvae, model_id
from openjukebox.cli.args import per_level
from openjukebox.codes import CodesFile
from openjukebox.errors import UserError
from openjukebox.sampling.bundle import Bundle


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``k >= n``)."""
    if k >= n or k < 2:
        return list(range(min(n, max(k, 0))))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


@torch.no_grad()
def true_codes(vq, audio: np.ndarray, level: int) -> torch.Tensor:
    """(T_level,) the VQ-VAE's level codes of ``audio``, zero-padded to a whole number of top hops."""
    padded = np.pad(np.asarray(audio, dtype=np.float32), (0, -len(audio) % vq.hop_lengths[-1]))
    return vq.encode(torch.from_numpy(padded).view(1, 1, -1), level)[0]


def resampled(
    bundle: Path, vq, codec_id: str, clips: list, temperature, seed: int, keep: int | None = None
) -> list[np.ndarray]:
    """Level-0 audio of each clip (audio, genre, artist, piece): its true codes (by ``vq``, whose
    model id is ``codec_id``) of the levels from the top down to ``keep`` (default the top alone),
    the levels below sampled with its labels; clips of one (artist, genre) are sampled together."""
    out: list[np.ndarray | None] = [None] * len(clips)
    groups: dict[tuple, list[int]] = {}
    for i, (_, genre, artist, _) in enumerate(clips):
        groups.setdefault((artist, genre), []).append(i)
    top = vq.config.levels - 1
    keep = top if keep is None else keep
    for g, ((artist, genre), idx) in enumerate(sorted(groups.items())):
        codes = {lv: torch.stack([true_codes(vq, clips[i][0], lv) for i in idx]) for lv in range(keep, top + 1)}
        n_samples, length = codes[top].shape[1] * vq.hop_lengths[-1], len(clips[idx[0]][0])
        with tempfile.TemporaryDirectory() as tmp:
            given = CodesFile(codes, SR, n_samples, vq.hop_lengths, {"id": codec_id})  # sample checks it
            given.save(Path(tmp) / "true.codes")
            meta = sample(
                bundle, Path(tmp) / "out", n_samples / SR, artist, genre, len(idx), temperature=temperature,
                seed=seed + g, codes_file=Path(tmp) / "true.codes", keep_down_to=keep,
            )  # fmt: skip
            for i, f in zip(idx, meta["files"][0], strict=True):
                out[i] = load_audio(f, SR)[:length]
    return out


def judged(train: list, x: np.ndarray, held: list, heard: dict[str, np.ndarray]) -> dict:
    """{"artist", "genre"}: each heard set of features of the ``held`` clips judged against the clips'
    true labels by the two judges (the one ``clip_classifier.choose`` picks on the ``train`` clips'
    features ``x``, and the best on log-mel statistics alone), with chance and the judges' settings."""
    report = {}
    for column, kind in ((2, "artist"), (1, "genre")):
        labels, want = [r[column] for r in train], [r[column] for r in held]
        classes = sorted(set(labels))
        settings, table = choose(list(x), labels, [r[3] for r in train], METRICS[kind])
        report[kind] = {"chance": round(1 / len(classes), 3)}
        for judge, chosen in (("chosen", settings), ("timbre_only", best(table, "mel"))):
            clf = fit(list(x), labels, **chosen)
            report[kind][judge] = {"settings": chosen} | {
                name: recognition(clf.predict(f), want, classes) for name, f in heard.items()
            }
    return report


def held_out_clip_args(p: argparse.ArgumentParser, heard: str) -> None:
    """The options of the scripts that judge ``heard`` (an upsampler) on held-out real clips."""
    p.add_argument("--runs", type=Path, required=True, help="the recipe's folder (all.jsonl, top/split.json, vqvae)")
    p.add_argument("--bundle", type=Path, help=f"the model whose {heard} heard (default RUNS/bundle)")
    p.add_argument("--clips", type=int, default=64, help="held-out clips, spread over the held-out files (default 64)")
    p.add_argument("--seconds", type=float, default=4.0, help="clip length (default 4, as eval_model.py's)")
    p.add_argument("--cache", type=Path, help="keep the training clips' features here (12 minutes on 1 core)")
    p.add_argument("--out", type=Path, help="write the report here too (JSON)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    held_out_clip_args(p, "upsamplers are")
    p.add_argument("--temperature", type=per_level, default=0.99, help="as `openjukebox sample --temperature`")
    p.add_argument("--keep", type=int, help="keep the true codes from the top down to this level (default the top)")
    p.add_argument("--seed", type=int, default=700, help="the first label group's seed (default 700)")
    args = p.parse_args()
    bundle = args.bundle or args.runs / "bundle"
    b = Bundle(bundle)
    try:  # before the 12 minutes of features
        [b.temperature(lv, args.temperature) for lv in b.prior_dirs]
    except UserError as e:
        raise SystemExit(f"--temperature: {e}") from None
    top = b.top
    keep = top if args.keep is None else args.keep
    if not 0 < keep <= top:
        raise SystemExit(f"--keep: give a level from 1 to {top} (level 0 is the one heard), not {keep}")
    vq, vq_id = load_vqvae(args.runs / "vqvae"), model_id(args.runs / "vqvae")
    step = int(args.seconds * SR)  # as eval_model.py's clips: the same judges
    train, held = split_clips(args.runs, step)
    held = [held[i] for i in spread(len(held), args.clips)]
    x = codec_features(vq, train, 0, args.cache, vq_id)
    upsampled = resampled(bundle, vq, vq_id, held, args.temperature, args.seed, keep)
    kept = "top" if keep == top else f"levels_{top}_to_{keep}"
    heard = {
        "through_codec": codec_features(vq, held, 0),
        f"true_{kept}_codes_upsampled": np.array([clip_features(a) for a in upsampled]),
    }
    report = {"clips": len(held), "seconds": step / SR, "temperature": args.temperature, "first_seed": args.seed}
    report["kept_levels"] = list(range(keep, top + 1))
    emit(report | judged(train, x, held, heard), args.out)


if __name__ == "__main__":
    main()

"""Does the bottom upsampler lose the artist in its predictions, or by running on its own draws?

    python benchmarks/upsampler_drift.py --runs WORK [--bundle WORK/bundle] [--clips 64] [--cache FILE.npz]
        [--out FILE]

The held-out real clips of ``upsampler_loss.py`` keep their true level-2 and level-1 codes, and
level 0 is drawn below them two ways, with each clip's own labels, the bundle's default guidance
and temperature:
- **teacher-forced**: every code drawn from the upsampler's distribution given the *true* codes
  before it (windows of its context, side by side): what its predictions keep;
- **free-running**: as sampling draws it (``sampling.engine.sample_level``): every code given the
  codes it drew itself.
Both are decoded and heard by ``upsampler_loss.py``'s judges, next to the clips through the codec,
and the share of drawn codes equal to the true ones is reported: how far each stays on the track.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from clip_classifier import SR, clip_features, codec_features, split_clips
from reports import emit  # beside this script
from upsampler_loss import held_out_clip_args, judged, spread, true_codes

from openjukebox.checkpoint import model_id
from openjukebox.prior.conditioning import forget_labels
from openjukebox.prior.model import Prior
from openjukebox.sampling.bundle import Bundle
from openjukebox.sampling.engine import HOP_FRACTIONS, LevelSettings, sample_level


@torch.no_grad()
def teacher_forced(
    prior: Prior, codes: torch.Tensor, above: torch.Tensor, y: torch.Tensor, settings: LevelSettings, seed: int
) -> torch.Tensor:
    """(T,) a code drawn at every position of the true ``codes`` (T,) given the true codes before it
    in its window of n_ctx (windows side by side, the last one ending at T), below ``above`` with
    label row ``y`` (1, 4+G; None for a prior without labels); guided and tempered as ``settings``
    say, as sampling guides and tempers them."""
    n_ctx, up = prior.cfg.n_ctx, prior.cfg.conditioner.upsample
    total = len(codes)
    if total < n_ctx:
        raise ValueError(f"{total} codes: teacher-forced windows need at least the context, {n_ctx}")
    starts = list(range(0, total - n_ctx + 1, n_ctx)) + ([total - n_ctx] if total % n_ctx else [])
    z = torch.stack([codes[s : s + n_ctx] for s in starts])
    a = torch.stack([above[s // up : (s + n_ctx) // up] for s in starts])
    rows = None
    if y is not None:
        rows = y.repeat(len(starts), 1)
        rows[:, 1] += torch.tensor(starts) * prior.cfg.hop_length  # each window's offset, as sampling sets it
    logits = prior(z, prior.condition(rows, a)).float()
    if settings.guidance != 1.0 and rows is not None:
        unknown = prior(z, prior.condition(forget_labels(rows, prior.cfg.labels.max_bow_genre_size), a)).float()
        logits = unknown + settings.guidance * (logits - unknown)
    song = torch.empty(total, logits.shape[-1])
    for s, window in zip(starts, logits, strict=True):
        song[s : s + n_ctx] = window  # the last window's overlap is written twice, the same way
    probs = torch.softmax(song / settings.temperature, -1)
    return torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(seed))[:, 0]


def drawn(bundle: Bundle, vq, clips: list, seed: int) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """Level-0 audio of each clip (audio, genre, artist, piece) both ways, and for each way the share
    of its codes equal to the true ones; clip i is drawn with seed ``seed + i``."""
    prior = bundle.load_prior(0)
    settings = LevelSettings(
        bundle.temperature(0, 0.99), hop_fraction=HOP_FRACTIONS[0], guidance=bundle.guidance(0, None)
    )
    audio: dict[str, list] = {"teacher_forced": [], "free_running": []}
    same: dict[str, list] = {k: [] for k in audio}
    for i, (clip, genre, artist, _) in enumerate(clips):
        z0, z1 = true_codes(vq, clip, 0), true_codes(vq, clip, 1)
        y = bundle.labels(1, artist, genre)[0]
        if y is not None:
            y[:, 0] = len(z0) * vq.hop_lengths[0]  # the song's length, as sampling sets it
        ways = {
            "teacher_forced": teacher_forced(prior, z0, z1, y, settings, seed + i),
            "free_running": sample_level(prior, 1, len(z0), y, z1[None], settings, seed + i)[0],
        }
        for way, z in ways.items():
            same[way].append(float((z == z0).float().mean()))
            with torch.no_grad():
                audio[way].append(vq.decode(z[None], 0)[0, 0, : len(clip)].numpy())
    return audio, {way: round(float(np.mean(v)), 4) for way, v in same.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    held_out_clip_args(p, "bottom upsampler is")
    p.add_argument("--seed", type=int, default=700, help="the first clip's seed (default 700)")
    args = p.parse_args()
    b = Bundle(args.bundle or args.runs / "bundle")
    vq, vq_id = b.load_vqvae(), model_id(b.vqvae_dir)
    step = int(args.seconds * SR)
    train, held = split_clips(args.runs, step)
    held = [held[i] for i in spread(len(held), args.clips)]
    x = codec_features(vq, train, 0, args.cache, vq_id)
    audio, same = drawn(b, vq, held, args.seed)
    heard = {"through_codec": codec_features(vq, held, 0)}
    heard |= {way: np.array([clip_features(a) for a in clips]) for way, clips in audio.items()}
    report = {"clips": len(held), "seconds": step / SR, "first_seed": args.seed, "codes_equal_to_true": same}
    emit(report | judged(train, x, held, heard), args.out)


if __name__ == "__main__":
    main()

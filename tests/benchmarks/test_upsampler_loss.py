"""benchmarks/upsampler_loss.py: real clips re-rendered below their own top-level codes."""

import numpy as np
import pytest
import torch

from openjukebox.api import sample
from openjukebox.audio.io import load_audio
from openjukebox.checkpoint import load_vqvae, model_id
from openjukebox.codes import CodesFile

from .scripts import load_benchmark

SR = 22050


@pytest.fixture(scope="module")
def loss():
    return load_benchmark("upsampler_loss")


def test_clips_are_spread_evenly_over_the_list(loss):
    assert loss.spread(10, 4) == [0, 3, 6, 9]
    assert loss.spread(3, 5) == [0, 1, 2]
    assert loss.spread(10, 1) == [0] and loss.spread(10, 0) == []


def test_each_clip_keeps_its_top_codes_and_is_upsampled_with_its_own_labels(loss, bundle, tmp_path):
    vq = load_vqvae(bundle / "vqvae")
    n = 26500  # 1.2 s; padded to 26624, a whole number of top hops, and cut back
    rng = np.random.default_rng(0)
    clips = [(rng.normal(0, 0.3, n).astype(np.float32), g, a, "p") for a, g in
             (("Bach", "choir"), ("Ada Lovelace", "organ"), ("Bach", "choir"))]  # fmt: skip
    heard = loss.resampled(bundle, vq, model_id(bundle / "vqvae"), clips, 0.99, seed=5)
    assert len(heard) == 3 and all(len(h) == n for h in heard)
    # the second clip alone is the first label group in sorted order ("Ada Lovelace"): seed 5
    codes = loss.true_codes(vq, clips[1][0], 2)[None]
    assert codes.shape[1] * vq.hop_lengths[-1] == 26624
    CodesFile({2: codes}, SR, 26624, vq.hop_lengths, {"id": model_id(bundle / "vqvae")}).save(tmp_path / "true.codes")
    meta = sample(bundle, tmp_path / "alone", 26624 / SR, "Ada Lovelace", "organ", 1, seed=5,
                  codes_file=tmp_path / "true.codes")  # fmt: skip
    np.testing.assert_array_equal(heard[1], load_audio(meta["files"][0][0], SR)[:n])
    kept = CodesFile.load(tmp_path / "alone" / "codes.codes").codes[2]
    assert torch.equal(kept, codes)  # the true top codes were kept, not sampled
    assert not np.array_equal(heard[0], heard[2])  # one group, two samples


def test_keep_1_keeps_the_true_codes_of_level_1_too_and_samples_level_0_alone(loss, bundle, tmp_path):
    vq = load_vqvae(bundle / "vqvae")
    n = 26624  # 1.2 s, a whole number of top hops
    clip = np.random.default_rng(1).normal(0, 0.3, n).astype(np.float32)
    heard = loss.resampled(bundle, vq, model_id(bundle / "vqvae"), [(clip, "choir", "Bach", "p")], 0.99, 5, keep=1)
    codes = {lv: loss.true_codes(vq, clip, lv)[None] for lv in (1, 2)}
    assert codes[1].shape[1] == n // vq.hop_lengths[1]
    CodesFile(codes, SR, n, vq.hop_lengths, {"id": model_id(bundle / "vqvae")}).save(tmp_path / "true.codes")
    meta = sample(
        bundle,
        tmp_path / "alone",
        n / SR,
        "Bach",
        "choir",
        1,
        seed=5,
        codes_file=tmp_path / "true.codes",
        keep_down_to=1,
    )
    np.testing.assert_array_equal(heard[0], load_audio(meta["files"][0][0], SR))
    out = CodesFile.load(tmp_path / "alone" / "codes.codes").codes
    assert torch.equal(out[1], codes[1]) and torch.equal(out[2], codes[2])  # both kept
    for bad in (0,):  # sampling refuses it (main() refuses any level outside 1..top first)
        with pytest.raises(ValueError, match="--keep-down-to must be a level from 1 to 2"):
            loss.resampled(bundle, vq, model_id(bundle / "vqvae"), [(clip, "choir", "Bach", "p")], 0.99, 5, keep=bad)


def test_judged_names_the_labels_of_clips_that_sound_like_their_training_clips(loss):
    width = len(load_benchmark("clip_classifier").FEATURE_NAMES)  # clip_features' length: both judges take it
    rng = np.random.default_rng(0)
    names = [("Bach", "organ"), ("Ada", "piano")]
    centre = {n: rng.normal(0, 5, width) for n in names}
    rows = [(None, g, a, f"{a}{i % 6}") for i in range(60) for a, g in [names[i % 2]]]  # 6 pieces per artist
    x = np.array([centre[(a, g)] + rng.normal(0, 1, width) for _, g, a, _ in rows])
    held = [(None, g, a, "h") for a, g in names * 4]
    near = np.array([centre[(a, g)] + rng.normal(0, 1, width) for _, g, a, _ in held])
    swapped = near[[1, 0, 3, 2, 5, 4, 7, 6]]  # each clip sounds like the other artist
    report = loss.judged(rows, x, held, {"near": near, "swapped": swapped})
    for kind in ("artist", "genre"):
        assert report[kind]["chance"] == 0.5
        for judge in ("chosen", "timbre_only"):
            assert report[kind][judge]["near"]["accuracy"] == 1.0
            assert report[kind][judge]["swapped"]["accuracy"] == 0.0

"""benchmarks/upsampler_drift.py: level 0 drawn teacher-forced and free-running below true codes."""

import dataclasses

import numpy as np
import pytest
import torch

from openjukebox.api import sample
from openjukebox.checkpoint import load_vqvae, model_id
from openjukebox.codes import CodesFile
from openjukebox.prior.conditioning import forget_labels
from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.sampling.bundle import Bundle
from openjukebox.sampling.engine import LevelSettings

from .scripts import load_benchmark

SR = 22050


@pytest.fixture(scope="module")
def drift():
    return load_benchmark("upsampler_drift")


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_teacher_forced_draws_each_code_given_the_true_codes_before_it_in_its_window(drift, guidance):
    torch.manual_seed(0)
    cfg = get_preset("tiny_upsampler_0")
    prior = build_prior(dataclasses.replace(cfg, labels=get_preset("mini_upsampler_0").labels)).eval()
    n_ctx, up = prior.cfg.n_ctx, prior.cfg.conditioner.upsample
    total = 2 * n_ctx + 3 * up  # two whole windows, then one that ends at the song's end
    g = torch.Generator().manual_seed(0)
    codes, above = torch.randint(0, prior.cfg.l_bins, (total,), generator=g), torch.randint(0, 64, (total // up,))
    y = torch.tensor([[total * prior.cfg.hop_length, 0, prior.cfg.sample_length, 3, 2]])  # artist 3, genre 2
    cold = LevelSettings(temperature=1e-6, guidance=guidance)  # all but greedy: the argmax of each position
    got = drift.teacher_forced(prior, codes, above, y, cold, seed=0)
    guided = torch.empty(total, prior.cfg.l_bins)
    with torch.no_grad():
        for start in (0, n_ctx, total - n_ctx):
            row = y.clone()
            row[:, 1] = start * prior.cfg.hop_length
            z, a = codes[None, start : start + n_ctx], above[None, start // up : (start + n_ctx) // up]
            logits = prior(z, prior.condition(row, a))[0]
            unknown = prior(z, prior.condition(forget_labels(row, prior.cfg.labels.max_bow_genre_size), a))[0]
            guided[start : start + n_ctx] = unknown + guidance * (logits - unknown)
    best = guided.max(-1).values  # near-ties may go either way (the windows run as one batch there)
    assert (guided.gather(1, got[:, None])[:, 0] >= best - 1e-4).all()
    assert (got == guided.argmax(-1)).float().mean() > 0.95
    assert (got == codes).float().mean() < 0.5  # a random prior: the true codes are no answer key


def test_free_running_is_what_sampling_draws_below_the_kept_codes(drift, bundle, tmp_path):
    vq = load_vqvae(bundle / "vqvae")
    n = 26624  # 1.2 s, a whole number of top hops
    clip = np.random.default_rng(1).normal(0, 0.3, n).astype(np.float32)
    audio, same = drift.drawn(Bundle(bundle), vq, [(clip, "choir", "Bach", "p")], seed=5)
    codes = {lv: drift.true_codes(vq, clip, lv)[None] for lv in (1, 2)}
    CodesFile(codes, SR, n, vq.hop_lengths, {"id": model_id(bundle / "vqvae")}).save(tmp_path / "true.codes")
    sample(bundle, tmp_path / "s", n / SR, "Bach", "choir", 1, seed=5, codes_file=tmp_path / "true.codes",
           keep_down_to=1)  # fmt: skip
    sampled = CodesFile.load(tmp_path / "s" / "codes.codes").codes[0]
    with torch.no_grad():
        want = vq.decode(sampled, 0)[0, 0].numpy()
    np.testing.assert_allclose(audio["free_running"][0], want, atol=1e-6)
    true0 = drift.true_codes(vq, clip, 0)
    assert same["free_running"] == round(float((sampled[0] == true0).float().mean()), 4)
    assert len(audio["teacher_forced"][0]) == n and 0 <= same["teacher_forced"] <= 1

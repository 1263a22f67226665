from types import SimpleNamespace

import pytest
import torch

from openjukebox.prior.conditioning import forget_labels
from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.sampling.engine import LevelSettings, plan_windows, sample_level, segment_plan, window_starts
from openjukebox.sampling.sampler import filter_logits, sample_window


def test_window_starts_follow_the_original():
    assert window_starts(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert window_starts(32, 32, 16) == [0]
    assert window_starts(10, 32, 16) == [0]
    assert window_starts(8192 * 3, 8192, 4096) == [0, 4096, 8192, 12288, 16384]


class DummyPrior:
    """Records what each window was conditioned on; samples marker tokens."""

    def __init__(self, n_ctx, level, hop_length, upsample=None):
        cond_cfg = SimpleNamespace(upsample=upsample) if upsample else None
        self.cfg = SimpleNamespace(
            n_ctx=n_ctx,
            level=level,
            hop_length=hop_length,
            conditioner=cond_cfg,
            lyrics=None,
            sample_length=n_ctx * hop_length,
        )
        self.pos_emb = torch.zeros(1)
        self.calls = []

    def condition(self, y, above, batch):
        return SimpleNamespace(y=y, above=above, start=torch.zeros(batch, 1, 1))

    def sample(self, prior, cond, length, prompt=None, **kw):
        p = 0 if prompt is None else prompt.shape[1]
        start = int(cond.y[0, 1]) // self.cfg.hop_length
        self.calls.append(
            dict(
                start=start,
                length=length,
                prompt=None if prompt is None else prompt.clone(),
                y=cond.y.clone(),
                above=None if cond.above is None else cond.above.clone(),
            )
        )
        new = torch.arange(start + p, start + length).expand(cond.y.shape[0], -1)  # token = its position
        return new if prompt is None else torch.cat([prompt, new], 1)


@pytest.mark.parametrize("total", [20, 64, 64 * 7 + 12])
@pytest.mark.parametrize("level,upsample", [(2, None), (1, 4)])
def test_every_position_is_sampled_once_with_the_right_conditioning(total, level, upsample):
    n_ctx, hop_length = 64, 32
    total = total // 4 * 4
    prior = DummyPrior(n_ctx, level, hop_length, upsample)
    y = torch.tensor([[total * hop_length, 0, 0, 5, 2]] * 3)
    above = torch.arange(total // 4).expand(3, -1) + 1000 if upsample else None
    codes = sample_level(prior, 3, total, y, above, LevelSettings(hop_fraction=0.5), seed=0, sampler=prior.sample)
    assert torch.equal(codes, torch.arange(total).expand(3, -1))  # each position written by its own window
    sampled = torch.zeros(total, dtype=torch.long)
    for call in prior.calls:
        p = 0 if call["prompt"] is None else call["prompt"].shape[1]
        sampled[call["start"] + p : call["start"] + call["length"]] += 1
        if p:  # primed on exactly the codes earlier windows produced
            assert torch.equal(call["prompt"], torch.arange(call["start"], call["start"] + p).expand(3, -1))
        assert call["length"] == min(n_ctx, total)
        assert call["y"][0].tolist() == [total * hop_length, call["start"] * hop_length, n_ctx * hop_length, 5, 2]
        if upsample:
            s = call["start"] // 4
            assert torch.equal(call["above"][0], torch.arange(s, s + min(n_ctx, total) // 4) + 1000)
    assert sampled.tolist() == [1] * total
    assert len(prior.calls) == len(plan_windows(total, n_ctx, 32))


@pytest.mark.parametrize("given", [1, 37, 64, 100])
def test_given_codes_are_kept_and_sampling_continues_after_them(given):
    prior = DummyPrior(64, 2, 32)
    y = torch.tensor([[300 * 32, 0, 0, 0, 0]])
    prompt = torch.full((1, given), -7)
    codes = sample_level(prior, 1, 300, y, None, LevelSettings(), seed=0, codes=prompt, sampler=prior.sample)
    assert torch.equal(codes[0, :given], prompt[0])
    assert torch.equal(codes[0, given:], torch.arange(given, 300))
    first = prior.calls[0]
    assert first["start"] < given and torch.equal(first["prompt"][0], codes[0, first["start"] : given])


def test_samples_are_split_into_batches():
    prior = DummyPrior(16, 2, 128)
    y = torch.tensor([[10**6, 0, 0, 0, 0]] * 5)
    sample_level(prior, 5, 16, y, None, LevelSettings(max_batch=2), seed=0, sampler=prior.sample)
    assert [c["y"].shape[0] for c in prior.calls] == [2, 2, 1]


def test_a_run_killed_after_a_window_and_resumed_equals_the_uninterrupted_run():
    torch.manual_seed(0)
    prior = build_prior(get_preset("tiny_top")).eval()
    sr = prior.cfg.sample_rate
    total = 256 * 2 + 40
    y = torch.tensor([[30 * sr, 0, 0, 1, 2], [40 * sr, 0, 0, 3, -1]])
    settings = LevelSettings(temperature=1.0, hop_fraction=0.5, chunk_size=50)
    full = sample_level(prior, 2, total, y, None, settings, seed=7)

    saved = {}

    def crash_after_second(window, codes):
        saved["codes"] = codes.clone()
        if window.index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample_level(prior, 2, total, y, None, settings, seed=7, on_window=crash_after_second)
    assert saved["codes"].shape[1] == 384 and torch.equal(saved["codes"], full[:, :384])
    resumed = sample_level(prior, 2, total, y, None, settings, seed=7, codes=saved["codes"])
    assert torch.equal(resumed, full)
    other_seed = sample_level(prior, 2, total, y, None, settings, seed=8)
    assert not torch.equal(other_seed, full)


def test_top_k_and_top_p_keep_exactly_the_right_tokens():
    logits = torch.log(torch.tensor([[0.05, 0.4, 0.1, 0.3, 0.15]]))
    kept = lambda out: torch.isfinite(out[0]).nonzero().flatten().tolist()  # noqa: E731
    assert kept(filter_logits(logits, top_k=2)) == [1, 3]
    assert kept(filter_logits(logits, top_k=1)) == [1]
    assert kept(filter_logits(logits, top_p=0.5)) == [1, 3]  # 0.4 < 0.5, then 0.7 crosses: both kept
    assert kept(filter_logits(logits, top_p=0.75)) == [1, 3, 4]  # 0.85 crosses 0.75
    assert kept(filter_logits(logits, top_p=0.39)) == [1]
    assert kept(filter_logits(logits)) == [0, 1, 2, 3, 4]
    assert torch.equal(filter_logits(logits, top_k=2)[0, [1, 3]], logits[0, [1, 3]])  # kept values unchanged


def _guided_setup():
    torch.manual_seed(0)
    prior = build_prior(get_preset("tiny_top")).double().eval()
    with torch.no_grad():  # labels that matter, as in a trained model
        prior.labels.artist_emb.weight.mul_(100)
        prior.labels.genre_emb.weight.mul_(100)
    sr = prior.cfg.sample_rate
    y = torch.tensor([[30 * sr, 0, prior.cfg.sample_length, 3, 7], [20 * sr, 0, prior.cfg.sample_length, 1, 2]])
    return prior, y


def test_guidance_mixes_the_conditional_and_unknown_label_logits():
    prior, y = _guided_setup()
    uncond_y = forget_labels(y, prior.cfg.labels.max_bow_genre_size)
    assert uncond_y[:, 3].tolist() == [0, 0] and uncond_y[:, 4].tolist() == [-1, -1]
    assert torch.equal(uncond_y[:, :3], y[:, :3])  # timing is kept
    cond, uncond = prior.condition(y), prior.condition(uncond_y)
    seen = {}
    gen = torch.Generator().manual_seed(3)
    tokens = sample_window(
        prior, cond, 48, uncond=uncond, guidance=3.0, generator=gen, on_logits=lambda t, lg: seen.__setitem__(t, lg)
    )
    with torch.no_grad():
        c, u = prior(tokens, cond).float(), prior(tokens, uncond).float()
    for t in (0, 1, 17, 47):
        torch.testing.assert_close(seen[t], u[:, t] + 3.0 * (c[:, t] - u[:, t]), rtol=1e-4, atol=1e-4)


def test_guidance_against_the_same_labels_or_of_one_is_plain_sampling():
    prior, y = _guided_setup()
    cond = prior.condition(y)
    draw = lambda **kw: sample_window(prior, cond, 30, generator=torch.Generator().manual_seed(5), **kw)  # noqa: E731
    plain = draw()
    assert torch.equal(draw(uncond=prior.condition(y), guidance=4.0), plain)
    assert torch.equal(
        draw(uncond=prior.condition(forget_labels(y, prior.cfg.labels.max_bow_genre_size)), guidance=1.0), plain
    )
    first = {}
    draw(
        uncond=prior.condition(forget_labels(y, prior.cfg.labels.max_bow_genre_size)),
        guidance=4.0,
        on_logits=first.setdefault,
    )
    draw(on_logits=lambda t, lg: first.setdefault(-1, lg) if t == 0 else None)
    assert (first[0] - first[-1]).abs().max() > 1e-3  # the labels, amplified, move the first token's logits


class StretchPrior(DummyPrior):
    """Samples tokens ``tag * 100000 + position``: the tag is the absolute code where the row's
    stretch began (its first window has no prompt), so the output shows which stretch wrote what."""

    def sample(self, prior, cond, length, prompt=None, **kw):
        p = 0 if prompt is None else prompt.shape[1]
        starts = cond.y[:, 1] // self.cfg.hop_length
        self.calls.append(dict(starts=starts.tolist(), length=length, p=p, y=cond.y.clone(), above=cond.above.clone()))
        tags = starts if prompt is None else prompt[:, 0] // 100000
        if kw.get("progress"):
            kw["progress"](length - p)
        new = torch.stack([t * 100000 + torch.arange(s + p, s + length) for t, s in zip(tags, starts, strict=True)])
        return new if prompt is None else torch.cat([prompt, new], 1)


def test_segment_plans_cover_the_level_once_with_a_run_in_before_every_seam():
    for total, n_ctx, up, segments in [(27568, 512, 4, 8), (6892, 512, 4, 8), (1000, 64, 4, 3), (4096, 64, 8, 16)]:
        plan = segment_plan(total, n_ctx, up, segments)
        kept = [plan.kept(s) for s in range(plan.count)]
        assert kept[0][0] == 0 and kept[-1][1] == total == plan.stride * (plan.count - 1) + plan.length
        assert all(a[1] == b[0] for a, b in zip(kept, kept[1:], strict=False))  # contiguous, each code once
        assert plan.stride % up == 0 and plan.overlap >= n_ctx // 2 and plan.stride >= 2 * n_ctx
    counts = [segment_plan(*args).count for args in [(27568, 512, 4, 8), (6892, 512, 4, 8), (1000, 64, 4, 3)]]
    assert counts == [8, 6, 3]  # as asked, or as many as hold two contexts each (6892 codes: 6)
    assert segment_plan(27568, 512, 4, 1) is None and segment_plan(1500, 512, 4, 8) is None  # one stretch


def test_a_level_in_segments_samples_its_stretches_side_by_side_with_their_own_conditioning():
    n_ctx, hop, up, total = 64, 32, 4, 64 * 9
    prior = StretchPrior(n_ctx, 1, hop, up)
    y = torch.tensor([[total * hop, 0, 0, 5, 2], [total * hop, 0, 0, 6, 1]])
    above = torch.arange(total // up).expand(2, -1) + 1000
    saved, told = [], []
    settings = LevelSettings(hop_fraction=0.5, segments=3, max_batch=4)
    codes = sample_level(
        prior,
        2,
        total,
        y,
        above,
        settings,
        0,
        on_window=lambda w, c: saved.append(c.clone()),
        on_tokens=told.append,
        sampler=prior.sample,
    )
    # progress counts the level's codes (2 songs), in whole numbers, though the stretches sample more
    assert all(isinstance(k, int) and k > 0 for k in told) and sum(told) == 2 * total
    plan = segment_plan(total, n_ctx, up, 3)
    assert plan.count == 3
    for s in range(plan.count):  # every code comes from the stretch that keeps it, sampled at its position
        a, e = plan.kept(s)
        assert torch.equal(codes[:, a:e], (s * plan.stride * 100000 + torch.arange(a, e)).expand(2, -1))
    # 6 rows (2 songs x 3 stretches) in batches of at most 4, window by window in step
    windows = plan_windows(plan.length, n_ctx, n_ctx // 2)
    assert [len(c["starts"]) for c in prior.calls] == [4, 2] * len(windows)
    for call in prior.calls:
        for row, start in enumerate(call["starts"]):  # labels and upper codes of the row's own place
            assert call["y"][row, 1] == start * hop and call["y"][row, 2] == n_ctx * hop
            assert torch.equal(call["above"][row], torch.arange(start // up, start // up + n_ctx // up) + 1000)
    assert [c["y"][:, 3].tolist() for c in prior.calls[:2]] == [[5, 5, 5, 6], [6, 6]]
    assert len(saved) == 1 and torch.equal(saved[0], codes)  # saved once, complete
    # given codes (a prompt, a resumed level): one stretch, primed on them, as before
    given = sample_level(prior, 2, total, y, above, settings, 0, codes=codes[:, :10], sampler=prior.sample)
    assert torch.equal(given[:, 10:], torch.arange(10, total).expand(2, -1))

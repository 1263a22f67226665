import pytest
import torch

from openjukebox.codes import CodesFile
from openjukebox.prior.config import get_preset
from openjukebox.prior.model import build_prior
from openjukebox.sampling.engine import LevelSettings
from openjukebox.sampling.song import sample_song, song_lengths


@pytest.fixture(scope="module")
def priors():
    torch.manual_seed(0)
    return {
        2: build_prior(get_preset("tiny_top")).eval(),
        1: build_prior(get_preset("tiny_upsampler_1")).eval(),
        0: build_prior(get_preset("tiny_upsampler_0")).eval(),
    }


SETTINGS = {lv: LevelSettings(temperature=1.0, hop_fraction=0.5, chunk_size=64) for lv in (0, 1, 2)}
LABELS = torch.tensor([[0, 0, 0, 1, 2], [0, 0, 0, 3, -1]])


def _sample(priors, state, seed, **kw):
    configs = {lv: p.cfg for lv, p in priors.items()}
    return sample_song(configs, priors.__getitem__, 2, {2: LABELS, 1: None, 0: None}, 1.0, seed, state, SETTINGS, **kw)


def test_every_level_is_sampled_and_saved(priors, tmp_path):
    configs = {lv: p.cfg for lv, p in priors.items()}
    n_samples, totals = song_lengths(configs, 1.0)
    assert n_samples % 128 == 0 and n_samples >= 22050
    assert totals == {2: n_samples // 128, 1: n_samples // 32, 0: n_samples // 8}
    assert song_lengths(configs, 44160 / 22050)[0] == 44160  # a length read back from a file is kept
    tokens = {0: 0, 1: 0, 2: 0}

    def count(level, k):
        tokens[level] += k

    out = _sample(priors, tmp_path / "s.codes", 3, codec={"path": "vq", "id": "abc"}, on_tokens=count)
    assert {lv: c.shape for lv, c in out.codes.items()} == {lv: (2, t) for lv, t in totals.items()}
    assert tokens == {lv: 2 * t for lv, t in totals.items()}  # every position of both songs, once
    assert out.extra["done"] == {str(lv): t for lv, t in totals.items()}
    assert out.extra["sampling"]["labels"]["2"][0][0] == n_samples
    assert out.model == {"path": "vq", "id": "abc"}
    assert all(int(c.max()) < 64 and int(c.min()) >= 0 for c in out.codes.values())


def test_killed_run_resumes_to_the_same_song(priors, tmp_path):
    full = _sample(priors, tmp_path / "full.codes", 5)

    def kill_in_level_1(level, window, total):
        if level == 1 and window.index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _sample(priors, tmp_path / "cut.codes", 5, on_window=kill_in_level_1)
    partial = CodesFile.load(tmp_path / "cut.codes")
    assert sorted(partial.codes) == [1, 2] and partial.codes[1].shape[1] < full.codes[1].shape[1]
    resumed = _sample(priors, tmp_path / "cut.codes", 5)
    for lv in (0, 1, 2):
        assert torch.equal(resumed.codes[lv], full.codes[lv])
    with pytest.raises(ValueError, match="holds another sampling run \\(different seed\\)"):
        _sample(priors, tmp_path / "cut.codes", 6)
    with pytest.raises(ValueError, match="different models"):
        _sample(priors, tmp_path / "cut.codes", 5, identity={"priors": {"2": "retrained"}})


def test_a_top_level_preview_continues_down_to_the_same_song(priors, tmp_path):
    full = _sample(priors, tmp_path / "full.codes", 9)
    preview = _sample(priors, tmp_path / "p.codes", 9, lowest=2)
    assert sorted(preview.codes) == [2] and torch.equal(preview.codes[2], full.codes[2])
    calls = []
    loader = {lv: p for lv, p in priors.items()}
    configs = {lv: p.cfg for lv, p in priors.items()}
    done = sample_song(
        configs,
        lambda lv: calls.append(lv) or loader[lv],
        2,
        {2: LABELS, 1: None, 0: None},
        1.0,
        9,
        tmp_path / "p.codes",
        SETTINGS,
    )
    assert calls == [1, 0]  # the top level was not loaded again
    assert all(torch.equal(done.codes[lv], full.codes[lv]) for lv in (0, 1, 2))


def test_a_length_the_prior_cannot_time_is_refused_before_sampling(priors, tmp_path):
    configs = {lv: p.cfg for lv, p in priors.items()}
    with pytest.raises(ValueError, match="--seconds 0.5 is outside what the level-2 prior was trained for"):
        sample_song(configs, priors.__getitem__, 2, {2: LABELS}, 0.5, 0, tmp_path / "x.codes", SETTINGS)

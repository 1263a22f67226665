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


def test_every_level_is_sampled_and_saved(priors, tmp_path):
    n_samples, totals = song_lengths(priors, 1.0)
    assert n_samples % 128 == 0 and totals == {2: n_samples // 128, 1: n_samples // 32, 0: n_samples // 8}
    out = sample_song(
        priors,
        LABELS,
        1.0,
        seed=3,
        state_path=tmp_path / "s.codes",
        settings=SETTINGS,
        codec={"path": "vq", "id": "abc"},
    )
    assert {lv: c.shape for lv, c in out.codes.items()} == {lv: (2, t) for lv, t in totals.items()}
    assert out.extra["done"] == {str(lv): t for lv, t in totals.items()}
    assert out.extra["sampling"]["labels"][0][:1] == [n_samples]
    assert out.model == {"path": "vq", "id": "abc"}
    assert all(int(c.max()) < 64 and int(c.min()) >= 0 for c in out.codes.values())


def test_killed_run_resumes_to_the_same_song(priors, tmp_path):
    full = sample_song(priors, LABELS, 1.0, seed=5, state_path=tmp_path / "full.codes", settings=SETTINGS)
    windows = []

    def kill_in_level_1(level, window, total):
        windows.append((level, window.index))
        if level == 1 and window.index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample_song(
            priors, LABELS, 1.0, seed=5, state_path=tmp_path / "cut.codes", settings=SETTINGS, progress=kill_in_level_1
        )
    partial = CodesFile.load(tmp_path / "cut.codes")
    assert sorted(partial.codes) == [1, 2] and partial.codes[1].shape[1] < full.codes[1].shape[1]
    resumed = sample_song(priors, LABELS, 1.0, seed=5, state_path=tmp_path / "cut.codes", settings=SETTINGS)
    for lv in (0, 1, 2):
        assert torch.equal(resumed.codes[lv], full.codes[lv])
    with pytest.raises(ValueError, match="holds another sampling run \\(different seed\\)"):
        sample_song(priors, LABELS, 1.0, seed=6, state_path=tmp_path / "cut.codes", settings=SETTINGS)

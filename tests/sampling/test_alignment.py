from types import SimpleNamespace

import numpy as np
import torch

from openjukebox.lyrics.timed import SongLyrics
from openjukebox.sampling import alignment


def test_timing_errors_choose_windows_as_sampling_from_plain_text_does(monkeypatch):
    """The true character times score the alignment; they never choose the windows' characters,
    unless asked (as when a user gives timed lyrics)."""
    seen = []

    def align(prior, codes, y, lyrics, tokenizer, hop_fraction):
        seen.append(lyrics[0])
        return [(SimpleNamespace(times=[0.0, 1.0, 2.0]), None)], {}

    monkeypatch.setattr(alignment, "align_songs", align)
    cfg = SimpleNamespace(
        hop_length=128,
        sample_rate=22050,
        sample_length=128 * 64,
        labels=SimpleNamespace(max_bow_genre_size=1),
        lyrics=SimpleNamespace(n_tokens=2),
    )
    song = SongLyrics((3, 4, 5), times=(0.5, 1.0, 4.0))
    codes = torch.zeros(1, 640, dtype=torch.long)  # 640 codes x 128 / 22050 = 3.7 s
    errors, linear = alignment.timing_errors(SimpleNamespace(cfg=cfg), None, codes, song)
    assert seen[-1] == SongLyrics((3, 4, 5)) and seen[-1].times is None
    np.testing.assert_allclose(errors, [0.5, 0.0, 2.0])
    np.testing.assert_allclose(linear, np.abs(np.arange(3) / 3 * 640 * 128 / 22050 - [0.5, 1.0, 4.0]))
    alignment.timing_errors(SimpleNamespace(cfg=cfg), None, codes, song, windows_from_times=True)
    assert seen[-1] is song

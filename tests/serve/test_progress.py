"""``api.sample``'s callbacks, which the server streams: progress per level, each level heard when done."""

from __future__ import annotations

import soundfile as sf

from openjukebox import api
from openjukebox.models import default_model
from openjukebox.sampling.bundle import Bundle
from openjukebox.sampling.song import song_lengths


def test_a_level_is_written_and_reported_before_the_next_one_starts(tmp_path):
    configs = Bundle(default_model()).configs
    n_audio, totals = song_lengths(configs, 1.0)
    events = []

    def on_level(level: int, files: list[str]) -> None:
        audio, rate = sf.read(files[0])
        events.append(("level", level, len(audio), rate))

    meta = api.sample(
        default_model(),
        tmp_path,
        1.0,
        n_samples=2,
        lowest=1,
        seed=3,
        device="cpu",
        on_progress=lambda p: events.append(("tokens", p.level, p.done, p.total, p.tokens_per_s, p.eta_s)),
        on_level=on_level,
    )
    levels = [e[1] for e in events if e[0] == "level"]
    assert levels == [2, 1] and [e[2:] for e in events if e[0] == "level"] == [(n_audio, 22050)] * 2
    top_written = events.index(("level", 2, n_audio, 22050))
    assert all(e[1] == 2 for e in events[:top_written])  # the top level is heard before level 1 starts
    for level in (2, 1):
        ticks = [e for e in events if e[0] == "tokens" and e[1] == level]
        counts = [e[2] for e in ticks]
        assert counts == sorted(counts) and counts[-1] == ticks[-1][3] == 2 * totals[level]  # two songs
        assert all(e[4] > 0 for e in ticks[1:]) and ticks[-1][5] == 0
    assert meta["files"] == {lv: [str(tmp_path / f"level_{lv}" / f"sample_{i}.wav") for i in (0, 1)] for lv in (2, 1)}

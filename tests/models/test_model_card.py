"""The shipped model's card and the README quote the alignment figures its quality.json holds."""

from __future__ import annotations

import json
from pathlib import Path

from openjukebox.models import DEFAULT_MODEL
from openjukebox.sampling.alignment import ALIGN_SPREAD

ROOT = Path(__file__).parents[2]


def test_the_alignment_figures_are_those_measured():
    measured = json.loads((DEFAULT_MODEL / "quality.json").read_text())["lyrics_alignment"]
    card = (DEFAULT_MODEL / "MODEL_CARD.md").read_text()
    readme = " ".join((ROOT / "README.md").read_text().split())  # lines joined
    exported = f"{measured['plain_text_windows_median_error_s']:.2f} s"
    linear = f"{measured['linear_rule_median_error_s']:.2f} s"
    alone = f"{measured['held_out_median_error_s_by_spread']['0.0']:.2f} s"
    timed = f"{measured['timed_windows_median_error_s']:.2f} s"
    low, high = measured["plain_text_minus_linear_90pct_interval_s"]
    for text in (card, readme):
        assert f"{measured['songs']} " in text and exported in text and linear in text and alone in text
    assert f"| **{exported}** (target: below the linear rule) |" in card and f"| {linear} |" in card
    assert (
        f"| {alone} |" in card
        and f"| {timed} |" in card
        and f"{measured['characters']:,} characters" in " ".join(card.split())
    )
    assert f"interval of {low:g} to +{high:.2f} s" in " ".join(card.split())
    # sampling's prior is the width measured, the one chosen on the training songs, as both say (1 s)
    assert measured["spread_s"] == measured["spread_chosen_on_training_songs_s"] == ALIGN_SPREAD == 1.0

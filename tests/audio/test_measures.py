import numpy as np
import pytest

pytest.importorskip("librosa")

from openjukebox.audio.measures import clip_measures, pitched_frames, stable_note_frames  # noqa: E402

SR = 22050


def _tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 6)) * np.exp(-t)  # five partials, a decay


def test_notes_score_as_music_and_noise_as_noise():
    melody = np.concatenate([_tone(hz, 0.5) for hz in (262, 330, 392, 523, 392, 330)]).astype(np.float32) * 0.3
    noise = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32) * 0.1
    m, n = clip_measures(melody, SR), clip_measures(noise, SR)
    assert m["noise_likeness"] < 0.05 and abs(n["noise_likeness"] - 0.56) < 0.03  # white noise: exp(-Euler gamma)
    assert m["harmonic_share"] > 0.85 and n["harmonic_share"] < 0.6
    assert m["pitched_frames"] > 0.8 and n["pitched_frames"] < 0.4  # pYIN calls some noise frames voiced
    assert m["stable_notes"] > 0.8 and n["stable_notes"] < 0.15


def test_a_glide_is_pitched_but_not_a_note():
    t = np.arange(2 * SR) / SR
    hz = 200 * 2 ** (t * 2)  # two octaves a second: never within half a semitone for 100 ms
    glide = (0.3 * np.sin(2 * np.pi * np.cumsum(hz) / SR)).astype(np.float32)
    g = clip_measures(glide, SR)
    assert g["pitched_frames"] > 0.8 and g["stable_notes"] < 0.1


def test_stable_note_frames_counts_runs_within_half_a_semitone():
    a4, b4 = 440.0, 440.0 * 2 ** (2 / 12)
    f0 = np.array([a4] * 5 + [np.nan] + [a4 * 2 ** (0.4 / 12)] * 2 + [a4] * 3 + [b4] * 2)
    # a run needs 3 frames (0.1 s at 1/30 s per frame): the first five, then the 0.4-semitone pair
    # with the three A4s after it (one run: within half a semitone of its start), not the two B4s
    expected = [True] * 5 + [False] + [True] * 5 + [False] * 2
    assert stable_note_frames(f0, 1 / 30, min_note_s=0.1).tolist() == expected


def test_pitched_frames_hold_their_pitch_from_frame_to_frame():
    a = 440.0
    f0 = np.array([a, a * 2 ** (0.9 / 12), np.nan, a, a * 2, a * 4, np.nan, a])
    # a pitch that moves at most a semitone to a neighbour counts; jumps of an octave and lone
    # frames do not
    assert pitched_frames(f0).tolist() == [True, True, False, False, False, False, False, False]

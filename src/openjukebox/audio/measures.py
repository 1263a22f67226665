"""Does it sound like music? Four audio measures of a clip, with librosa.

- ``noise_likeness``: spectral flatness (geometric over arithmetic mean of the power spectrum) in
  100 Hz-3 kHz, averaged over frames: white noise about 0.56, a held note near 0.
- ``harmonic_share``: the share of spectral energy that harmonic/percussive separation (HPSS)
  assigns to the harmonic part: sustained partials score high, noise and clicks low.
- ``pitched_frames``: the share of frames that pYIN marks voiced (C2-C7) with a pitch within a
  semitone of a neighbouring frame's: a held or gliding pitch, not one that jumps at random.
- ``stable_notes``: the share of frames inside a note: a pitched run that stays within half a
  semitone of its start for at least ``min_note_s`` (100 ms).

The measures need ``pip install 'openjukebox[eval]'``; the rest of the package never imports them.
"""

from __future__ import annotations

import numpy as np

N_FFT, HOP = 2048, 512
FMIN, FMAX = 65.41, 2093.0  # C2 to C7, librosa's pYIN defaults


def _librosa():
    try:
        import librosa
    except ImportError:
        raise ImportError("the audio measures need librosa: pip install 'openjukebox[eval]'") from None
    return librosa


def magnitude(audio: np.ndarray) -> np.ndarray:
    """|STFT| (bins, frames) of a (T,) clip, the spectrum the spectral measures share."""
    return np.abs(_librosa().stft(audio, n_fft=N_FFT, hop_length=HOP))


def noise_likeness(mag: np.ndarray, sample_rate: int, band: tuple[float, float] = (100.0, 3000.0)) -> float:
    """Mean spectral flatness of the power spectrum ``mag**2`` in ``band`` (Hz); silent frames skipped."""
    freqs = np.fft.rfftfreq(N_FFT, 1 / sample_rate)
    band_power = mag[(freqs >= band[0]) & (freqs <= band[1])] ** 2
    loud = band_power.mean(axis=0) > 1e-10
    if not loud.any():
        return float("nan")
    p = band_power[:, loud] + 1e-20
    return float(np.mean(np.exp(np.log(p).mean(axis=0)) / p.mean(axis=0)))


def harmonic_share(mag: np.ndarray) -> float:
    """Energy share of the harmonic part after HPSS of the magnitude spectrum ``mag`` (0..1)."""
    harmonic, percussive = _librosa().decompose.hpss(mag)
    h, p = float((harmonic**2).sum()), float((percussive**2).sum())
    return h / (h + p) if h + p > 0 else float("nan")


def pitch_track(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """pYIN fundamental frequency per frame (Hz), NaN where its voicing decision says unpitched.

    pYIN follows one voice: on polyphonic music its voicing probability stays low (median 0.01-0.04
    on rendered chorales), so its Viterbi voicing decision is used. That decision also marks some
    frames of white noise voiced, at pitches that jump from frame to frame: ``pitched_frames`` and
    ``stable_note_frames`` keep only pitches that hold."""
    f0, voiced, _ = _librosa().pyin(
        audio, fmin=FMIN, fmax=FMAX, sr=sample_rate, frame_length=N_FFT, hop_length=HOP, center=True
    )
    return np.where(voiced, f0, np.nan)


def pitched_frames(f0: np.ndarray) -> np.ndarray:
    """Boolean (frames,): pitched, and within a semitone of the previous or the next frame's pitch."""
    midi = 12 * np.log2(f0 / 440.0)
    close = np.abs(np.diff(midi)) <= 1.0  # NaN compares False
    held = np.zeros(len(f0), dtype=bool)
    held[1:] |= close
    held[:-1] |= close
    return held


def stable_note_frames(f0: np.ndarray, frame_s: float, min_note_s: float = 0.1) -> np.ndarray:
    """Boolean (frames,): inside a run of pitched frames within half a semitone of the run's first
    frame, lasting at least ``min_note_s``."""
    midi = 69 + 12 * np.log2(np.where(np.isfinite(f0), f0, np.nan) / 440.0)
    stable = np.zeros(len(f0), dtype=bool)
    min_len = max(1, int(round(min_note_s / frame_s)))
    start = 0
    while start < len(midi):
        if not np.isfinite(midi[start]):
            start += 1
            continue
        end = start + 1
        while end < len(midi) and np.isfinite(midi[end]) and abs(midi[end] - midi[start]) <= 0.5:
            end += 1
        if end - start >= min_len:
            stable[start:end] = True
        start = end
    return stable


def clip_measures(audio: np.ndarray, sample_rate: int) -> dict[str, float]:
    """All four measures of one mono (T,) clip."""
    audio = np.asarray(audio, dtype=np.float32)
    f0, mag = pitch_track(audio, sample_rate), magnitude(audio)
    return {
        "noise_likeness": noise_likeness(mag, sample_rate),
        "harmonic_share": harmonic_share(mag),
        "pitched_frames": float(pitched_frames(f0).mean()),
        "stable_notes": float(stable_note_frames(f0, HOP / sample_rate).mean()),
    }


def mean_measures(clips: list[np.ndarray], sample_rate: int) -> dict[str, float]:
    """Each measure averaged over clips (NaN-skipping), plus the number of clips."""
    rows = [clip_measures(c, sample_rate) for c in clips]
    out = {k: round(float(np.nanmean([r[k] for r in rows])), 4) for k in rows[0]} if rows else {}
    return out | {"clips": len(rows)}

import numpy as np
import pytest
import soundfile as sf

from openjukebox.audio.io import AudioError, load_audio, save_audio

SR = 22050


def _tone(freq=440.0, seconds=1.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


@pytest.mark.parametrize(
    "ext,fmt,subtype,sr",
    [
        ("wav", "WAV", "PCM_16", SR),
        ("flac", "FLAC", "PCM_16", SR),
        ("ogg", "OGG", "VORBIS", SR),
        ("opus", "OGG", "OPUS", 48000),
        ("mp3", "MP3", "MPEG_LAYER_III", 44100),
    ],
)
def test_reads_every_supported_format(tmp_path, ext, fmt, subtype, sr):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, _tone(440.0, 1.0, sr), sr, format=fmt, subtype=subtype)
    audio = load_audio(path, SR)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - SR) < 0.05 * SR  # lossy codecs add a little padding
    assert _peak_hz(audio, SR) == pytest.approx(440.0, abs=3.0)
    assert 0.3 < np.abs(audio).max() < 0.7


def test_stereo_is_mixed_to_mono_and_resampled(tmp_path):
    left, right = _tone(440, 1, 44100), _tone(1000, 1, 44100) * 0.5
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], 1), 44100, subtype="FLOAT")
    same_rate = load_audio(path, 44100)
    np.testing.assert_allclose(same_rate, (left + right) / 2, atol=1e-6)
    resampled = load_audio(path, 22050)
    assert len(resampled) == 22050
    spec = np.abs(np.fft.rfft(resampled))
    assert spec[440] > 10 * spec[700] and spec[1000] > 10 * spec[700]


def _expect_error(path, reason, **kw):
    with pytest.raises(AudioError, match=reason) as info:
        load_audio(path, SR, **kw)
    assert str(path) in str(info.value)


def test_clear_errors_for_unusable_files(tmp_path):
    _expect_error(tmp_path / "missing.wav", "no such file")
    (tmp_path / "empty.wav").write_bytes(b"")
    _expect_error(tmp_path / "empty.wav", "empty")
    (tmp_path / "corrupt.flac").write_bytes(np.random.default_rng(0).bytes(5000))
    _expect_error(tmp_path / "corrupt.flac", "not a readable audio file")
    (tmp_path / "notes.mp3").write_text("this is a text file, not an mp3\n" * 50)
    _expect_error(tmp_path / "notes.mp3", "not a readable audio file.*supported formats")
    sf.write(tmp_path / "zero.wav", np.zeros((0,), np.float32), SR)
    _expect_error(tmp_path / "zero.wav", "no audio samples")
    sf.write(tmp_path / "short.wav", _tone(seconds=0.1), SR)
    _expect_error(tmp_path / "short.wav", r"too short: 0.10 s, need at least 1.00 s", min_seconds=1.0)
    sf.write(tmp_path / "silent.wav", np.zeros(SR, np.float32), SR)
    _expect_error(tmp_path / "silent.wav", "silent")
    assert load_audio(tmp_path / "silent.wav", SR, allow_silent=True).shape == (SR,)


def test_save_round_trips_and_is_atomic(tmp_path):
    x = _tone()
    for name in ("out.wav", "out.flac"):
        save_audio(tmp_path / name, x, SR)
        np.testing.assert_allclose(load_audio(tmp_path / name, SR), x, atol=1 / 32767 + 1e-6)
    save_audio(tmp_path / "loud.wav", x * 4, SR)
    assert np.abs(load_audio(tmp_path / "loud.wav", SR)).max() <= 1.0
    with pytest.raises(ValueError, match=r"out.xyz: give a file name ending in .wav, .flac"):
        save_audio(tmp_path / "out.xyz", x, SR)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loud.wav", "out.flac", "out.wav"]

"""benchmarks/kept_clips_audio.py: the spectral measures of the clips eval_model.py kept."""

import json

import numpy as np
import pytest
import soundfile as sf

from .scripts import load_benchmark

SR = 22050


@pytest.fixture(scope="module")
def kept():
    pytest.importorskip("librosa")
    return load_benchmark("kept_clips_audio")


def _request(folder, clips: list[np.ndarray]) -> None:
    (folder / "level_0").mkdir(parents=True)
    files = []
    for i, clip in enumerate(clips):
        sf.write(folder / "level_0" / f"sample_{i}.wav", clip, SR)
        files.append(f"level_0/sample_{i}.wav")
    (folder / "clips.json").write_text(json.dumps({"settings": {}, "files": {"0": files}}))


def test_a_tone_is_less_noise_like_and_more_harmonic_than_noise(kept, tmp_path):
    t = np.arange(SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    _request(tmp_path / "tones" / "guidance_default" / "request_00", [tone, tone])
    _request(tmp_path / "noise" / "guidance_default" / "request_00", [noise])
    files = kept.kept_files(tmp_path / "tones", "default", 0)
    assert [f.name for f in files] == ["sample_0.wav", "sample_1.wav"]
    tones, noisy = (kept.spectral_measures(kept.kept_files(tmp_path / d, "default", 0)) for d in ("tones", "noise"))
    assert tones["clips"] == 2 and noisy["clips"] == 1
    assert tones["noise_likeness"] < 0.05 < 0.3 < noisy["noise_likeness"]
    assert tones["harmonic_share"] > 0.9 > noisy["harmonic_share"]
    with pytest.raises(SystemExit, match="no kept clips there"):
        kept.spectral_measures(kept.kept_files(tmp_path / "tones", "3,1,1", 0))

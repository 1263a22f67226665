"""benchmarks/generated_clips.py: a folder of generated clips is read back only for the settings it
was sampled with."""

import json

import pytest

from .scripts import load_benchmark


@pytest.fixture(scope="module")
def clips():
    return load_benchmark("generated_clips")


def _kept(folder, settings: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "level_0").mkdir()
    (folder / "clips.json").write_text(json.dumps({"settings": settings, "files": {"0": ["level_0/sample_0.wav"]}}))


def test_a_folder_from_before_the_temperature_was_kept_was_sampled_at_0_99(clips, tmp_path):
    old = {"bundle": "b", "seconds": 4.0, "clips": 1, "guidance": None, "artist": "A", "genre": "G", "seed": 500}
    _kept(tmp_path / "old", old)
    files = clips.sampled_clips(tmp_path, tmp_path / "old", old | {"temperature": 0.99})
    assert files == {0: [tmp_path / "old" / "level_0" / "sample_0.wav"]}
    with pytest.raises(SystemExit, match="holds clips of other settings"):
        clips.sampled_clips(tmp_path, tmp_path / "old", old | {"temperature": [0.99, 0.9, 0.9]})
    _kept(tmp_path / "cool", old | {"temperature": [0.99, 0.9, 0.9]})
    with pytest.raises(SystemExit, match="holds clips of other settings"):
        clips.sampled_clips(tmp_path, tmp_path / "cool", old | {"temperature": 0.99})

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openjukebox.cli.main import main
from openjukebox.data.debian_music import build_debian_music

INSTALLED = any(Path("/usr/share/games").glob("wesnoth*/*/data/core/music/*.ogg"))


def test_builds_from_tags_and_album_files(tmp_path):
    """A miniature of both packages' layouts: tags for Wesnoth, album.json for Warzone 2100."""
    wes = tmp_path / "wesnoth-1.16" / "1.16" / "data" / "core" / "music"
    wes.mkdir(parents=True)
    with sf.SoundFile(wes / "knolls.ogg", "w", 22050, 1, format="OGG", subtype="VORBIS") as f:
        f.artist, f.title, f.genre = "Timothy Pinkham", "The Knolls of Doldesh", "Romantic Classical"
        f.write(np.sin(np.arange(22050) / 10).astype(np.float32) * 0.3)
    album = tmp_path / "warzone2100" / "music" / "albums" / "ost"
    album.mkdir(parents=True)
    sf.write(album / "track1.wav", np.zeros(44100, np.float32) + 0.1, 44100)
    (album / "album.json").write_text(
        json.dumps(
            {
                "title": "Warzone 2100 OST",
                "author": "Martin Severn",
                "tracks": [{"filename": "track1.wav", "title": "Track 1"}, {"filename": "missing.opus"}],
            }
        )
    )
    out = tmp_path / "m.jsonl"
    assert main(["data", "debian-music", "--root", str(tmp_path), "--out", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(e["artist"], e["genre"], e["title"]) for e in lines] == [
        ("Timothy Pinkham", "Romantic Classical", "The Knolls of Doldesh"),
        ("Martin Severn", "game soundtrack", "Track 1"),
    ]
    assert lines[0]["duration"] == pytest.approx(1.0, abs=0.01) and lines[1]["duration"] == pytest.approx(1.0)


def test_absent_packages_are_a_clear_error(tmp_path, capsys):
    assert main(["data", "debian-music", "--root", str(tmp_path), "--out", str(tmp_path / "m.jsonl")]) == 2
    assert "install it offline with: apt-get install wesnoth-1.16-music warzone2100-music" in capsys.readouterr().err


@pytest.mark.skipif(not INSTALLED, reason="wesnoth-1.16-music is not installed (apt-get install wesnoth-1.16-music)")
def test_one_real_installed_track(tmp_path):
    (entry,) = build_debian_music(tmp_path / "m.jsonl", limit=1)
    assert Path(entry["path"]).is_file() and entry["artist"] != "unknown" and entry["duration"] > 10

"""A manifest of real recordings from Debian's free game-music packages, installed offline with apt.

    apt-get install wesnoth-1.16-music warzone2100-music

Wesnoth's Ogg Vorbis files carry their composer, title, genre and licence as tags; Warzone 2100's
albums list each track's author in ``album.json``. Each manifest line:
``{"path", "artist", "genre", "title", "album", "license", "duration", "source"}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import soundfile as sf

from ..fileio import atomic_path

DEFAULT_ROOT = Path("/usr/share/games")
INSTALL_HINT = "apt-get install wesnoth-1.16-music warzone2100-music"


def _wesnoth(root: Path) -> list[dict]:
    entries = []
    for path in sorted(root.glob("wesnoth*/*/data/core/music/*.ogg")):
        with sf.SoundFile(path) as f:
            tags, duration = f.copy_metadata(), f.frames / f.samplerate
        entries.append(
            {
                "path": str(path),
                "artist": tags.get("artist", "unknown"),
                "genre": tags.get("genre", "game soundtrack"),
                "title": tags.get("title", path.stem),
                "album": tags.get("album", "The Battle for Wesnoth"),
                "license": tags.get("license", "GPL-2+"),
                "duration": round(duration, 3),
                "source": "wesnoth-music",
            }
        )
    return entries


def _warzone(root: Path) -> list[dict]:
    entries = []
    for album_file in sorted(root.glob("warzone2100/music/albums/*/album.json")):
        album = json.loads(album_file.read_text())
        licence = album_file.parent / "license.txt"
        for track in album.get("tracks", []):
            path = album_file.parent / track["filename"]
            if not path.is_file():
                continue
            entries.append(
                {
                    "path": str(path),
                    "artist": track.get("author") or album.get("author", "unknown"),
                    "genre": "game soundtrack",
                    "title": track.get("title", path.stem),
                    "album": album.get("title", ""),
                    "license": str(licence) if licence.exists() else "GPL-2+",
                    "duration": round(sf.info(str(path)).duration, 3),
                    "source": "warzone2100-music",
                }
            )
    return entries


def build_debian_music(
    out: str | os.PathLike, root: str | os.PathLike = DEFAULT_ROOT, limit: int | None = None
) -> list[dict]:
    """Write the manifest of every installed game-music track under ``root`` (at most ``limit``)."""
    root = Path(root)
    entries = _wesnoth(root) + _warzone(root)
    if not entries:
        raise ValueError(f"no game music found under {root}; install it offline with: {INSTALL_HINT}")
    entries = entries[:limit] if limit else entries
    with atomic_path(out) as tmp:
        Path(tmp).write_text("".join(json.dumps(e) + "\n" for e in entries))
    return entries

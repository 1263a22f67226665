"""Which timed songs a lyric alignment is measured on (benchmarks/eval_model.py), and the hymn-text
rule that keeps a test song out of the training data (recipes/music_model.sh, stage sung).
Standard library only, so that the recipe can use it without the eval extras."""

from __future__ import annotations


def sung_text(entry: dict) -> str:
    """The first 40 letters of a timed song's lyrics, lower case: songs that share it sing the same
    hymn (often to the same melody) even when they are different pieces."""
    return "".join(c for c in "".join(s["text"] for s in entry["lyrics"]).lower() if c.isalpha())[:40]


def lyric_songs(
    entries: dict[str, dict], held: list[str], extra_songs: list[dict], max_training: int = 30
) -> tuple[list, list, int]:
    """The songs with timed lyrics the alignment is measured on: (held-out songs, training songs,
    how many of ``extra_songs`` were left out), songs as (path, entry).

    ``entries`` is the manifest the prior trained on, ``held`` its validation files: the held-out
    songs are those, then ``extra_songs``, each kept when its piece and hymn text (``sung_text``)
    are those of no trained file. The training songs (to choose the alignment's spread on) are
    every k-th trained song in path order, k the smallest step that keeps at most ``max_training``.
    """
    held_set = set(held)
    timed = lambda e: isinstance(e.get("lyrics"), list)  # noqa: E731
    trained = [e for path, e in entries.items() if path not in held_set]
    pieces = {e.get("piece") for e in trained} - {None}
    texts = {sung_text(e) for e in trained if timed(e)}
    was_trained = lambda e: e.get("piece") in pieces or (timed(e) and sung_text(e) in texts)  # noqa: E731
    songs = [(path, entries[path]) for path in held if path in entries and not was_trained(entries[path])]
    songs += [(e["path"], e) for e in extra_songs if not was_trained(e)]
    songs = [(path, e) for path, e in songs if timed(e)]
    training = sorted((path, e) for path, e in entries.items() if path not in held_set and timed(e))
    training = training[:: -(-len(training) // max_training)] if training else []
    return songs, training, sum(map(was_trained, extra_songs))

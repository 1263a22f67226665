"""Models that ship inside the package: ``default`` is what ``openjukebox sample`` uses without --model.

The default bundle is small (about 11 MB) and trained offline by ``recipes/music_model.sh`` on data
the project builds itself and on Debian's game music; its model card (``default/MODEL_CARD.md``) gives the data, their
licences, the training time and the measured quality.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = Path(__file__).parent / "default"


def default_model() -> Path:
    """The shipped bundle; an error that says how to get a model when it is missing."""
    if not (DEFAULT_MODEL / "prior_level_2" / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"the default model is missing from {DEFAULT_MODEL} (a source checkout without it?); "
            "build it with `bash recipes/music_model.sh` (then its ship stage), "
            "or pass --model with a bundle of your own"
        )
    return DEFAULT_MODEL

"""A benchmark's JSON report: printed, and written atomically where ``--out`` asks."""

from __future__ import annotations

import json
from pathlib import Path

from openjukebox.fileio import atomic_path


def emit(report: dict, out: Path | None, show: bool = True) -> None:
    """Print ``report`` as JSON (unless ``show`` is false) and write it to ``out`` when given."""
    text = json.dumps(report, indent=1)
    if show:
        print(text)
    if out:
        with atomic_path(out) as tmp:
            Path(tmp).write_text(text)

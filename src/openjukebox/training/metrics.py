"""Metrics logged as CSV: one row per logged step, one column per metric."""

from __future__ import annotations

import csv
import os
from pathlib import Path


class CSVLog:
    """Append rows ``{"step": s, metric: value, ...}`` to a CSV file.

    On resume, rows logged after the checkpoint (steps > resume_step) are dropped first, so a resumed run's log
    reads as if it had never stopped.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None):
        self.path = Path(path)
        self.fields: list[str] | None = None
        if self.path.exists() and resume_step is not None:
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.fields = reader.fieldnames
                rows = [r for r in reader if int(r["step"]) <= resume_step]
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, self.fields)
                writer.writeheader()
                writer.writerows(rows)
        elif self.path.exists():
            self.path.unlink()

    def write(self, row: dict) -> None:
        row = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


def read_csv(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a metrics CSV as floats (for tests, plots and reports)."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]

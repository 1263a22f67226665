"""benchmarks/reports.py: a benchmark's report, printed and written where --out asks."""

import json

from .scripts import load_benchmark


def test_the_report_is_printed_and_written_as_the_same_json(tmp_path, capsys):
    reports = load_benchmark("reports")
    reports.emit({"clips": 3, "noise_likeness": 0.25}, tmp_path / "r.json")
    printed = capsys.readouterr().out
    assert json.loads(printed) == {"clips": 3, "noise_likeness": 0.25}
    assert (tmp_path / "r.json").read_text() == printed.rstrip("\n")
    reports.emit({"a": 1}, None, show=False)  # neither printed nor written
    assert capsys.readouterr().out == "" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]

import os

import pytest

from openjukebox.fileio import atomic_path


def test_atomic_writes_get_ordinary_permissions_and_a_crash_keeps_the_old_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    target = tmp_path / "model.json"
    with atomic_path(target) as tmp, open(tmp, "w") as f:
        f.write("first")
    assert target.read_text() == "first"
    assert oct(target.stat().st_mode & 0o777) == oct(plain.stat().st_mode & 0o777)  # not mkstemp's 0600
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            f.write("partial")
        raise RuntimeError("crash")
    assert target.read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["model.json", "plain.txt"]

"""Small file helpers shared by every package: atomic writes and content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    A crash or exception leaves the old file (if any) untouched and removes the partial one; what
    a killed process left (``.NAME.PID.*.tmp`` of a process that is gone) is removed here. The file
    gets the usual permissions (0666 less the umask), so others can read shared models, whatever
    mode the writer gave it (safetensors writes 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # the mode an ordinary open() gives, not mkstemp's private 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None, recursive: bool = False) -> list[Path]:
    """Remove the partial files that killed writers left in ``folder`` (for the file ``name``, or all).

    A temporary of a process that is still running (another writer) is kept. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{name}.*{TMP_SUFFIX}" if name else f".*{TMP_SUFFIX}"
    removed = []
    for tmp in folder.rglob(pattern) if recursive else folder.glob(pattern):
        parts = tmp.name.split(".")  # ['', *name, pid, random, 'tmp']; older writers had no pid
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        if pid is not None and (pid == os.getpid() or _alive(pid)):
            continue  # a writer at work: ours or another process's
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """A UTF-8 text file's contents; a folder, a missing file or binary bytes are a UserError that
    names the file and says what to do (``what``: "lyrics file", "manifest", ...)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the path of a {what}")
    if not path.is_file():
        raise UserError(f"{path}: no such {what}; check the path")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path}: this {what} is not UTF-8 text (byte 0x{data[e.start]:02x} at position {e.start}); "
            "save it as plain UTF-8 text"
        ) from None
    if "\x00" in text:
        raise UserError(f"{path}: this {what} holds binary data (NUL bytes), not text; give a plain text file")
    return text


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """Where decoded audio and codes are cached: $OPENJUKEBOX_CACHE, else $XDG_CACHE_HOME/openjukebox,
    else ~/.cache/openjukebox."""
    if os.environ.get("OPENJUKEBOX_CACHE"):
        return Path(os.environ["OPENJUKEBOX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "openjukebox"

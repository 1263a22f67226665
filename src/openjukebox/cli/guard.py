"""What the command line does around every command: one-line errors, and no empty folders left behind.

``describe`` turns an error a user can fix (the project's ``UserError`` and other ``ValueError``s,
an ``OSError`` on one of their paths) into one line that says what was wrong and what to do.
``OutputGuard`` remembers which output folders a command is about to create and removes those
that are still empty when it fails, so a refused command leaves the disk as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from pathlib import Path

_OS_HINTS = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the disk is read-only: choose another path",
    errno.ENOSPC: "the disk is full: free some space or choose another path",
    errno.EDQUOT: "the disk quota is used up: free some space or choose another path",
    errno.EISDIR: "it is a folder: give a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "check the path",
    errno.EEXIST: "it is in the way: remove it or choose another path",
}


def describe(error: BaseException) -> str:
    """One line for the user: what was wrong and what to do."""
    if isinstance(error, OSError) and error.strerror:
        where = error.filename if error.filename is not None else ""
        hint = _OS_HINTS.get(error.errno or 0, "check the path")
        text = f"{where}: {error.strerror.lower()}; {hint}" if where else f"{error.strerror.lower()}; {hint}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())  # one line, whatever the message held


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line each (``openjukebox: warning: ...``), without the source line."""
    import sys

    print(f"openjukebox: warning: {' '.join(str(message).split())}", file=file or sys.stderr)


@contextlib.contextmanager
def one_line_warnings():
    """Show warnings as single lines while a command runs."""
    saved = warnings.showwarning
    warnings.showwarning = show_warning
    try:
        yield
    finally:
        warnings.showwarning = saved


class OutputGuard:
    """Removes the output folders (and parents) a failed command created, when they are still empty.

    ``folders``: the folders the command writes into (for an output file: its folder).
    """

    def __init__(self, folders: list[str | os.PathLike]):
        self.new: list[Path] = []
        for folder in folders:
            path = Path(folder).absolute()
            while not path.exists() and path.parent != path:
                self.new.append(path)
                path = path.parent

    def __enter__(self) -> OutputGuard:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            return
        for path in sorted(set(self.new), key=lambda p: len(p.parts), reverse=True):  # deepest first
            with contextlib.suppress(OSError):
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()

"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Write to a hidden temporary file in the same directory, flush it to disk, then rename it
over the target (``os.replace`` is atomic on POSIX). A process killed mid-write leaves at
most a hidden ``.*.tmp`` file, which readers ignore.

``mkstemp`` makes its file private (0600), which is right while it is being written but not
for the result: before the rename the file gets the mode ``open()`` would have given it (the
old file's mode, or 0666 less the umask), so others on a shared machine can read a dataset
or a checkpoint when the user's umask says they may. ``public_mode`` does the same for files
and directories written by other means (safetensors writes 0600, ``mkdtemp`` makes 0700).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[IO[bytes]]:
    """Open a temporary file for binary writing; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), _mode_open_gives(path))
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_path(path.parent)


def atomic_write_bytes(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(handle)`` on a temporary file and rename it to ``path``."""
    with atomic_open(path) as handle:
        write(handle)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8, atomically."""
    with atomic_open(path) as handle:
        handle.write(text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def public_mode(path: str | Path) -> None:
    """Give a file or directory the mode ``open()`` or ``mkdir()`` would under the umask.

    For paths made private by their writer (``safetensors.save_file`` writes 0600,
    ``tempfile.mkdtemp`` makes 0700); call it before the path is renamed into place.
    """
    path = Path(path)
    base = 0o777 if path.is_dir() else 0o666
    os.chmod(path, base & ~current_umask())


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    # os.umask can only be read by setting it, which races with other threads creating
    # files (the annotation web server writes from its own thread); Linux shows it in /proc.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_open_gives(path: Path) -> int:
    # open(path, "w") keeps an existing file's mode and makes a new one 0666 less the umask.
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def fsync_path(path: Path) -> None:
    """fsync a file or directory by path, where the file system allows it (a directory's
    makes a rename in it durable)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

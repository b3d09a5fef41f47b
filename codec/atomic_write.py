"""Writing a file so that it appears whole or not at all: every output of mcodec (decoded media, coded
files, model files, training checkpoints, reports) goes through here.

The data goes to a temporary file beside the target, which is renamed onto it only when complete: a
failed or interrupted write leaves the old file (or none), never a partial one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .base import CodecError


class OutputError(CodecError):
    """An output cannot be written (exists without --force, a directory, no permission, disk full)."""


def check_output(path: Path, force: bool = False, make_parents: bool = False) -> None:
    """Raises OutputError where ``path`` could not be written: an existing file without ``force``, a
    directory, a folder that is missing (unless ``make_parents``), not a folder or not writable. Called
    before long work (a video's fit) as well as at the write, so that a typo in the output's folder is
    said at once rather than after the work."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputError(f"{path} exists (use --force to overwrite)")
    if path.is_dir():
        raise OutputError(f"{path} is a directory")
    folder = path.parent
    while make_parents and not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the nearest existing folder is the one that must take the new ones
    if not folder.exists():
        raise OutputError(f"cannot write {path}: no such folder {folder}")
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: permission denied")


@contextmanager
def atomic_output(path: Path, force: bool = False, make_parents: bool = False) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it onto ``path`` only if the block succeeds.
    Refuses an existing output unless ``force``; ``make_parents`` creates missing folders first."""
    path = Path(path)
    check_output(path, force, make_parents)
    folder = path.parent
    try:
        if make_parents:
            folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes 0600 (and some writers recreate the file): outputs get the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> None:
    with atomic_output(path, force) as tmp:
        tmp.write_bytes(data)

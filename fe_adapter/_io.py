"""Files: atomic writes (a run killed mid-write leaves the previous file intact), made with the user's umask like
any other file, and the checks a command makes before any work: its inputs exist, its outputs can be written."""

from __future__ import annotations

import os
import re
import secrets
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


class OutputNotWritable(OSError):
    """An output location that cannot be written: a read-only file system, a folder without write permission, or
    a path that runs through a file. The message names the location and why, in one line."""


#: In the name of a file ``atomic_write`` is writing: ``.<stem>.<8 hex digits>.tmp<suffix>``.
TEMPORARY_MARK = ".tmp"
_TEMPORARY_NAME = re.compile(r"^\..*\.[0-9a-f]{8}\.tmp(\.[^.]*)?$")


def is_interrupted_write(name: str) -> bool:
    """Whether ``name`` is a temporary file that ``atomic_write`` left behind (only when killed)."""
    return _TEMPORARY_NAME.match(name) is not None


def _temporary_beside(path: Path) -> tuple[str, int]:
    """Create an empty temporary file next to ``path``; return its name and mode.

    Not ``tempfile.mkstemp``: it creates files readable by their owner only (0600), whatever the umask, so that
    outputs renamed from it (checkpoints, predictions, ``last.pt``) could not be read by the other users of a
    shared machine. ``os.open`` with mode 0666 lets the umask (and a folder's default ACL) decide, as for any
    other file the user creates.
    """
    while True:
        # The suffix stays last: readers that check it (torch.export.load wants ".pt2") accept the file.
        temporary = path.parent / f".{path.stem}.{secrets.token_hex(4)}{TEMPORARY_MARK}{path.suffix}"
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            return str(temporary), stat.S_IMODE(os.fstat(handle).st_mode)
        finally:
            os.close(handle)


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)``, flush it to disk, then rename it over ``path`` in one step. The file gets
    the mode any file the user creates gets (umask, default ACL)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary, mode = _temporary_beside(path)
    try:
        write(temporary)
        if stat.S_IMODE(os.stat(temporary).st_mode) != mode:
            # The writer replaced the file: safetensors >= 0.8 writes through its own 0600 temporary file
            # (safetensors/safetensors#782).
            os.chmod(temporary, mode)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def require_file(path: str | Path, what: str) -> Path:
    """``path`` if it is a file; else FileNotFoundError "``what`` not found: path" (a folder is named as one)."""
    path = Path(path)
    if not path.is_file():
        found = " (it is a folder)" if path.is_dir() else ""
        raise FileNotFoundError(f"{what} not found: {path}{found}")
    return path


def check_writable(folder: str | Path, what: str) -> None:
    """Raise OutputNotWritable (naming ``what``, e.g. "--out predictions", and why) unless files can be created
    in ``folder``, or, where it does not exist yet, in the folder that would hold it. Nothing is left behind.

    The test is the real one, a file created and removed: permission bits say nothing for root, and only a write
    finds a read-only mount or an immutable folder.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputNotWritable(f"{what}: cannot write there: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".fe-adapter-write-check."):
            pass
    except OSError as error:
        raise OutputNotWritable(f"{what}: cannot create files in {existing}: {error.strerror or error}") from None

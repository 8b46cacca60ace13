"""File and folder writes: a result is either complete on disk or absent, and nothing else is replaced.

Every output path goes through one policy (``output_kind``): a regular file (or a new path) is
written atomically beside itself; a symlink is written *through* (its target is replaced, never
the link); a FIFO or a character device (``/dev/null``, ``/dev/stdout``) is written in place; ``-``
is standard output. Temporary siblings carry ``.tlrl-<pid>-`` in their name, so a later run removes
the ones whose process is gone. A full disk is ``no space left on device: PATH``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from tlrl.errors import TlrlError

if TYPE_CHECKING:
    import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)
STDOUT = "-"
TEMP_MARK = ".tlrl-"  # in the name of every temporary sibling and lock file this tool makes
_TEMP_PID = re.compile(r"\.tlrl-(\d+)-")
_FULL = (errno.ENOSPC, errno.EDQUOT)
TABLE_FORMATS = {".csv": "csv", ".gz": "csv.gz", ".parquet": "parquet", ".pq": "parquet"}


class DiskFull(TlrlError):
    """A write failed because the disk (or the user's quota) is full."""


def _cannot_write(path: Path, exc: OSError) -> TlrlError:
    if exc.errno in _FULL:
        return DiskFull(f"no space left on device: {path}")
    where = f" ({exc.filename})" if exc.filename else ""
    return TlrlError(f"cannot write {path}: {exc.strerror or exc.__class__.__name__}{where}")


def resolve(path: str | Path) -> Path:
    """``path`` with its symlinks followed; a symlink loop is a ``TlrlError``."""
    try:
        return Path(os.path.realpath(path, strict=False))
    except (RuntimeError, OSError):
        raise TlrlError(f"{path} is a symlink loop") from None


def _stat(path: Path) -> os.stat_result | None:
    """``os.stat`` following links; None when nothing is there; a loop is a ``TlrlError``."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TlrlError(f"{path} is a symlink loop") from None
        if exc.errno == errno.ENOTDIR:
            return None
        raise _cannot_write(path, exc) from None


def _writes_in_place(mode: int) -> bool:
    """FIFOs and character devices are written into, never replaced."""
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def output_kind(path: str | Path) -> Literal["stdout", "in_place", "file"]:
    """How a file output is written: to stdout (``-``), in place (FIFO, device), or atomically (a file)."""
    if str(path) == STDOUT:
        return "stdout"
    st = _stat(Path(path))
    if st is None:
        return "file"
    if _writes_in_place(st.st_mode):
        return "in_place"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        raise TlrlError(f"cannot write {path}: it is a directory")
    raise TlrlError(f"cannot write {path}: it is neither a file, a FIFO nor a character device")


def check_writable(path: str | Path, folder: bool = False) -> Path:
    """Fail now, before any work, when ``path`` cannot be written as a file (or, ``folder``, a folder).

    Probes the nearest existing ancestor with a temporary file, so a path under a file, a
    read-only or pseudo file system (``/proc``) and a wrong kind of existing entry all fail here.
    Symlinks are followed (the output is written through them); a FIFO or character device
    only needs to be writable.
    """
    if not folder and output_kind(path) != "file":
        if str(path) != STDOUT and not os.access(path, os.W_OK):
            raise TlrlError(f"cannot write {path}: permission denied")
        return Path(path)
    given, path = Path(path), resolve(path)
    st = _stat(path)
    if folder and st is not None and not stat.S_ISDIR(st.st_mode):
        raise TlrlError(f"cannot write {given}: it is a file, and the output is a folder")
    ancestor = path if folder and st is not None else path.parent
    while _stat(ancestor) is None and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise TlrlError(f"cannot write {given}: {ancestor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tlrl-probe-", dir=ancestor)
    except OSError as exc:
        raise TlrlError(f"cannot write {given}: {ancestor} takes no new files ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (resolved, or hard-linked)."""
    if STDOUT in (str(a), str(b)):
        return False
    if resolve(a) == resolve(b):
        return True
    return _stat(Path(a)) is not None and _stat(Path(b)) is not None and os.path.samefile(a, b)


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (symlinks followed)."""
    return str(path) != STDOUT and resolve(path).is_relative_to(resolve(folder))


def remove_stale_temporaries(folder: Path, name: str | None = None) -> None:
    """Remove this tool's temporary files in ``folder`` (those of the file ``name``, or all) whose process
    is gone (a kill, a crash)."""
    prefix = "." if name is None else f".{name}."
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            found = _TEMP_PID.search(entry.name)
            if not entry.name.startswith(prefix) or not found or _alive(int(found[1])):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temp_prefix(path: Path) -> str:
    return f".{path.name}{TEMP_MARK}{os.getpid()}-"


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; on success its content becomes ``path`` (see ``output_kind``).

    A file is replaced by a rename (through a symlink: its target); a FIFO or device is written
    in place; ``-`` goes to stdout. A path that cannot be written is a ``TlrlError``.
    """
    kind = output_kind(path)
    if kind != "file":
        with _copied_out(path, kind) as tmp:
            yield tmp
        return
    given, path = Path(path), resolve(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, path.name)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise _cannot_write(given, exc) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as exc:
        raise _cannot_write(given, exc) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def _copied_out(path: str | Path, kind: str) -> Iterator[Path]:
    """Write to a private temporary file, then copy it into stdout or the FIFO/device ``path``."""
    folder = Path(tempfile.mkdtemp(prefix="tlrl-out-"))
    tmp = folder / (Path(str(path)).name or "out")
    try:
        yield tmp
        with tmp.open("rb") as src:
            if kind == "stdout":
                sys.stdout.flush()
                shutil.copyfileobj(src, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                with open(path, "wb") as dst:  # opens the FIFO/device itself, never replaces it
                    shutil.copyfileobj(src, dst)
    except OSError as exc:
        raise _cannot_write(Path(str(path)), exc) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    Nothing of an earlier folder at ``path`` survives (no stale files mix in), and a failure or
    an interrupt leaves ``path`` as it was and no temporary folder behind. A symlink is written
    through. A folder that cannot be renamed (EBUSY: a mount point, the working folder of
    another process) has its content swapped instead. On a full disk the files written so far
    are kept in a folder the error names.
    """
    given, path = Path(path), resolve(path)
    if path.exists() and not path.is_dir():
        raise TlrlError(f"cannot write {given}: it is a file, and the output is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, path.name)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), dir=path.parent))
    except OSError as exc:
        raise _cannot_write(given, exc) from None
    old = tmp.with_name(tmp.name + ".old")
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        _replace_dir(tmp, path, old)
    except (DiskFull, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in _FULL:
            raise _cannot_write(given, exc) from None
        kept = tmp.with_name(f"{path.name}.incomplete-{os.getpid()}")
        with contextlib.suppress(OSError):
            os.replace(tmp, kept)
            raise DiskFull(f"no space left on device: {given}; what was written is kept in {kept}") from None
        raise DiskFull(f"no space left on device: {given}") from None
    finally:
        if old.exists() and not path.exists():  # interrupted between the two renames
            os.replace(old, path)
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def _replace_dir(tmp: Path, path: Path, old: Path) -> None:
    """Move ``tmp`` to ``path`` by renames; swap the contents instead when ``path`` cannot be renamed
    (EBUSY: a mount point) or is this process's working folder (``-o .``)."""
    if not path.exists():
        os.replace(tmp, path)
        return
    if not Path.cwd().is_relative_to(path):
        try:
            os.replace(path, old)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
        else:
            os.replace(tmp, path)
            return
    old.mkdir(exist_ok=True)
    for entry in list(path.iterdir()):
        if not (entry.name.startswith(".") and TEMP_MARK in entry.name):  # keep the lock and temporaries
            os.replace(entry, old / entry.name)
    for entry in list(tmp.iterdir()):
        os.replace(entry, path / entry.name)


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on the output ``path`` for a whole run; a second run fails at once."""
    given, path = Path(path), resolve(path)
    lock = path.parent / f".{path.name}{TEMP_MARK}lock"
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        except OSError as exc:
            raise _cannot_write(given, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TlrlError(f"{path} is being written by another tlrl run right now; wait for it to finish, "
                            "or choose another -o") from None
        if _stat(lock) is not None and os.stat(lock).st_ino == os.fstat(fd).st_ino:
            break
        os.close(fd)  # the file was removed by the run that held it: lock the new one
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def table_format(path: str | Path, default: str) -> str:
    """The table format an output path asks for by its extension: csv, csv.gz or parquet.

    Standard output and FIFOs/devices without an extension take ``default``; any other
    extension is a ``TlrlError``.
    """
    name = Path(str(path)).name.lower()
    suffix = ".gz" if name.endswith(".csv.gz") else Path(name).suffix
    if suffix in TABLE_FORMATS:
        return TABLE_FORMATS[suffix]
    if not suffix and output_kind(path) != "file":
        return default
    raise TlrlError(f"cannot tell the format of {path} from its extension: use .csv, .csv.gz or .parquet")


def write_table(path: str | Path, frame: pd.DataFrame, default: str = "csv") -> None:
    """Write ``frame`` without its index, in the format ``path``'s extension names, atomically."""
    fmt = table_format(path, default)
    with atomic_write(path) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, compression="gzip" if fmt == "csv.gz" else None)


def json_safe(obj: object) -> object:
    """``obj`` with numpy scalars made plain and non-finite floats made ``None`` (JSON ``null``)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` as CSV without its index, atomically."""
    with atomic_write(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_json(path: str | Path, obj: object) -> None:
    """Write ``obj`` as indented standard JSON, atomically; NaN and ±inf become ``null``."""
    text = json.dumps(json_safe(obj), indent=2, default=str, allow_nan=False)
    with atomic_write(path) as tmp:
        tmp.write_text(text + "\n")

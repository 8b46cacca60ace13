"""Atomic file and folder writes: a result is either complete on disk or absent."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tlrl.errors import TlrlError

if TYPE_CHECKING:
    import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)


def _cannot_write(path: Path, exc: OSError) -> TlrlError:
    where = f" ({exc.filename})" if exc.filename else ""
    return TlrlError(f"cannot write {path}: {exc.strerror or exc.__class__.__name__}{where}")


def check_writable(path: str | Path, folder: bool = False) -> Path:
    """Fail now, before any work, when ``path`` cannot be written as a file (or, ``folder``, a folder).

    Probes the nearest existing ancestor with a temporary file, so a path under a file, a
    read-only or pseudo file system (``/proc``) and a wrong kind of existing entry all fail here.
    """
    path = Path(path)
    if not folder and path.is_dir():
        raise TlrlError(f"cannot write {path}: it is a directory")
    if folder and path.exists() and not path.is_dir():
        raise TlrlError(f"cannot write {path}: it is a file, and the output is a folder")
    ancestor = path if folder and path.is_dir() else path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise TlrlError(f"cannot write {path}: {ancestor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tlrl-probe-", dir=ancestor)
    except OSError as exc:
        raise TlrlError(f"cannot write {path}: {ancestor} takes no new files ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (resolved, or hard-linked)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and os.path.samefile(a, b)


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success.

    A path that cannot be written (a directory, an unwritable folder) is a ``TlrlError``.
    """
    path = Path(path)
    if path.is_dir():
        raise TlrlError(f"cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    Nothing of an earlier folder at ``path`` survives (no stale files mix in), and a failure or
    an interrupt leaves ``path`` as it was and no temporary folder behind.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TlrlError(f"cannot write {path}: it is a file, and the output is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    old = tmp.with_name(tmp.name + ".old")
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        if old.exists() and not path.exists():  # interrupted between the two renames
            os.replace(old, path)
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


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

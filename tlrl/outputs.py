"""Which output folders a command may write: its own kind, never a folder with inputs or foreign files.

A folder's kind is read from what the tool itself wrote there: a ``tlrl fit`` run has
``metrics.json`` naming its method, a benchmark or curve folder ``provenance.json`` (a curve's
names the ``plan`` of its units), a source model a ``card.json`` with its training settings (or,
interrupted, only ``resume.pt``). ``--force`` replaces only a folder of the command's own kind;
anything else in it is refused.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal

from tlrl.errors import TlrlError
from tlrl.io import TEMP_MARK, inside, resolve

Kind = Literal["fit", "benchmark", "pretrain", "curve"]
NAMES = {"fit": "a 'tlrl fit' run", "benchmark": "a 'tlrl benchmark' results folder",
         "pretrain": "a 'tlrl pretrain' source model", "curve": "a 'tlrl curve' results folder"}
CHECKPOINT_FILES = {"card.json", "model.safetensors"}
FIT_FILES = {"metrics.json", "test_predictions.csv", "history.csv", "automl_trials.csv"}
BENCHMARK_FILES = {"provenance.json", "results.csv", "sweep.csv", "paired.json", "table2.md"}
TASKS = "tasks"  # a results folder's unfinished fits (tlrl.plan): tasks/<configuration or size/unit>/<fit>
# runs, unfinished fits, and the book's chapter records, retrained source and learning curve
BENCHMARK_DIRS = {"runs", TASKS, "chapters", "source_model", "curve"}
CURVE_FILES = {"provenance.json", "curve.csv", "summary.csv", "paired.csv"}
_CURVE_UNIT = re.compile(r"[a-z-]+_(s[0-9-]+|[0-9]+seeds-[0-9a-f]{12})\.csv")  # tlrl.curve._unit_path
SOURCE_FILES = CHECKPOINT_FILES | {"resume.pt"}
RECORDS = {"fit": "metrics.json", "benchmark": "provenance.json", "pretrain": "card.json", "curve": "curve.csv"}
_FOLD = re.compile(r"fold_\d+")


def _entries(folder: Path) -> list[Path]:
    """The folder's entries, without this tool's temporary and lock files."""
    return [p for p in folder.iterdir() if not (p.name.startswith(".") and TEMP_MARK in p.name)]


def _json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _is_plain_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _foreign_in_fit(folder: Path) -> list[str]:
    """Entries of a fit run folder that ``tlrl fit`` does not write."""
    foreign = []
    for p in _entries(folder):
        if _FOLD.fullmatch(p.name) and _is_plain_dir(p):
            foreign += [f"{p.name}/{q.name}" for q in _entries(p) if q.name not in CHECKPOINT_FILES or q.is_symlink()]
        elif p.name not in FIT_FILES or p.is_symlink() or p.is_dir():
            foreign.append(p.name)
    return foreign


def is_fit_run(folder: Path) -> bool:
    """Whether ``folder`` is a finished ``tlrl fit`` run holding only what fit writes."""
    metrics = _json(folder / "metrics.json")
    return bool(metrics and "method" in metrics and "paper_name" in metrics) and not _foreign_in_fit(folder)


def _foreign(folder: Path, kind: Kind) -> list[str]:
    """Entries of ``folder`` that a ``kind`` command does not write."""
    if kind == "fit":
        return _foreign_in_fit(folder)
    if kind == "pretrain":
        return [p.name for p in _entries(folder) if p.name not in SOURCE_FILES or not p.is_file() or p.is_symlink()]
    if kind == "curve":
        return _foreign_in_curve(folder)
    from tlrl.methods import METHODS

    own = [p for p in _entries(folder) if (p.name in BENCHMARK_FILES and not p.is_symlink())
           or (p.name in BENCHMARK_DIRS and _is_plain_dir(p))]
    foreign = [p.name for p in _entries(folder) if p not in own]
    if _is_plain_dir(folder / "runs"):
        foreign += [f"runs/{p.name}" for p in _entries(folder / "runs")
                    if p.name not in METHODS or not _is_plain_dir(p) or _foreign_in_fit(p)]
    return foreign


def _foreign_in_curve(folder: Path) -> list[str]:
    """Entries of a curve folder that ``tlrl curve`` does not write (``runs/<size>/<unit>.csv``)."""
    foreign = [p.name for p in _entries(folder) if not ((p.name in CURVE_FILES and p.is_file() and not p.is_symlink())
                                                         or (p.name in ("runs", TASKS) and _is_plain_dir(p)))]
    runs = folder / "runs"
    for size in _entries(runs) if _is_plain_dir(runs) else []:
        if not (size.name.isdigit() and _is_plain_dir(size)):
            foreign.append(f"runs/{size.name}")
            continue
        foreign += [f"runs/{size.name}/{p.name}" for p in _entries(size)
                    if not _CURVE_UNIT.fullmatch(p.name) or not p.is_file() or p.is_symlink()]
    return foreign


def kind_of(folder: Path) -> Kind | None:
    """The command that wrote ``folder``, by its own records; None when none did (or it is empty)."""
    record = _json(folder / "provenance.json")
    if record is not None:
        return "curve" if "plan" in record or (folder / "curve.csv").is_file() else "benchmark"
    if is_fit_run(folder):
        return "fit"
    card = _json(folder / "card.json")
    if (card is not None and "train_config" in card and "fold" not in card) or (
            card is None and (folder / "resume.pt").is_file()):
        return "pretrain"
    return None


def run_folder(out_dir: object, force: object) -> Path:
    """A results folder argument of the API as a Path, checked with ``force`` (a bool) before any work."""
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise TlrlError(f"out_dir must be a folder path (a str or pathlib.Path), got {out_dir!r}")
    if not isinstance(force, bool):
        raise TlrlError(f"force must be True or False, got {force!r}")
    return Path(out_dir)


def claim_folder(output: str | Path, kind: Kind, force: bool, inputs: list[str | Path | None] = ()) -> None:
    """Refuse, before any work, an output folder that a ``kind`` command must not write.

    Refused: a folder that is or holds one of ``inputs`` (the dataset, a source, a model); a
    folder another command wrote; a non-empty folder holding files this command did not write.
    A folder of the same kind passes with ``force`` (fit, pretrain: when finished) or always
    (benchmark and curve resume, an interrupted pretrain resumes).
    """
    out = resolve(output)
    for item in inputs:
        if item is not None and Path(str(item)).exists() and inside(item, out):
            raise TlrlError(f"the output folder {output} holds the input {item}, which replacing the folder would "
                            "delete; choose another -o")
    if not out.is_dir() or not _entries(out):
        return
    found = kind_of(out)
    if found is not None and found != kind:
        raise TlrlError(f"{output} is {NAMES[found]}, not {NAMES[kind]}; choose another -o")
    foreign = _foreign(out, kind)
    if foreign:
        raise TlrlError(f"{output} is not empty and holds files that tlrl {kind} did not write "
                        f"({', '.join(sorted(foreign)[:5])}); choose another -o (--force replaces only "
                        f"{NAMES[kind]})")
    if found is None and kind not in ("benchmark", "curve"):
        raise TlrlError(f"{output} is not empty and is not {NAMES[kind]} (it has no {RECORDS[kind]}); "
                        "choose another -o")
    finished = kind == "fit" or (kind == "pretrain" and (out / "card.json").is_file())
    if finished and not force:
        raise TlrlError(f"{output} is not empty (an earlier run?); pass --force to replace it as a whole, "
                        "or choose another -o")

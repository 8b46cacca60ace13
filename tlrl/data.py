"""Datasets: the registry (the paper's files and the latest JARVIS), user CSVs, splits and folds."""

from __future__ import annotations

import errno
import gzip
import os
import re
import stat
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, train_test_split

from tlrl import download
from tlrl.download import dataset_cache, default_cache_dir
from tlrl.errors import TlrlError
from tlrl.extras import require
from tlrl.io import atomic_write

# The paper's datasets: fixed files, downloaded by tlrl.download (hash-checked) when not on disk.
DATASETS: tuple[str, ...] = (
    "oqmd_formation_enthalpy",
    "jarvis_formation_energy",
    "jarvis_optb88vdw_bandgap",
    "jarvis_bulk_modulus_kv",
    "expt_bandgap",
)
# The latest JARVIS through jarvis-tools (figshare): name -> (jarvis-tools dataset, record key of
# the target). Never the paper's data: dft_3d grows with each JARVIS release and has no fixed split.
LATEST_JARVIS: dict[str, tuple[str, str]] = {
    "jarvis_latest_formation_energy": ("dft_3d", "formation_energy_peratom"),
    "jarvis_latest_optb88vdw_bandgap": ("dft_3d", "optb88vdw_bandgap"),
    "jarvis_latest_bulk_modulus_kv": ("dft_3d", "bulk_modulus_kv"),
    "jarvis_latest_oqmd_formation_enthalpy": ("oqmd_3d_no_cfid", "_oqmd_delta_e"),
}
REGISTRY: tuple[str, ...] = (*DATASETS, *LATEST_JARVIS)
DATA_DIR_ENV = "TLRL_DATA_DIR"
# OQMD outlier rule: formation enthalpies beyond ±5 eV/atom are unphysical for
# inorganic solids (JARVIS spans −4.4 … +4.3); the raw OQMD file reaches −198.7.
OUTLIER_LIMIT_EV = 5.0
OQMD_DATASETS = ("oqmd_formation_enthalpy", "jarvis_latest_oqmd_formation_enthalpy")
# Targets beyond this magnitude make the float32 MAE of a batch (a sum of thousands) overflow.
TARGET_MAX = 1e30


def load_dataset(
    name_or_path: str | Path,
    data_dir: str | Path | None = None,
    formula_col: str = "formula",
    target_col: str = "target",
    seed: int = 0,
    online: bool = True,
) -> pd.DataFrame:
    """A dataset as columns ``formula, target, split``.

    ``name_or_path`` is a registry name (looked up in ``data_dir``, ``$TLRL_DATA_DIR``, then
    the cache, downloaded when absent: the paper's files via :mod:`tlrl.download`, the
    ``jarvis_latest_*`` ones through jarvis-tools) or a CSV path. A missing ``split``
    column becomes a seeded 90:10 train/test split.
    """
    name = str(name_or_path)
    if name in REGISTRY:
        df = _load_registered(name, data_dir, online)
    else:
        path = Path(name)
        if not path.exists():
            known = ", ".join(REGISTRY)
            raise TlrlError(f"no dataset {name!r}: not a file, and not one of {known}")
        df = read_table(path, formula_col, target_col)
    if df["target"].nunique() == 1:
        warnings.warn(f"every target of {name} is {df['target'].iloc[0]:g}: a constant target leaves a model "
                      "nothing to learn", stacklevel=2)
    return with_split(df, seed)


def dataset_name(dataset: str | Path | pd.DataFrame) -> str:
    """How results name a dataset: the registry name or path, or a frame's ``attrs['name']``."""
    if isinstance(dataset, pd.DataFrame):
        return str(dataset.attrs.get("name", "dataframe"))
    return str(dataset)


def read_table(
    path: Path, formula_col: str = "formula", target_col: str | None = "target", require_target: bool = True
) -> pd.DataFrame:
    """Read and validate a user CSV (optionally gzipped) into ``formula, target[, split]``.

    The delimiter (comma, semicolon or tab) is taken from the header line. Every cell is
    read as text, so formulas such as ``NaN`` (sodium nitride), ``NA`` or ``None`` stay
    formulas; an empty formula cell stays empty. Targets must be finite in float32, the
    precision the models train in. With ``require_target=False`` the target column may be
    absent; with ``target_col=None`` it is not read at all (prediction inputs).
    """
    raw = _read_cells(Path(path), keep_blank=target_col is None)
    has_target = target_col is not None and (require_target or target_col in raw.columns)
    needed = [formula_col, target_col] if has_target else [formula_col]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise TlrlError(f"{path} lacks column(s) {missing}; it has {list(raw.columns)}")
    twice = sorted({c for c in [*needed, "split"] if list(raw.columns).count(c) > 1})
    if twice:
        raise TlrlError(f"{path} has the column(s) {twice} more than once in its header; keep one of each")
    if raw.empty:
        raise TlrlError(f"{path} has a header but no rows")
    # select before renaming, so that other columns called 'formula'/'target' cannot clash
    df = pd.DataFrame({"formula": raw[formula_col].str.strip()})
    if not has_target:
        return df
    df["target"] = check_targets(pd.to_numeric(raw[target_col].str.strip(), errors="coerce"), str(path))
    if "split" in raw.columns and "split" not in (formula_col, target_col):
        df["split"] = raw["split"]
    return df


def check_targets(target: pd.Series, where: str, lines: bool = True) -> pd.Series:
    """``target`` as floats, or a ``TlrlError`` naming the rows (file ``lines``, else row labels) that are
    missing, not finite in float32, or so large (``TARGET_MAX``) that the float32 training loss overflows."""
    values = pd.to_numeric(target, errors="coerce")
    with np.errstate(over="ignore"):
        as32 = values.to_numpy(dtype=np.float32, na_value=np.nan)
    bad = ~np.isfinite(as32)
    huge = ~bad & (np.abs(as32) > TARGET_MAX)
    for rows, what in ((bad, "are missing, not numbers, NaN or inf, or beyond float32's range of ±3.4e38"),
                       (huge, f"exceed {TARGET_MAX:g} in magnitude, where the float32 training loss overflows; "
                              "rescale the target")):
        if rows.any():
            first = np.flatnonzero(rows)[:5]
            named = f"lines {(first + 2).tolist()}" if lines else f"rows {target.index[first].tolist()}"
            raise TlrlError(f"{where}: {int(rows.sum())} target(s) {what} ({named})")
    return values.astype(float)


def as_dataset(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A user's frame checked as a CSV is: ``formula`` and ``target`` columns, usable targets, and a
    ``split`` of only 'train'/'test' (added, seeded, when absent)."""
    if not isinstance(df, pd.DataFrame):
        raise TlrlError(f"a dataset is a registry name, a CSV path or a DataFrame, got {type(df).__name__}")
    missing = [c for c in ("formula", "target") if c not in df.columns]
    if missing:
        raise TlrlError(f"the frame lacks column(s) {missing}; it has {list(df.columns)}")
    name = dataset_name(df)
    checked = df.assign(target=check_targets(df["target"], name, lines=False))
    checked.attrs["name"] = name
    out = with_split(checked, seed)
    out.attrs["name"] = name
    return out


def _read_cells(path: Path, keep_blank: bool = False) -> pd.DataFrame:
    """Every cell of a CSV as text, with the header as column names; bad files are ``TlrlError``.

    With ``keep_blank`` a blank line inside the file is a row of empty cells (trailing ones are not).
    """
    if _stat_loop(path):
        raise TlrlError(f"{path} is a symlink loop")
    if path.is_dir():
        raise TlrlError(f"{path} is a directory, not a CSV file")
    if not path.exists():
        raise TlrlError(f"no such file: {path}")
    if not path.is_file():  # reading a FIFO or device would block, or read nothing
        mode = path.stat().st_mode
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode) else "a special file"
        raise TlrlError(f"{path} is {kind}, not a regular file; give a CSV file")
    with path.open("rb") as fh:
        compression = "gzip" if fh.read(2) == b"\x1f\x8b" else None
    try:
        raw = pd.read_csv(path, sep=_delimiter(path, compression), header=None, dtype=str, na_filter=False,
                          compression=compression, skip_blank_lines=not keep_blank)
    except pd.errors.EmptyDataError:
        raise TlrlError(f"{path} is empty") from None
    except pd.errors.ParserError as exc:
        ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if ragged:
            expected, line, saw = ragged.groups()
            raise TlrlError(f"{path}: line {line} has {saw} fields, the header has {expected}") from None
        raise TlrlError(f"{path} is not a readable CSV (ParserError)") from None
    except (UnicodeDecodeError, OSError, EOFError) as exc:  # EOFError: truncated .gz
        raise TlrlError(f"{path} is not a readable CSV ({exc.__class__.__name__})") from None
    if keep_blank:
        filled = (raw != "").any(axis=1).to_numpy()
        raw = raw.iloc[: int(np.flatnonzero(filled).max()) + 1 if filled.any() else 0]
    table = raw.iloc[1:].reset_index(drop=True)
    table.columns = list(raw.iloc[0]) if len(raw) else []
    return table


def _stat_loop(path: Path) -> bool:
    """Whether ``path`` is a symlink loop."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _delimiter(path: Path, compression: str | None) -> str:
    """',', ';' or tab: whichever the header line holds most of (a comma when it holds none)."""
    opener = gzip.open if compression else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            header = fh.readline()
    except (OSError, EOFError) as exc:
        raise TlrlError(f"{path} is not a readable CSV ({exc.__class__.__name__})") from None
    return max([",", ";", "\t"], key=header.count)


def locate(name: str, data_dir: str | Path | None = None) -> Path | None:
    """Where a registry dataset's file is on disk, checked: ``data_dir``, ``$TLRL_DATA_DIR``, then the cache.

    A paper dataset must match tlrl's SHA-256 registry (a mismatch in a data folder is a
    ``TlrlError``, one in the cache counts as absent); ``None`` when no folder has it.
    """
    for folder in _folders(data_dir):
        path = folder / f"{name}.csv.gz"
        if path.is_file():
            return download.verify(name, path) if name in DATASETS else path
    if name in LATEST_JARVIS:
        path = default_cache_dir() / f"{name}.csv.gz"
        return path if path.is_file() else None
    return download.cached(name, dataset_cache())


def _folders(data_dir: str | Path | None) -> list[Path]:
    return [Path(d) for d in (data_dir, os.environ.get(DATA_DIR_ENV)) if d]


def _load_registered(name: str, data_dir: str | Path | None, online: bool) -> pd.DataFrame:
    """A registry dataset from ``data_dir`` or ``$TLRL_DATA_DIR``, else from the cache or its download."""
    path = locate(name, data_dir)
    if path is not None:
        return read_table(path)
    if name in LATEST_JARVIS:
        return fetch_latest_jarvis(name, online)
    if online:
        return read_table(download.fetch(name, dataset_cache()))
    looked = ", ".join(str(folder / f"{name}.csv.gz") for folder in [*_folders(data_dir), dataset_cache()])
    raise TlrlError(f"dataset {name!r} not found; looked in {looked} (set {DATA_DIR_ENV}, or allow the download)")


def download_dataset(name: str) -> Path:
    """A registry dataset's file in the cache, downloaded (and checked) when it is not there yet."""
    if name in LATEST_JARVIS:
        fetch_latest_jarvis(name)
        return default_cache_dir() / f"{name}.csv.gz"
    if name not in DATASETS:
        raise TlrlError(f"no dataset {name!r}; choose from {', '.join(REGISTRY)}")
    return download.fetch(name, dataset_cache())


_JARVIS = "Choudhary et al., npj Comput. Mater. 6, 173 (2020)"
_CROSS_PROPERTY = "JARVIS-DFT, split of NU-CUCIS/CrossPropertyTL"
_LATEST = "JARVIS-DFT latest, through jarvis-tools (grows; no fixed split)"
# name -> rows, property, unit, source, citation (rows: None where the dataset grows with each release)
_ABOUT: dict[str, tuple[int | None, str, str, str, str]] = {
    "oqmd_formation_enthalpy": (341_700, "DFT formation enthalpy", "eV/atom", "OQMD, as redistributed with CrabNet",
                                "Kirklin et al., npj Comput. Mater. 1, 15010 (2015)"),
    "jarvis_formation_energy": (28_108, "DFT formation energy (OptB88vdW)", "eV/atom", _CROSS_PROPERTY, _JARVIS),
    "jarvis_optb88vdw_bandgap": (28_155, "DFT band gap (OptB88vdW)", "eV", _CROSS_PROPERTY, _JARVIS),
    "jarvis_bulk_modulus_kv": (10_743, "Voigt bulk modulus", "GPa", _CROSS_PROPERTY, _JARVIS),
    "expt_bandgap": (4_920, "experimental band gap", "eV", "matminer's expt_gap, split of NU-CUCIS/CrossPropertyTL",
                     "Zhuo, Mansouri Tehrani and Brgoch, J. Phys. Chem. Lett. 9, 1668 (2018)"),
    "jarvis_latest_formation_energy": (None, "DFT formation energy (OptB88vdW)", "eV/atom", _LATEST, _JARVIS),
    "jarvis_latest_optb88vdw_bandgap": (None, "DFT band gap (OptB88vdW)", "eV", _LATEST, _JARVIS),
    "jarvis_latest_bulk_modulus_kv": (None, "Voigt bulk modulus", "GPa", _LATEST, _JARVIS),
    "jarvis_latest_oqmd_formation_enthalpy": (None, "DFT formation enthalpy (JARVIS's OQMD copy)", "eV/atom",
                                              _LATEST, "Kirklin et al., npj Comput. Mater. 1, 15010 (2015)"),
}


_LABELS: dict[str, str] = {
    "oqmd_formation_enthalpy": "OQMD formation enthalpy",
    "jarvis_formation_energy": "JARVIS formation energy",
    "jarvis_optb88vdw_bandgap": "JARVIS band gap",
    "jarvis_bulk_modulus_kv": "JARVIS bulk modulus",
    "expt_bandgap": "experimental band gap",
    "jarvis_latest_formation_energy": "JARVIS (latest) formation energy",
    "jarvis_latest_optb88vdw_bandgap": "JARVIS (latest) band gap",
    "jarvis_latest_bulk_modulus_kv": "JARVIS (latest) bulk modulus",
    "jarvis_latest_oqmd_formation_enthalpy": "OQMD formation enthalpy (JARVIS's copy)",
}


def dataset_label(dataset: str | Path) -> str:
    """A dataset as a reader's words for headers and legends: ``JARVIS formation energy`` for a registry
    name, the file's name without its extensions for a CSV."""
    name = str(dataset)
    return _LABELS.get(name) or Path(name).name.split(".")[0]


def datasets() -> pd.DataFrame:
    """Every registry dataset: name, rows, property, unit, source and citation."""
    rows = [(name, *_ABOUT[name]) for name in REGISTRY]
    table = pd.DataFrame(rows, columns=["name", "rows", "property", "unit", "source", "citation"])
    table["rows"] = table["rows"].astype("Int64")
    return table


def fetch_latest_jarvis(name: str, online: bool = True) -> pd.DataFrame:
    """The latest JARVIS through jarvis-tools, converted and cached as CSV; never the paper's split."""
    path = default_cache_dir() / f"{name}.csv.gz"
    if path.is_file():
        return read_table(path)
    if not online:
        raise TlrlError(f"dataset {name!r} not found in {path}; it is downloaded through jarvis-tools (online)")
    require("online", f"dataset {name!r} (the latest JARVIS, through jarvis-tools)")
    from jarvis.db.figshare import data as figshare_data

    db, key = LATEST_JARVIS[name]
    store = default_cache_dir() / "jarvis"
    store.mkdir(parents=True, exist_ok=True)
    try:
        records = figshare_data(db, store_dir=str(store))
    except Exception as exc:  # requests/zipfile errors vary; the message is what matters
        raise TlrlError(
            f"dataset {name!r} is not in {path} and the download of jarvis-tools {db!r} failed: "
            f"{exc.__class__.__name__}: {exc}"
        ) from None
    df = records_to_frame(records, key)
    with atomic_write(path) as tmp:
        df.to_csv(tmp, index=False, compression="gzip")
    return df


def records_to_frame(records: list[dict], key: str) -> pd.DataFrame:
    """jarvis-tools records (dft_3d or OQMD) to ``formula, target``; 'na' targets are dropped."""
    rows = []
    for rec in records:
        value = rec.get(key)
        if value in (None, "na", "") or not np.isfinite(float(value)):
            continue
        rows.append((_record_formula(rec), float(value)))
    return pd.DataFrame(rows, columns=["formula", "target"])


def _record_formula(rec: dict) -> str:
    if rec.get("formula"):
        return str(rec["formula"])
    counts = Counter(rec["atoms"]["elements"])
    return "".join(f"{el}{n}" for el, n in sorted(counts.items()))


def with_split(df: pd.DataFrame, seed: int = 0, test_fraction: float = 0.1) -> pd.DataFrame:
    """Keep a given train/test ``split`` column, or add a seeded 90:10 one."""
    df = df.reset_index(drop=True).copy()
    if "split" in df.columns:
        df["split"] = df["split"].astype(str).str.strip().str.lower()
        unknown = sorted(set(df["split"]) - {"train", "test"})
        if unknown:
            raise TlrlError(f"split column may hold only 'train'/'test', found {unknown[:5]}")
        return df
    if len(df) < 2:
        raise TlrlError(f"a train/test split needs at least 2 rows, the data has {len(df)}")
    _, test_idx = train_test_split(np.arange(len(df)), test_size=test_fraction, random_state=seed)
    df["split"] = "train"
    df.loc[test_idx, "split"] = "test"
    return df


def cv_folds(n_train: int, n_folds: int = 10, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded shuffled K-fold (train, val) index pairs over the train part."""
    if n_train < n_folds:
        raise TlrlError(f"{n_folds}-fold cross-validation needs at least {n_folds} training rows, got {n_train}")
    kfold = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(kfold.split(np.arange(n_train)))


def filter_outliers(df: pd.DataFrame, limit: float = OUTLIER_LIMIT_EV) -> tuple[pd.DataFrame, int]:
    """Drop rows with ``|target| > limit`` eV/atom; return the rest and how many went."""
    keep = df["target"].abs() <= limit
    return df.loc[keep].reset_index(drop=True), int((~keep).sum())


def leakage_report(df: pd.DataFrame) -> dict[str, object]:
    """How many compositions occur in both train and test (reduced-formula match)."""
    from pymatgen.core import Composition

    reduced = df["formula"].map(lambda f: Composition(f).reduced_formula)
    train = set(reduced[df["split"] == "train"])
    test = set(reduced[df["split"] == "test"])
    shared = sorted(train & test)
    return {
        "n_train_compositions": len(train),
        "n_test_compositions": len(test),
        "n_shared_compositions": len(shared),
        "n_test_rows_shared": int(reduced[df["split"] == "test"].isin(shared).sum()),
        "examples": shared[:10],
    }

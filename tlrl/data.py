"""Datasets: the registry, user CSVs, the online JARVIS/OQMD path, splits and folds."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, train_test_split

from tlrl.errors import TlrlError
from tlrl.io import atomic_write

# name -> (jarvis-tools figshare dataset, record key of the target)
REGISTRY: dict[str, tuple[str, str]] = {
    "oqmd_formation_enthalpy": ("oqmd_3d_no_cfid", "_oqmd_delta_e"),
    "jarvis_formation_energy": ("dft_3d", "formation_energy_peratom"),
    "jarvis_optb88vdw_bandgap": ("dft_3d", "optb88vdw_bandgap"),
    "jarvis_bulk_modulus_kv": ("dft_3d", "bulk_modulus_kv"),
    "expt_bandgap": ("", ""),  # matminer's expt_gap; only as a local file
}
DATA_DIR_ENV = "TLRL_DATA_DIR"
# OQMD outlier rule: formation enthalpies beyond ±5 eV/atom are unphysical for
# inorganic solids (JARVIS spans −4.4 … +4.3); the raw OQMD file reaches −198.7.
OUTLIER_LIMIT_EV = 5.0


def default_cache_dir() -> Path:
    """Where downloaded datasets and feature caches go (``$TLRL_CACHE_DIR`` or ~/.cache/tlrl)."""
    return Path(os.environ.get("TLRL_CACHE_DIR", Path.home() / ".cache" / "tlrl"))


def load_dataset(
    name_or_path: str | Path,
    data_dir: str | Path | None = None,
    formula_col: str = "formula",
    target_col: str = "target",
    seed: int = 0,
    online: bool = True,
) -> pd.DataFrame:
    """A dataset as columns ``formula, target, split``.

    ``name_or_path`` is a registry name (looked up in ``data_dir``, ``$TLRL_DATA_DIR``,
    the cache, then online through jarvis-tools) or a CSV path. A missing ``split``
    column becomes a seeded 90:10 train/test split.
    """
    name = str(name_or_path)
    if name in REGISTRY:
        df = _load_registered(name, data_dir, online)
    else:
        path = Path(name)
        if not path.is_file():
            known = ", ".join(REGISTRY)
            raise TlrlError(f"no dataset {name!r}: not a file, and not one of {known}")
        df = read_table(path, formula_col, target_col)
    return with_split(df, seed)


def read_table(
    path: Path, formula_col: str = "formula", target_col: str | None = "target", require_target: bool = True
) -> pd.DataFrame:
    """Read and validate a user CSV (optionally gzipped) into ``formula, target[, split]``.

    With ``require_target=False`` the target column may be absent; with ``target_col=None``
    it is not read at all (prediction inputs).
    """
    if not path.is_file():
        raise TlrlError(f"no such file: {path}")
    try:
        raw = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise TlrlError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:  # EOFError: truncated .gz
        raise TlrlError(f"{path} is not a readable CSV ({exc.__class__.__name__})") from None
    has_target = target_col is not None and (require_target or target_col in raw.columns)
    needed = [formula_col, target_col] if has_target else [formula_col]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise TlrlError(f"{path} lacks column(s) {missing}; it has {list(raw.columns)}")
    if raw.empty:
        raise TlrlError(f"{path} has a header but no rows")
    # select before renaming, so that other columns called 'formula'/'target' cannot clash
    df = pd.DataFrame({"formula": raw[formula_col].astype(str)})
    if not has_target:
        return df
    df["target"] = pd.to_numeric(raw[target_col], errors="coerce")
    bad = ~np.isfinite(df["target"].to_numpy(dtype=float))
    if bad.any():
        rows = (np.flatnonzero(bad)[:5] + 2).tolist()  # +2: header and 1-based lines
        raise TlrlError(f"{path}: {int(bad.sum())} target(s) are missing, NaN or inf (lines {rows})")
    if "split" in raw.columns and "split" not in (formula_col, target_col):
        df["split"] = raw["split"]
    return df


def _load_registered(name: str, data_dir: str | Path | None, online: bool) -> pd.DataFrame:
    candidates = [Path(d) for d in (data_dir, os.environ.get(DATA_DIR_ENV)) if d]
    candidates.append(default_cache_dir())
    for directory in candidates:
        path = directory / f"{name}.csv.gz"
        if path.is_file():
            return read_table(path)
    looked = ", ".join(str(d / f"{name}.csv.gz") for d in candidates)
    if not online or not REGISTRY[name][0]:
        raise TlrlError(f"dataset {name!r} not found; looked in {looked} (set {DATA_DIR_ENV})")
    return fetch_online(name, looked)


def fetch_online(name: str, looked: str = "") -> pd.DataFrame:
    """Download a registry dataset through jarvis-tools, convert it and cache it as CSV."""
    from jarvis.db.figshare import data as figshare_data

    db, key = REGISTRY[name]
    store = default_cache_dir() / "jarvis"
    store.mkdir(parents=True, exist_ok=True)
    try:
        records = figshare_data(db, store_dir=str(store))
    except Exception as exc:  # requests/zipfile errors vary; the message is what matters
        raise TlrlError(
            f"dataset {name!r} is not on disk (looked in {looked}) and the download of "
            f"jarvis-tools {db!r} failed: {exc.__class__.__name__}: {exc}"
        ) from None
    df = records_to_frame(records, key)
    with atomic_write(default_cache_dir() / f"{name}.csv.gz") as tmp:
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

"""Formula parsing and the two composition featurizations of the paper: EF and PA.

EF are the 86 element fractions in ElemNet's order; PA are the 145 Magpie
attributes of Ward et al. (2016), computed with matminer exactly as the paper did.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from tlrl.errors import TlrlError
from tlrl.io import atomic_write

# ElemNet's input order (Jha et al. 2018): no noble gases but Kr and Xe, nothing after Pu.
ELEMNET_ELEMENTS: tuple[str, ...] = (
    "H", "Li", "Be", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd",
    "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd",
    "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",
    "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Ac", "Th", "Pa", "U", "Np",
    "Pu",
)  # fmt: skip
ELEMENT_INDEX = {el: i for i, el in enumerate(ELEMNET_ELEMENTS)}

FeatureKind = Literal["ef", "pa"]
Errors = Literal["warn", "raise"]
PA_VERSION = "ward2016-matminer-v1"


def _fractions(formula: str) -> dict[str, float] | str:
    """Element fractions of one formula, or the reason it cannot be used."""
    try:
        comp = Composition(str(formula).strip())
    except Exception:  # pymatgen raises several types for malformed formulas
        return "unparseable"
    if comp.num_atoms <= 0:
        return "no elements"
    if not np.isfinite(comp.num_atoms):  # e.g. 'Na1e400Cl' would give an all-zero row
        return "non-finite amount"
    amounts = comp.fractional_composition.get_el_amt_dict()
    outside = sorted(el for el in amounts if el not in ELEMENT_INDEX)
    if outside:
        return "element outside ElemNet's 86: " + ",".join(outside)
    return amounts


def element_fractions(formulas: pd.Series | list[str], errors: Errors = "warn") -> tuple[np.ndarray, np.ndarray]:
    """EF matrix (n_valid, 86) and the boolean mask of the rows that were kept.

    Each distinct formula is parsed once with pymatgen; the matrix is filled in one
    vectorised scatter. Bad rows are dropped with a warning (or a ``TlrlError``);
    when no row at all is usable it is always a ``TlrlError``.
    """
    formulas = pd.Series(formulas, dtype="object").astype(str)
    codes, uniques = pd.factorize(formulas)
    parsed = [_fractions(f) for f in uniques]
    ok_unique = np.array([isinstance(p, dict) for p in parsed], dtype=bool)
    _report_bad(formulas, codes, uniques, parsed, ok_unique, errors)

    rows, cols, vals = [], [], []
    for u, amounts in enumerate(parsed):
        if isinstance(amounts, dict):
            for el, frac in amounts.items():
                rows.append(u)
                cols.append(ELEMENT_INDEX[el])
                vals.append(frac)
    table = np.zeros((len(uniques), len(ELEMNET_ELEMENTS)), dtype=np.float32)
    table[rows, cols] = vals
    keep = ok_unique[codes]
    return table[codes[keep]], keep


def _report_bad(formulas, codes, uniques, parsed, ok_unique, errors: Errors) -> None:
    if ok_unique.all():
        return
    bad_rows = ~ok_unique[codes]
    examples = [f"{uniques[u]!r} ({parsed[u]})" for u in np.flatnonzero(~ok_unique)[:5]]
    message = f"{int(bad_rows.sum())} of {len(formulas)} rows have unusable formulas, e.g. " + "; ".join(examples)
    if errors == "raise" or bad_rows.all():
        raise TlrlError(message)
    warnings.warn(message + " — these rows are dropped.", stacklevel=3)


@contextlib.contextmanager
def _quiet_impute_nan() -> Iterator[None]:
    """Silence matminer's announcement that ``impute_nan``'s default will change (we pin it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*impute_nan=False")
        yield


def pa_featurizer():
    """The paper's 145-attribute matminer featurizer (Ward et al. 2016).

    ``impute_nan=False`` is pinned, so a future matminer default cannot change the PA.
    """
    from matminer.featurizers.base import MultipleFeaturizer
    from matminer.featurizers.composition import (
        ElementProperty,
        IonProperty,
        Stoichiometry,
        ValenceOrbital,
    )

    with _quiet_impute_nan():
        return MultipleFeaturizer(
            [
                Stoichiometry(),
                ElementProperty.from_preset("magpie", impute_nan=False),
                ValenceOrbital(props=["avg"], impute_nan=False),
                IonProperty(fast=True, impute_nan=False),
            ]
        )


def physical_attributes(formulas: pd.Series | list[str], progress: bool = True) -> pd.DataFrame:
    """The 145 PA columns for already-valid formulas, one row per formula."""
    featurizer = pa_featurizer()
    featurizer.set_n_jobs(1)
    unique = pd.Series(pd.unique(pd.Series(formulas, dtype="object")))
    comps = [Composition(f) for f in unique]
    with _quiet_impute_nan():
        values = featurizer.featurize_many(comps, ignore_errors=True, pbar=progress)
    table = pd.DataFrame(values, columns=featurizer.feature_labels(), index=unique.values)
    return table.loc[list(formulas)].reset_index(drop=True)


def featurize(
    df: pd.DataFrame,
    kind: FeatureKind,
    errors: Errors = "warn",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features for ``df`` (needs a ``formula`` column) and the rows of ``df`` they belong to.

    PA results are cached as parquet under ``cache_dir`` keyed by the formulas and
    the featurizer version, so a dataset is computed only once.
    """
    if kind not in ("ef", "pa"):
        raise TlrlError(f"unknown feature kind {kind!r}: use 'ef' or 'pa'")
    ef, keep = element_fractions(df["formula"], errors=errors)
    kept = df.loc[keep].reset_index(drop=True)
    if kind == "ef":
        return pd.DataFrame(ef, columns=list(ELEMNET_ELEMENTS)), kept
    cache = _pa_cache_path(kept["formula"], cache_dir)
    if cache is not None and cache.exists():
        return pd.read_parquet(cache), kept
    pa = physical_attributes(kept["formula"], progress=progress)
    if cache is not None:
        with atomic_write(cache) as tmp:
            pa.to_parquet(tmp)
    return pa, kept


def _pa_cache_path(formulas: pd.Series, cache_dir: str | Path | None) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha256("\n".join(formulas).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"pa-{PA_VERSION}-{digest}.parquet"

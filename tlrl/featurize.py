"""Formula parsing and the two composition featurizations of the paper: EF and PA.

EF are the 86 element fractions in ElemNet's order; PA are the 145 Magpie
attributes of Ward et al. (2016) that the paper names, computed with four matminer featurizers (our
reconstruction; they give exactly the 145 columns).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from tlrl.errors import TlrlError
from tlrl.io import atomic_write

if TYPE_CHECKING:
    from pymatgen.core import Composition

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


# Amount rule: every written amount, group multiplier and adduct coefficient, and every element's
# total, must be a finite number from 1e-6 to 1e6. Zero and negative amounts, '1e308' or '1e-300'
# would otherwise be read as a missing element, an infinite row or a pure element.
AMOUNT_MIN, AMOUNT_MAX = 1e-6, 1e6
AMOUNT_RULE = f"each amount must be a finite number from {AMOUNT_MIN:g} to {AMOUNT_MAX:g}"
ADDUCT_DOTS = "·•∙⋅"  # middle dot and look-alikes: always a hydrate/adduct separator
_WRITTEN_AMOUNT = re.compile(r"(?:[A-Z][a-z]*|[)\]}])\s*([-+]?[.\d][-*.e\d]*)")  # what pymatgen reads as a number
_COEFFICIENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?=[A-Z(\[{])")
_ADDUCT_MOLECULES = ("H2O", "NH3")
_ISOTOPE = re.compile(r"[DT](?![a-z])")  # deuterium and tritium count as hydrogen
_EXPONENT = re.compile(r"(?<=[\d.])e(?=[-+]?\d)")  # the 'e' of 1e-3 is no element
_LETTERS = re.compile(r"[A-Za-z]+")
_SYMBOL = re.compile(r"[A-Z][a-z]?")
SYMBOL_RULE = "symbols are case-sensitive, a capital letter and at most one lowercase letter (Fe, not FE or fe)"


def _adduct_parts(text: str) -> list[tuple[float, str]] | str:
    """Split a formula at its adduct separators into (coefficient, part); or why it is ambiguous.

    ``·`` always separates (``CuSO4·5H2O`` = CuSO4 + 5 H2O). A ``.`` between digits is a decimal
    point (``Ce1.3Lu0.7S3``), except where what follows reads like a dot-written hydrate (an
    integer, then H2O or NH3, or elements named before the dot, as in ``CuSO4.5H2O``): that is
    refused as ambiguous. A ``.`` before a letter or bracket separates (``CuSO4.H2O``); any
    other ``.`` (``Fe.5``) is refused as ambiguous too.
    """
    chars = list(text.translate({ord(d): "·" for d in ADDUCT_DOTS}))
    for i, c in enumerate(chars):
        if c != ".":
            continue
        before, after = text[:i], text[i + 1 :]
        if re.search(r"(?:^|·)\s*\d+$", "".join(chars[:i])):  # a decimal coefficient: CuSO4·0.5H2O
            continue
        if before[-1:].isdigit() and after[:1].isdigit():
            rest = after.lstrip("0123456789").split("·")[0].split(".")[0]
            repeats = set(re.findall(r"[A-Z][a-z]?", before)) & set(re.findall(r"[A-Z][a-z]?", rest))
            if rest.startswith(_ADDUCT_MOLECULES) or repeats:
                return "ambiguous '.': a decimal amount or a hydrate; write a hydrate with '·', e.g. CuSO4·5H2O"
        elif after[:1].isalpha() or after[:1] in "([{":
            chars[i] = "·"
        else:
            return "ambiguous '.': write decimals with a leading digit (0.5) and hydrates with '·'"
    parts = []
    for part in "".join(chars).split("·"):
        coefficient = _COEFFICIENT.match(part)
        parts.append((float(coefficient[1]), part[coefficient.end() :]) if coefficient else (1.0, part))
    return parts


def _unknown_symbol(text: str) -> str | None:
    """The first run of letters that is not a sequence of element symbols ('FE', 'Xx', 'NA'), if any."""
    from pymatgen.core import Element

    for run in _LETTERS.findall(_EXPONENT.sub(" ", text)):
        symbols = _SYMBOL.findall(run)
        if "".join(symbols) != run or not all(Element.is_valid_symbol(s) for s in symbols):
            return run
    return None


@functools.lru_cache(maxsize=1 << 16)
def parse_formula(formula: str) -> Composition | str:
    """The composition of one formula, or the reason it cannot be used.

    Hydrates and adducts may be written with ``·`` (see ``_adduct_parts`` for ``.``), and
    every amount must be a finite number from 1e-6 to 1e6 (``AMOUNT_RULE``). The hydrogen
    isotopes D and T count as H. Element symbols are case-sensitive (``SYMBOL_RULE``). EF and
    PA both featurize what this returns.
    """
    from pymatgen.core import Composition  # here, so the training engine imports without pymatgen

    text = str(formula).strip()
    if not text:
        return "empty"
    if "\n" in text or "\r" in text:
        return "the formula cell spans several lines"
    text = _ISOTOPE.sub("H", text)
    unknown = _unknown_symbol(text)
    if unknown:
        return f"unknown element symbol {unknown!r}: {SYMBOL_RULE}"
    parts = _adduct_parts(text)
    if isinstance(parts, str):
        return parts
    written = [str(c) for c, _ in parts] + [a for _, part in parts for a in _WRITTEN_AMOUNT.findall(part)]
    for amount in written:
        try:
            value = float(amount)
        except ValueError:
            return "unparseable"
        if not AMOUNT_MIN <= value <= AMOUNT_MAX:  # NaN fails too
            return f"amount {amount}: {AMOUNT_RULE}"
    try:
        comps = [Composition(part) * c if c != 1 else Composition(part) for c, part in parts]
        comp = sum(comps[1:], comps[0])
    except Exception:  # pymatgen raises several types for malformed formulas
        return "unparseable"
    if comp.num_atoms <= 0:
        return "no elements"
    totals = comp.get_el_amt_dict()
    outside = [el for el, amount in totals.items() if not AMOUNT_MIN <= amount <= AMOUNT_MAX]
    if outside:
        return f"total amount of {outside[0]} is {totals[outside[0]]:g}: {AMOUNT_RULE}"
    return comp


def _fractions(formula: str) -> dict[str, float] | str:
    """Element fractions of one formula, or the reason it cannot be used."""
    comp = parse_formula(formula)
    if isinstance(comp, str):
        return comp
    amounts = comp.fractional_composition.get_el_amt_dict()
    outside = sorted(el for el in amounts if el not in ELEMENT_INDEX)
    if outside:
        return "element outside ElemNet's 86: " + ",".join(outside)
    return amounts


def parse_formulas(formulas: pd.Series | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """EF rows (n, 86) for every formula, zero where unusable, and each row's problem ('' if none).

    Each distinct formula is parsed once with pymatgen; the matrix is filled in one
    vectorised scatter.
    """
    formulas = pd.Series(formulas, dtype="object").astype(str)
    codes, uniques = pd.factorize(formulas)
    parsed = [_fractions(f) for f in uniques]
    rows, cols, vals = [], [], []
    for u, amounts in enumerate(parsed):
        if isinstance(amounts, dict):
            for el, frac in amounts.items():
                rows.append(u)
                cols.append(ELEMENT_INDEX[el])
                vals.append(frac)
    table = np.zeros((len(uniques), len(ELEMNET_ELEMENTS)), dtype=np.float32)
    table[rows, cols] = vals
    problems = np.array(["" if isinstance(p, dict) else p for p in parsed], dtype=object)
    return table[codes], problems[codes] if len(formulas) else np.zeros(0, dtype=object)


def formulas_of(X) -> pd.Series:
    """Formulas as text from strings, pymatgen ``Composition`` objects, a one-column array, or a frame with
    a ``formula`` or ``composition`` column."""
    if isinstance(X, pd.DataFrame):
        column = next((c for c in ("formula", "composition") if c in X.columns), None)
        if column is None and X.shape[1] != 1:
            raise TlrlError(f"a frame of formulas needs a 'formula' or 'composition' column; it has {list(X.columns)}")
        X = X[column or X.columns[0]]
    elif isinstance(X, np.ndarray) and X.ndim == 2:
        if X.shape[1] != 1:
            raise TlrlError(f"formulas come as one column, got an array of shape {X.shape}")
        X = X[:, 0]
    return pd.Series([str(x) for x in X], dtype="object")


def element_fractions(formulas: pd.Series | list[str], errors: Errors = "warn") -> tuple[np.ndarray, np.ndarray]:
    """EF matrix (n_valid, 86) and the boolean mask of the rows that were kept.

    Bad rows are dropped with a warning (or a ``TlrlError``); when no row at all is
    usable it is always a ``TlrlError``.
    """
    X, problems = parse_formulas(formulas)
    report_problems(formulas, problems, errors)
    keep = problems == ""
    return X[keep], keep


def report_problems(
    formulas, problems: np.ndarray, errors: Errors, consequence: str = "these rows are dropped"
) -> None:
    """Warn about (or, ``errors='raise'`` or no usable row, raise on) the rows with a problem."""
    check_errors(errors)
    bad = problems != ""
    if not bad.any():
        return
    named = dict.fromkeys(zip(np.asarray(formulas, dtype=object)[bad], problems[bad]))
    examples = [f"{f!r} ({why})" for f, why in list(named)[:5]]
    message = f"{int(bad.sum())} of {len(problems)} rows have unusable formulas, e.g. " + "; ".join(examples)
    if errors == "raise" or bad.all():
        raise TlrlError(message)
    warnings.warn(f"{message} — {consequence}.", stacklevel=3)


def check_errors(errors: str) -> None:
    """Refuse an ``errors`` setting other than 'warn' and 'raise'."""
    if errors not in ("warn", "raise"):
        raise TlrlError(f"errors must be 'warn' or 'raise', got {errors!r}")


def nonfinite_rows(values: np.ndarray) -> np.ndarray:
    """Rows holding ±inf once cast to float32, the models' dtype (NaN is a missing attribute)."""
    with np.errstate(over="ignore"):
        return np.isinf(np.asarray(values, dtype=np.float32)).any(axis=1)


@contextlib.contextmanager
def _quiet_impute_nan() -> Iterator[None]:
    """Silence matminer's announcement that ``impute_nan``'s default will change (we pin it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*impute_nan=False")
        yield


def pa_featurizer():
    """The 145 Magpie attributes the paper names (Ward et al. 2016), from four matminer featurizers (our choice).

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
    """The 145 PA columns for already-valid formulas, one row per formula, parsed as for EF."""
    featurizer = pa_featurizer()
    featurizer.set_n_jobs(1)
    unique = pd.Series(pd.unique(pd.Series(formulas, dtype="object")))
    comps = [parse_formula(f) for f in unique]
    unusable = [f for f, c in zip(unique, comps) if isinstance(c, str)]
    if unusable:
        raise TlrlError(f"PA needs usable formulas; {unusable[0]!r} is not one ({parse_formula(unusable[0])})")
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
    """Features for ``df`` (a ``formula`` or ``composition`` column) and the rows of ``df`` they belong to.

    PA results are cached as parquet under ``cache_dir`` keyed by the formulas and
    the featurizer version, so a dataset is computed only once.
    """
    if kind not in ("ef", "pa"):
        raise TlrlError(f"unknown feature kind {kind!r}: use 'ef' or 'pa'")
    if not isinstance(df, pd.DataFrame) or not {"formula", "composition"} & set(df.columns):
        raise TlrlError("featurize needs a table with a 'formula' column (or a 'composition' column)")
    if "formula" not in df.columns:  # a 'composition' column of pymatgen Compositions (or formulas)
        df = df.assign(formula=formulas_of(df[["composition"]]).to_numpy())
    ef, keep = element_fractions(df["formula"], errors=errors)
    kept = df.loc[keep].reset_index(drop=True)
    if kind == "ef":
        return pd.DataFrame(ef, columns=list(ELEMNET_ELEMENTS)), kept
    cache = _pa_cache_path(kept["formula"], cache_dir)
    pa = _read_pa_cache(cache, len(kept)) if cache is not None else None
    if pa is None:
        pa = physical_attributes(kept["formula"], progress=progress)
        if cache is not None:
            with atomic_write(cache) as tmp:
                pa.to_parquet(tmp)
    problems = np.where(nonfinite_rows(pa.to_numpy()), "non-finite PA attribute", "").astype(object)
    report_problems(kept["formula"], problems, errors)
    finite = problems == ""
    return pa.loc[finite].reset_index(drop=True), kept.loc[finite].reset_index(drop=True)


def _read_pa_cache(path: Path, n_rows: int) -> pd.DataFrame | None:
    """The cached PA table, or None when absent; a corrupt one is announced and recomputed."""
    if not path.exists():
        return None
    try:
        pa = pd.read_parquet(path)
        if len(pa) == n_rows:
            return pa
    except Exception:  # pyarrow raises several types for a truncated file
        pass
    warnings.warn(f"the PA cache file {path} is corrupt; recomputing it", stacklevel=3)
    return None


def _pa_cache_path(formulas: pd.Series, cache_dir: str | Path | None) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha256("\n".join(formulas).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"pa-{PA_VERSION}-{digest}.parquet"


def __getattr__(name: str):
    """``ElementFraction``, the matminer featurizer, imported (with matminer) only when asked for."""
    if name == "ElementFraction":
        from tlrl.featurizers import ElementFraction

        return ElementFraction
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

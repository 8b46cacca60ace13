"""Element fractions (EF), the matminer physical attributes (PA) and their cache."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Element

from tlrl import featurize as featurize_module
from tlrl.errors import TlrlError
from tlrl.featurize import (
    AMOUNT_RULE,
    ELEMNET_ELEMENTS,
    element_fractions,
    featurize,
    pa_featurizer,
    physical_attributes,
)


def _row(fractions: dict[str, float]) -> np.ndarray:
    """The expected 86-vector for hand-written element fractions."""
    row = np.zeros(len(ELEMNET_ELEMENTS))
    for el, frac in fractions.items():
        row[ELEMNET_ELEMENTS.index(el)] = frac
    return row


# --- EF ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("NaCl", {"Na": 1 / 2, "Cl": 1 / 2}),
        ("Lu(MnGe)6", {"Lu": 1 / 13, "Mn": 6 / 13, "Ge": 6 / 13}),
        ("Fe2O3", {"Fe": 2 / 5, "O": 3 / 5}),
        ("Li0.5CoO2", {"Li": 1 / 7, "Co": 2 / 7, "O": 4 / 7}),
        ("Na Cl", {"Na": 1 / 2, "Cl": 1 / 2}),
        ("  Fe2O3\t", {"Fe": 2 / 5, "O": 3 / 5}),
        ("Ba(Fe2As2)2", {"Ba": 1 / 9, "Fe": 4 / 9, "As": 4 / 9}),
        ("KrF2", {"Kr": 1 / 3, "F": 2 / 3}),
        ("Pu", {"Pu": 1.0}),
    ],
)
def test_ef_hand_checked_values(formula: str, expected: dict[str, float]) -> None:
    X, keep = element_fractions([formula])
    assert keep.tolist() == [True]
    np.testing.assert_allclose(X[0], _row(expected), atol=1e-7)


def test_elemnet_order_is_z_order_without_the_excluded_elements() -> None:
    excluded = {"He", "Ne", "Ar", "Po", "At", "Rn", "Fr", "Ra"}
    by_z = [Element.from_Z(z).symbol for z in range(1, 95)]
    assert list(ELEMNET_ELEMENTS) == [el for el in by_z if el not in excluded]
    assert len(ELEMNET_ELEMENTS) == 86
    assert ELEMNET_ELEMENTS[:4] == ("H", "Li", "Be", "B")
    assert ELEMNET_ELEMENTS[-2:] == ("Np", "Pu")
    assert {"Kr", "Xe"} <= set(ELEMNET_ELEMENTS)


def test_ef_on_an_oqmd_slice(oqmd_head: pd.DataFrame) -> None:
    X, keep = element_fractions(oqmd_head["formula"])
    assert X.shape == (len(oqmd_head), 86)
    assert keep.all()
    assert (X >= 0).all()
    np.testing.assert_allclose(X.sum(axis=1), 1.0, atol=1e-5)
    for i in (0, 1, 777, len(oqmd_head) - 1):  # nonzero columns are exactly the formula's elements
        elements = {el.symbol for el in Composition(oqmd_head["formula"][i]).elements}
        assert {ELEMNET_ELEMENTS[j] for j in np.flatnonzero(X[i])} == elements


def test_ef_repeated_formulas_and_index_do_not_matter() -> None:
    formulas = pd.Series(["Fe2O3", "NaCl", "Fe2O3", "MgO"], index=[10, 3, 7, 1])
    X, keep = element_fractions(formulas)
    assert keep.all()
    np.testing.assert_array_equal(X[0], X[2])
    np.testing.assert_allclose(X[1], _row({"Na": 0.5, "Cl": 0.5}), atol=1e-7)
    np.testing.assert_allclose(X[3], _row({"Mg": 0.5, "O": 0.5}), atol=1e-7)


def test_featurize_ef_frame_has_elemnet_columns(jarvis_slice: pd.DataFrame) -> None:
    df = jarvis_slice.head(50)
    features, kept = featurize(df, "ef")
    assert list(features.columns) == list(ELEMNET_ELEMENTS)
    assert features.shape == (50, 86)
    pd.testing.assert_frame_equal(kept, df.reset_index(drop=True))


def test_featurize_rejects_an_unknown_kind(jarvis_slice: pd.DataFrame) -> None:
    with pytest.raises(TlrlError, match="unknown feature kind 'magpie'"):
        featurize(jarvis_slice.head(3), "magpie")  # type: ignore[arg-type]


# --- bad formulas -------------------------------------------------------------------------

# What pymatgen does with each (checked): '$' and '123' do not parse ('N@Cl' does:
# '@' is pymatgen's endohedral notation, read as NCl); He and Po parse but are not among
# ElemNet's 86. Amounts outside 1e-6..1e6 (pymatgen would drop 'Na0' and read 'Na1e400Cl'
# as infinite) break tlrl's amount rule.
BAD = {
    "Na$Cl": "unparseable",
    "": "empty",
    "123": "unparseable",
    "HeH": "element outside ElemNet's 86: He",
    "Po2O": "element outside ElemNet's 86: Po",
    "Na0": f"amount 0: {AMOUNT_RULE}",
    "Na1e400Cl": f"amount 1e400: {AMOUNT_RULE}",
}


@pytest.mark.parametrize(("formula", "reason"), BAD.items())
def test_each_bad_formula_is_dropped_with_its_reason(formula: str, reason: str) -> None:
    with pytest.warns(UserWarning, match="1 of 2 rows have unusable formulas") as record:
        X, keep = element_fractions(["NaCl", formula])
    assert f"{formula!r} ({reason})" in str(record[0].message)
    assert keep.tolist() == [True, False]
    np.testing.assert_allclose(X, [_row({"Na": 0.5, "Cl": 0.5})], atol=1e-7)


def test_bad_formulas_are_counted_per_row_and_named(jarvis_slice: pd.DataFrame) -> None:
    good = jarvis_slice["formula"].head(10).tolist()
    formulas = good[:5] + ["HeH", "Na$Cl", "HeH"] + good[5:] + ["123"]
    with pytest.warns(UserWarning) as record:
        X, keep = element_fractions(formulas)
    message = str(record[0].message)
    assert message.startswith("4 of 14 rows have unusable formulas")
    assert "'HeH'" in message and "'Na$Cl'" in message and "'123'" in message
    assert "dropped" in message
    assert X.shape == (10, 86)
    assert keep.tolist() == [True] * 5 + [False] * 3 + [True] * 5 + [False]
    np.testing.assert_array_equal(X, element_fractions(good)[0])


def test_errors_raise_lists_the_bad_formulas() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # raising must not warn first
        with pytest.raises(TlrlError, match="2 of 3 rows have unusable formulas") as info:
            element_fractions(["NaCl", "Po2O", "123"], errors="raise")
    assert "'Po2O'" in str(info.value) and "'123'" in str(info.value)


def test_no_usable_formula_at_all_is_an_error_even_when_warning() -> None:
    with pytest.raises(TlrlError, match="2 of 2 rows"):
        element_fractions(["HeH", "xyz"])


# --- PA -----------------------------------------------------------------------------------


def _matminer_reference(formulas: list[str]) -> tuple[np.ndarray, list[str]]:
    """The paper's PA straight from matminer, built here independently of tlrl."""
    from matminer.featurizers.base import MultipleFeaturizer
    from matminer.featurizers.composition import ElementProperty, IonProperty, Stoichiometry, ValenceOrbital

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MultipleFeaturizer(
            [
                Stoichiometry(),
                ElementProperty.from_preset("magpie"),
                ValenceOrbital(props=["avg"]),
                IonProperty(fast=True),
            ]
        )
        mf.set_n_jobs(1)
        values = mf.featurize_many([Composition(f) for f in formulas], ignore_errors=True, pbar=False)
    return np.array(values, dtype=float), mf.feature_labels()


@pytest.fixture(scope="module")
def pa_formulas(jarvis: pd.DataFrame) -> list[str]:
    """15 real JARVIS formulas (parentheses and a noble gas included) and one repeat."""
    formulas = jarvis["formula"].head(12).tolist()
    formulas += [f for f in jarvis["formula"] if "(" in f][:2] + [f for f in jarvis["formula"] if "Xe" in f][:1]
    return formulas + formulas[:1]


def test_pa_equals_matminer(pa_formulas: list[str]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pa = physical_attributes(pa_formulas, progress=False)
    reference, labels = _matminer_reference(pa_formulas)
    assert pa.shape == (16, 145)
    assert list(pa.columns) == labels
    assert np.allclose(pa.to_numpy(dtype=float), reference, equal_nan=True)
    assert not [w for w in caught if "impute_nan" in str(w.message)]


def test_pa_column_names_are_stable() -> None:
    labels = pa_featurizer().feature_labels()
    assert len(labels) == len(set(labels)) == 145
    assert labels[:7] == ["0-norm", "2-norm", "3-norm", "5-norm", "7-norm", "10-norm", "MagpieData minimum Number"]
    assert labels[9] == "MagpieData mean Number"
    assert labels[-7:] == [
        "avg s valence electrons", "avg p valence electrons", "avg d valence electrons", "avg f valence electrons",
        "compound possible", "max ionic char", "avg ionic char",
    ]  # fmt: skip


def test_pa_cache_is_written_once_and_read_back(tmp_path, monkeypatch, jarvis_slice: pd.DataFrame) -> None:
    df = jarvis_slice.head(12)
    first, kept = featurize(df, "pa", cache_dir=tmp_path, progress=False)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".parquet"

    def fail(*args, **kwargs):
        raise AssertionError("PA recomputed although cached")

    monkeypatch.setattr(featurize_module, "physical_attributes", fail)
    second, kept_again = featurize(df, "pa", cache_dir=tmp_path, progress=False)
    pd.testing.assert_frame_equal(second, first)
    pd.testing.assert_frame_equal(kept_again, kept)
    with pytest.raises(AssertionError, match="recomputed"):  # other formulas: another cache key
        featurize(jarvis_slice.iloc[12:20], "pa", cache_dir=tmp_path, progress=False)

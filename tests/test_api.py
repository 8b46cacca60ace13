"""The Python API where materials users live: a scikit-learn regressor on formulas, matminer featurizers,
pymatgen Compositions wherever formulas are. Small real slices of the experimental band gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matminer.featurizers.base import BaseFeaturizer, MultipleFeaturizer
from pymatgen.core import Composition
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import tlrl
from tlrl.cli import main
from tlrl.errors import TlrlError
from tlrl.featurize import ELEMNET_ELEMENTS, ElementFraction, featurize, formulas_of
from tlrl.predict import predict
from tlrl.representation import SourceActivations, load_source, representation


@pytest.fixture(scope="module")
def gaps(data_dir) -> pd.DataFrame:
    """120 experimental band gaps (eV), seeded."""
    return pd.read_csv(data_dir / "expt_bandgap.csv.gz").sample(120, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(gaps: pd.DataFrame):
    return tlrl.TransferRegressor(profile="smoke").fit(gaps["formula"].tolist(), gaps["target"].to_numpy())


def test_fit_predict_on_formulas_and_compositions(fitted, gaps: pd.DataFrame) -> None:
    assert fitted.metrics_["method"] == "tl-finetune" and fitted.metrics_["n_train"] + fitted.metrics_["n_test"] == 120
    by_text = fitted.predict(gaps["formula"][:10].tolist())
    assert by_text.shape == (10,) and np.isfinite(by_text).all()
    comps = [Composition(f) for f in gaps["formula"][:10]]
    np.testing.assert_allclose(fitted.predict(comps), by_text, rtol=1e-6)
    np.testing.assert_allclose(fitted.predict(pd.DataFrame({"composition": comps})), by_text, rtol=1e-6)
    assert fitted.score(gaps["formula"].tolist(), gaps["target"]) > -1  # R^2 of a 2-epoch smoke fit


def test_save_and_load_go_through_the_run_folder_that_tlrl_predict_reads(fitted, gaps, tmp_path, capsys) -> None:
    folder = fitted.save(tmp_path / "run")
    loaded = tlrl.TransferRegressor.load(folder)
    assert loaded.get_params() == {**fitted.get_params(), "layer": None}
    formulas = gaps["formula"][:8].tolist()
    np.testing.assert_allclose(loaded.predict(formulas), fitted.predict(formulas), rtol=1e-6)
    (tmp_path / "new.csv").write_text("formula\n" + "\n".join(formulas) + "\n")
    assert main(["predict", str(folder), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv")["prediction"], fitted.predict(formulas), rtol=1e-6)
    with pytest.raises(TlrlError, match="is not a run folder"):
        tlrl.TransferRegressor.load(tmp_path)


def test_cross_val_score_pipeline_and_grid_search(gaps: pd.DataFrame) -> None:
    X, y = gaps["formula"].tolist(), gaps["target"].to_numpy()
    cv = KFold(2, shuffle=True, random_state=0)
    scores = cross_val_score(tlrl.TransferRegressor(profile="smoke"), X, y, cv=cv, scoring="neg_mean_absolute_error",
                             error_score="raise")
    assert scores.shape == (2,) and (scores < 0).all() and (scores > -5).all()
    pipe = Pipeline([("strip", FunctionTransformer(lambda f: [s.strip() for s in f])),
                     ("model", tlrl.TransferRegressor(profile="smoke"))])
    assert np.isfinite(pipe.fit([f" {s} " for s in X], y).predict(X[:3])).all()
    grid = GridSearchCV(tlrl.TransferRegressor(method="rl-dl-relu", profile="smoke"),
                        {"method": ["rl-dl-relu", "tlrl-dl-relu"], "layer": [3, 8]}, cv=cv,
                        scoring="neg_mean_absolute_error", error_score="raise").fit(X, y)
    assert len(grid.cv_results_["params"]) == 4 and grid.best_estimator_.layer_ == grid.best_params_["layer"]


def test_the_estimator_refuses_what_it_cannot_keep(gaps: pd.DataFrame) -> None:
    with pytest.raises(TlrlError, match="runs the NN-17 methods .* not 'sc-ml-ef'"):
        tlrl.TransferRegressor(method="sc-ml-ef").fit(gaps["formula"], gaps["target"])
    with pytest.raises(TlrlError, match="3 formulas but 2 targets"):
        tlrl.TransferRegressor().fit(["NaCl", "KCl", "LiF"], [1.0, 2.0])


def test_formulas_come_as_text_compositions_or_a_composition_column() -> None:
    comps = [Composition("Fe2O3"), Composition("NaCl")]
    expected = ["Fe2 O3", "Na1 Cl1"]
    assert formulas_of(comps).tolist() == expected
    assert formulas_of(pd.DataFrame({"composition": comps, "other": [1, 2]})).tolist() == expected
    assert formulas_of(np.array([["Fe2O3"], ["NaCl"]], dtype=object)).tolist() == ["Fe2O3", "NaCl"]
    with pytest.raises(TlrlError, match="'formula' or 'composition' column"):
        formulas_of(pd.DataFrame({"a": comps, "b": comps}))
    by_comp, _ = featurize(pd.DataFrame({"composition": comps}), "ef")
    by_text, _ = featurize(pd.DataFrame({"formula": ["Fe2O3", "NaCl"]}), "ef")
    pd.testing.assert_frame_equal(by_comp, by_text)


def test_the_featurizers_are_matminer_featurizers_that_agree_with_tlrl_featurize(gaps, tmp_path) -> None:
    formulas = gaps["formula"][:15].tolist()
    pd.DataFrame({"formula": formulas}).to_csv(tmp_path / "f.csv", index=False)
    assert main(["featurize", str(tmp_path / "f.csv"), "--kind", "ef", "-o", str(tmp_path / "ef.parquet")]) == 0
    cli = pd.read_parquet(tmp_path / "ef.parquet")
    ef, acts = ElementFraction(), SourceActivations(7, "dense")
    assert isinstance(ef, BaseFeaturizer) and isinstance(acts, BaseFeaturizer)
    assert ef.feature_labels() == list(ELEMNET_ELEMENTS) and len(acts.feature_labels()) == 512
    assert "ElemNet" in ef.citations()[0] and ef.implementors() == ["tlrl"] and len(acts.citations()) == 2
    both = MultipleFeaturizer([ef, acts])
    both.set_n_jobs(1)
    table = both.featurize_dataframe(pd.DataFrame({"composition": [Composition(f) for f in formulas]}),
                                     "composition", pbar=False)
    np.testing.assert_array_equal(table[list(ELEMNET_ELEMENTS)].to_numpy(np.float32),
                                  cli[list(ELEMNET_ELEMENTS)].to_numpy(np.float32))
    rl = representation(load_source("oqmd"), cli[list(ELEMNET_ELEMENTS)].to_numpy(np.float32), 7, "dense")
    np.testing.assert_allclose(table[acts.feature_labels()].to_numpy(), rl, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="layer must be in 1..16"):
        SourceActivations(17)


def test_predict_takes_compositions(fitted, gaps) -> None:
    comps = [Composition(f) for f in gaps["formula"][:5]]
    preds = predict(fitted.run_dir_, comps)
    np.testing.assert_allclose(preds["prediction"], fitted.predict(gaps["formula"][:5].tolist()), rtol=1e-6)


# The scikit-learn checks that apply to a regressor on formulas. The others are skipped: they fit on
# random numeric arrays (formulas are the input here), and a fitted estimator holds a temporary run
# folder, so it is saved with save()/load() rather than pickled.
APPLICABLE_CHECKS = ("check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
                     "check_parameters_default_constructible", "check_get_params_invariance", "check_set_params",
                     "check_do_not_raise_errors_in_init_or_set_params", "check_mixin_order")


@pytest.mark.parametrize("check", APPLICABLE_CHECKS)
def test_the_applicable_scikit_learn_estimator_checks_pass(check: str) -> None:
    import sklearn.utils.estimator_checks as checks

    getattr(checks, check)("TransferRegressor", tlrl.TransferRegressor())

"""The SC:ML baseline (hyperopt-sklearn AutoML) on real JARVIS slices.

Reference numbers on the 600/200 slice (seed 0, 4 evals): the mean predictor's test MAE
is 0.88 eV/atom; the search reaches 0.53 on EF (ratio 0.60, an elastic net) and 0.41 on
PA (ratio 0.46). Over seeds 0-3 EF gave ratios 0.47-0.60 and PA 0.42-0.50.
"""

from __future__ import annotations

import json

import hpsklearn
import hyperopt.rand
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from tlrl.automl import TRIAL_COLUMNS, automl_fit, automl_search, startup_jobs
from tlrl.errors import TlrlError
from tlrl.featurize import featurize


def _split(X, kept):
    X = X.to_numpy(np.float64)
    y = kept["target"].to_numpy(np.float64)
    train = (kept["split"] == "train").to_numpy()
    return X[train], y[train], X[~train], y[~train]


@pytest.fixture(scope="module")
def ef(jarvis_slice):
    return _split(*featurize(jarvis_slice, "ef"))


@pytest.fixture(scope="module")
def pa(jarvis_slice, tmp_path_factory):
    return _split(*featurize(jarvis_slice, "pa", cache_dir=tmp_path_factory.mktemp("pa"), progress=False))


@pytest.fixture(scope="module")
def ef_nan(ef):
    """200 EF train rows with 2 % of the entries set to NaN."""
    X, y = ef[0][:200].copy(), ef[1][:200]
    X[np.random.default_rng(0).random(X.shape) < 0.02] = np.nan
    return X, y


def _check_report(result, max_evals):
    trials = result.trials
    assert list(trials.columns) == TRIAL_COLUMNS
    assert len(trials) == max_evals
    assert trials.trial.tolist() == list(range(max_evals))
    assert set(trials.status) <= {"ok", "fail"}
    assert result.n_failed == int((trials.status == "fail").sum())
    ok = trials.status == "ok"
    assert trials.loss[ok].notna().all() and (trials.loss[ok] >= 0).all()
    assert trials.loss[~ok].isna().all()
    assert (trials.error[~ok].str.len() > 0).all() and (trials.error[ok] == "").all()
    assert (trials.seconds >= 0).all()
    for params in trials.params:
        assert isinstance(json.loads(params), dict)
    best = trials.loc[trials.loss.idxmin()]
    assert result.best_model_class == best.model_class
    assert result.best_loss == pytest.approx(best.loss)
    assert result.best_params == json.loads(best.params)


@pytest.mark.parametrize("kind, max_ratio", [("ef", 0.65), ("pa", 0.6)])
def test_search_beats_the_mean_predictor(kind, max_ratio, request, monkeypatch, capsys):
    Xtr, ytr, Xte, yte = request.getfixturevalue(kind)
    seen = []
    fit_iter = hpsklearn.HyperoptEstimator.fit_iter

    def spy(self, X, y, *args, **kwargs):
        seen.append((X, y))
        return fit_iter(self, X, y, *args, **kwargs)

    monkeypatch.setattr(hpsklearn.HyperoptEstimator, "fit_iter", spy)
    result = automl_search(Xtr, ytr, max_evals=4, trial_timeout=30, seed=0, progress=True)

    assert "best loss" in "".join(capsys.readouterr())  # hyperopt's progress bar
    # the search saw the train part (shuffled) and nothing else
    assert seen and all(len(y) == len(ytr) for _, y in seen)
    assert np.array_equal(np.sort(seen[0][1]), np.sort(ytr))
    _check_report(result, 4)
    assert result.n_failed == 0

    pipeline = result.best_pipeline
    assert isinstance(pipeline, Pipeline) and type(pipeline[-1]).__name__ == result.best_model_class
    assert json.loads(json.dumps(result.best_params)) == result.best_params
    assert set(result.best_params) == {k for k in pipeline.get_params() if "__" in k}
    with pytest.raises(NotFittedError):
        check_is_fitted(pipeline[-1])  # handed back unfitted

    with threadpool_limits(1):  # OpenMP spin-waits badly on a busy 2-core machine
        model = clone(pipeline).fit(Xtr, ytr)
    mae = np.mean(np.abs(model.predict(Xte) - yte))
    mean_mae = np.mean(np.abs(ytr.mean() - yte))
    assert mean_mae > 0.8
    assert mae < max_ratio * mean_mae, (result.best_model_class, mae, mean_mae)


def test_same_seed_same_search_and_tpe_runs(ef, monkeypatch):
    Xtr, ytr = ef[0][:300], ef[1][:300]
    random_calls = []
    rand_suggest = hyperopt.rand.suggest

    def spy(*args, **kwargs):
        random_calls.append(1)
        return rand_suggest(*args, **kwargs)

    monkeypatch.setattr(hyperopt.rand, "suggest", spy)
    first = automl_search(Xtr, ytr, max_evals=4, trial_timeout=30, seed=0, progress=False)
    # 2 random start-up trials, then TPE proposes the other 2
    assert startup_jobs(4) == 2 and len(random_calls) == 2

    again = automl_search(Xtr, ytr, max_evals=4, trial_timeout=30, seed=0, progress=False)
    other = automl_search(Xtr, ytr, max_evals=4, trial_timeout=30, seed=1, progress=False)
    _check_report(first, 4)
    np.testing.assert_array_equal(first.trials.loss, again.trials.loss)
    assert first.trials.params.tolist() == again.trials.params.tolist()
    assert first.trials.model_class.tolist() == again.trials.model_class.tolist()
    assert (first.best_model_class, first.best_params) == (again.best_model_class, again.best_params)
    assert first.trials.params.tolist() != other.trials.params.tolist()


def test_all_trials_failing_is_an_error(ef_nan):
    X, y = ef_nan  # ridge cannot take NaN: every trial fails, through both of hpsklearn's paths
    with pytest.raises(TlrlError, match=r"all 4 trials failed; first error: .+NaN"):
        automl_search(X, y, max_evals=4, trial_timeout=30, seed=0, progress=False, regressors=("ridge",))


def test_all_trials_timing_out_is_an_error(ef):
    with pytest.raises(TlrlError, match=r"all 2 trials failed; first error: TimeOut.*raise trial_timeout"):
        automl_search(ef[0][:200], ef[1][:200], max_evals=2, trial_timeout=1e-4, seed=0, progress=False)


def test_failed_trials_are_counted_and_reported(ef_nan):
    X, y = ef_nan  # NaN passes hist gradient boosting, not the scalers' finite check nor Normalizer
    result = automl_search(
        X, y, max_evals=6, trial_timeout=30, seed=2, progress=False,
        regressors=("hist_gradient_boosting",), preprocessing=("none", "standard_scaler", "normalizer"),
    )  # fmt: skip
    _check_report(result, 6)
    errors = result.trials.error[result.trials.status == "fail"]
    assert 0 < result.n_failed < 6
    assert errors.str.startswith("non-finite features after preprocessing").any()  # hpsklearn returned 'fail'
    assert errors.str.startswith("ValueError: Input X contains NaN").any()  # the trial raised
    assert [name for name, _ in result.best_pipeline.steps] == ["regressor"]
    with threadpool_limits(1):
        clone(result.best_pipeline).fit(X, y)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda X, y: (np.where(X == X.max(), np.inf, X), y), "infinite"),
        (lambda X, y: (X, np.where(y == y.max(), np.nan, y)), "target"),
        (lambda X, y: (X[:5], y[:5]), "at least"),
        (lambda X, y: (X, y[:-1]), "shape"),
    ],
)
def test_bad_inputs_fail_before_searching(ef, change, message):
    X, y = change(ef[0][:100], ef[1][:100])
    with pytest.raises(TlrlError, match=message):
        automl_search(X, y, max_evals=2, trial_timeout=10, progress=False)


def test_bad_options(ef):
    X, y = ef[0][:100], ef[1][:100]
    with pytest.raises(TlrlError, match="max_evals"):
        automl_search(X, y, max_evals=0, trial_timeout=10, progress=False)
    with pytest.raises(TlrlError, match="unknown"):
        automl_search(X, y, max_evals=2, trial_timeout=10, progress=False, regressors=("mlp",))


def test_automl_fit_returns_the_chosen_pipeline_fitted(ef):
    X, y, X_test, y_test = ef
    fitted, search = automl_fit(X, y, max_evals=3, trial_timeout=20, seed=0, progress=False)
    check_is_fitted(fitted)
    assert type(fitted.steps[-1][1]).__name__ == search.best_model_class
    with threadpool_limits(1):  # automl_fit fits single-threaded; some learners' sums depend on threads
        refit = clone(search.best_pipeline).fit(X, y)
    np.testing.assert_allclose(fitted.predict(X_test), refit.predict(X_test))


def test_every_regressor_of_the_search_space_fits(ef):
    """ALL_REGRESSORS, each alone: every trial fits (kernel SVR once failed on a random_state it does not take)."""
    from tlrl.automl import ALL_REGRESSORS

    X, y = ef[0][:150], ef[1][:150]
    for name in ALL_REGRESSORS:
        result = automl_search(X, y, max_evals=2, trial_timeout=60, seed=0, progress=False, regressors=(name,))
        assert result.n_failed == 0, (name, result.trials.error.tolist())

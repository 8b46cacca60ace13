"""The SC:ML baseline: AutoML over classical regressors with hyperopt-sklearn (TPE).

``automl_search`` runs one ``hpsklearn.HyperoptEstimator`` search on the rows it is given
(the caller passes the train part only) and returns the chosen preprocessing + regressor
as an unfitted ``Pipeline`` with a per-trial report; ``automl_fit`` also fits it.

Design (each point works around hyperopt-sklearn 1.1.1 / hyperopt 0.2.7 behaviour):

- Validation: hpsklearn scores a trial on the last 20 % of its rows, so the rows are
  shuffled once with the seed first. The loss is the validation MAE.
- Search space: random forest, extra trees, (histogram) gradient boosting, k-NN, ridge,
  lasso, elastic net and linear SVR with hpsklearn's ranges, after none / PCA / standard /
  min-max / normalizer preprocessing. Histogram gradient boosting gets our own ranges: an
  MAE loss, up to 3,000 early-stopped iterations, learning rate 0.03–0.3, 31–255 leaves
  without a depth limit, 5–100 rows per leaf, L2 1e-3–10 (hpsklearn's fixes 100
  iterations, draws learning rates from a lognormal around 0.01 and depths from 2 up,
  which underfits 25k rows). Kernel SVR and Gaussian processes are left out (they
  time out on 25k rows; ``regressors=`` can add ``"svr"``), as are MLPs (NN-17 covers
  those). Forests use ``squared_error`` only, and every learner gets ``random_state=seed``
  instead of hpsklearn's tuned-seed "hyperparameter".
- TPE starts after ``clip(max_evals // 4, 2, 20)`` random trials, not hyperopt's 20.
- Seeding: hpsklearn never passes its seed to ``fmin``; ``_SeededAlgo`` feeds the
  suggest algorithm from our own ``np.random.default_rng`` stream instead.
- Failures: hpsklearn marks time-outs and non-finite features as failed trials, but any
  other trial exception aborts ``fmin``. We drive its public ``fit_iter``, record such an
  error against the running trial and resume, so both kinds are counted and reported.
  If every trial fails, ``TlrlError`` names the first error.
- Threads: trials run in forked processes and GNU OpenMP is not fork-safe (a forked
  HistGradientBoosting trial hangs once the parent has used OpenMP), so the search runs
  under ``threadpool_limits(1)``.

Weak points: trials that time out make results depend on the machine's load, and the
seeding wrapper relies on hyperopt 0.2.7's ``algo(new_ids, domain, trials, seed)`` call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from tlrl.errors import TlrlError

VALID_SIZE = 0.2
MIN_ROWS = 10
DEFAULT_REGRESSORS: tuple[str, ...] = (
    "random_forest",
    "extra_trees",
    "gradient_boosting",
    "hist_gradient_boosting",
    "knn",
    "ridge",
    "lasso",
    "elastic_net",
    "linear_svr",
)
ALL_REGRESSORS: tuple[str, ...] = (*DEFAULT_REGRESSORS, "svr")
DEFAULT_PREPROCESSING: tuple[str, ...] = ("none", "pca", "standard_scaler", "min_max_scaler", "normalizer")
TRIAL_COLUMNS = ["trial", "model_class", "params", "loss", "status", "seconds", "error"]


@dataclass
class SearchResult:
    """What one AutoML search found. ``best_pipeline`` is unfitted: ``clone(...).fit(X, y)``."""

    best_pipeline: Pipeline
    best_model_class: str
    best_params: dict  # best_pipeline's ``step__param`` -> value, made JSON-safe (tuples as lists)
    trials: pd.DataFrame  # one row per trial, columns TRIAL_COLUMNS
    n_failed: int
    seconds: float
    best_loss: float = math.nan  # validation MAE of the chosen trial
    n_startup_jobs: int = 0  # random trials before TPE takes over
    extra: dict = field(default_factory=dict)


def startup_jobs(max_evals: int) -> int:
    """Random start-up trials before TPE: a quarter of the budget, between 2 and 20."""
    return int(min(20, max(2, max_evals // 4)))


def search_space(seed: int, regressors=DEFAULT_REGRESSORS, preprocessing=DEFAULT_PREPROCESSING):
    """hyperopt choices ``(regressor, preprocessing)`` built from hpsklearn's components."""
    from hpsklearn import (
        elastic_net,
        extra_trees_regressor,
        gradient_boosting_regressor,
        hist_gradient_boosting_regressor,
        k_neighbors_regressor,
        lasso,
        linear_svr,
        min_max_scaler,
        normalizer,
        pca,
        random_forest_regressor,
        ridge,
        standard_scaler,
        svr,
    )
    from hyperopt import hp
    from hyperopt.pyll import scope

    rs = int(seed)
    reg_builders = {
        "random_forest": lambda n: random_forest_regressor(n, criterion="squared_error", random_state=rs),
        "extra_trees": lambda n: extra_trees_regressor(n, criterion="squared_error", random_state=rs),
        "gradient_boosting": lambda n: gradient_boosting_regressor(n, random_state=rs),
        "hist_gradient_boosting": lambda n: hist_gradient_boosting_regressor(
            n, loss="absolute_error", max_iter=3000, max_depth=None, random_state=rs,
            learning_rate=hp.loguniform(f"{n}.lr", math.log(0.03), math.log(0.3)),
            max_leaf_nodes=scope.int(hp.qloguniform(f"{n}.leaves", math.log(31), math.log(255), 1)),
            min_samples_leaf=scope.int(hp.qloguniform(f"{n}.min_leaf", math.log(5), math.log(100), 1)),
            l2_regularization=hp.loguniform(f"{n}.l2", math.log(1e-3), math.log(10.0)),
        ),
        "knn": lambda n: k_neighbors_regressor(n),
        "ridge": lambda n: ridge(n, random_state=rs),
        "lasso": lambda n: lasso(n, random_state=rs),
        "elastic_net": lambda n: elastic_net(n, random_state=rs),
        "linear_svr": lambda n: linear_svr(n, random_state=rs),
        "svr": lambda n: svr(n),  # SVR is deterministic and takes no random_state
    }
    pre_builders = {
        "none": lambda n: [],
        "pca": lambda n: [pca(n)],
        "standard_scaler": lambda n: [standard_scaler(n)],
        "min_max_scaler": lambda n: [min_max_scaler(n)],
        "normalizer": lambda n: [normalizer(n)],
    }
    for kind, names, known in (("regressor", regressors, reg_builders), ("preprocessing", preprocessing, pre_builders)):
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise TlrlError(f"unknown or no {kind} {unknown}: choose from {', '.join(known)}")
    regressor = hp.choice("reg", [reg_builders[name](f"reg.{name}") for name in regressors])
    pre = hp.choice("pre", [pre_builders[name](f"pre.{name}") for name in preprocessing])
    return regressor, pre


class _SeededAlgo:
    """A suggest algorithm fed with seeds from our own generator; records every proposal.

    hpsklearn 1.1.1 does not pass its seed on to ``fmin``, so the seed that ``fmin``
    hands to the algorithm is unseeded; this replaces it.
    """

    def __init__(self, algo, seed_seq: np.random.SeedSequence):
        self.algo = algo
        self.rng = np.random.default_rng(seed_seq)
        self.proposed: list[dict] = []  # tid, vals, t0 (perf_counter when handed out)
        self.in_algo = False

    def __call__(self, new_ids, domain, trials, seed, *args, **kwargs):
        self.in_algo = True
        docs = self.algo(new_ids, domain, trials, int(self.rng.integers(2**31 - 1)), *args, **kwargs)
        self.in_algo = False
        now = time.perf_counter()
        for doc in docs:
            vals = {k: v[0] for k, v in doc["misc"]["vals"].items() if len(v)}
            self.proposed.append({"tid": doc["tid"], "vals": vals, "t0": now})
        return docs


@contextlib.contextmanager
def _quiet(enabled: bool):
    """Without progress: no hyperopt progress bar and no "job exception" log lines.

    hpsklearn cannot pass ``show_progressbar`` to ``fmin``, so the default callback is
    swapped for the duration. Failed trials stay reported in the trials table.
    """
    import hyperopt.progress

    if not enabled:
        yield
        return
    saved = hyperopt.progress.default_callback
    hyperopt.progress.default_callback = hyperopt.progress.no_progress_callback
    log = logging.getLogger("hyperopt.fmin")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        hyperopt.progress.default_callback = saved
        log.setLevel(level)


def _check_inputs(X, y, max_evals, trial_timeout, seed, valid_size) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise TlrlError(f"AutoML needs X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}")
    if len(y) < MIN_ROWS:
        raise TlrlError(f"AutoML needs at least {MIN_ROWS} rows, got {len(y)}")
    if not np.isfinite(y).all():
        raise TlrlError(f"AutoML: the target has {int((~np.isfinite(y)).sum())} NaN/infinite values")
    if np.isinf(X).any():
        raise TlrlError(
            f"AutoML: X has {int(np.isinf(X).sum())} infinite values, which every regressor rejects; "
            "fix or impute the features first"
        )
    if int(max_evals) < 1:
        raise TlrlError(f"AutoML: max_evals must be at least 1, got {max_evals}")
    if not trial_timeout or trial_timeout <= 0:
        raise TlrlError(f"AutoML: trial_timeout must be positive (seconds), got {trial_timeout}")
    if not 0 <= int(seed) < 2**32:
        raise TlrlError(f"AutoML: seed must be in [0, 2**32), got {seed}")
    if not 0 < valid_size < 1 or int(len(y) * (1 - valid_size)) in (0, len(y)):
        raise TlrlError(f"AutoML: valid_size must leave rows to train and to validate on, got {valid_size}")
    return X, y


def automl_search(
    X: np.ndarray,
    y: np.ndarray,
    max_evals: int,
    trial_timeout: float,
    seed: int = 0,
    progress: bool = True,
    *,
    regressors=DEFAULT_REGRESSORS,
    preprocessing=DEFAULT_PREPROCESSING,
    valid_size: float = VALID_SIZE,
) -> SearchResult:
    """Search ``max_evals`` (preprocessing, regressor) configurations with TPE; return the best.

    Only ``X, y`` are seen: each trial trains on a seeded 80 % of them and is scored by
    the MAE on the other 20 %. Failed trials are reported, not fatal, unless all fail.
    """
    from hpsklearn import HyperoptEstimator
    from hyperopt import tpe

    X, y = _check_inputs(X, y, max_evals, trial_timeout, seed, valid_size)
    max_evals = int(max_evals)
    split_seq, algo_seq = np.random.SeedSequence(seed).spawn(2)
    order = np.random.default_rng(split_seq).permutation(len(y))
    Xs, ys = X[order], y[order]

    n_startup = startup_jobs(max_evals)
    algo = _SeededAlgo(partial(tpe.suggest, n_startup_jobs=n_startup), algo_seq)
    regressor, pre = search_space(seed, regressors, preprocessing)
    estim = HyperoptEstimator(
        regressor=regressor,
        preprocessing=pre,
        loss_fn=mean_absolute_error,
        algo=algo,
        max_evals=max_evals,
        trial_timeout=float(trial_timeout),
        seed=seed,  # ignored by hpsklearn 1.1.1 (see module docstring); _SeededAlgo seeds instead
        refit=False,  # the caller fits clones of best_pipeline
        fit_increment=max_evals,  # one fmin call, one progress bar (until a trial raises)
        n_jobs=1,
    )

    errors: dict[int, tuple[str, float]] = {}  # tid -> (message, seconds) for trials that raised
    start = time.perf_counter()
    # One thread for OpenMP/BLAS while the trials' processes are forked: GNU OpenMP is not
    # fork-safe, and once this process has run an OpenMP region (torch, a fitted
    # HistGradientBoosting) a forked trial that opens one hangs until the time-out.
    with threadpool_limits(limits=1), _quiet(not progress):
        while len(algo.proposed) < max_evals:
            search = estim.fit_iter(
                Xs,
                ys,
                valid_size=valid_size,
                cv_shuffle=False,
                warm_start=bool(algo.proposed),
                random_state=np.random.default_rng(seed),
            )
            next(search)
            algo.in_algo = False
            n_before = len(algo.proposed)
            try:
                search.send(max_evals - n_before)
            except Exception as exc:  # a trial raised inside hpsklearn: record it, resume
                last = algo.proposed[-1] if algo.proposed else None
                if algo.in_algo or last is None or len(algo.proposed) == n_before or last["tid"] in errors:
                    raise
                errors[last["tid"]] = (f"{type(exc).__name__}: {exc}", time.perf_counter() - last["t0"])
            finally:
                search.close()
    seconds = time.perf_counter() - start

    n_fit = int(len(Xs) * (1 - valid_size))
    table = _trial_table(estim, algo.proposed, errors, n_fit, X.shape[1], trial_timeout, seed)
    n_failed = int((table.status != "ok").sum())
    if n_failed == len(table):
        hints = []
        if np.isnan(X).any():
            hints.append(f"X has {int(np.isnan(X).sum())} NaN values: impute them")
        if table.error.str.startswith("TimeOut").any():
            hints.append("some trials timed out: raise trial_timeout")
        raise TlrlError(
            f"AutoML: all {len(table)} trials failed; first error: {table.error.iloc[0]}"
            + (f" ({'; '.join(hints)})" if hints else "")
        )

    best_row = table.loc[table.loss.idxmin()]
    best = estim.best_model()
    pipeline = _pipeline(best["preprocs"], best["learner"], n_fit, X.shape[1], seed)
    model_class = type(pipeline.steps[-1][1]).__name__
    if model_class != best_row.model_class:  # hpsklearn's record and ours must agree
        raise RuntimeError(f"AutoML bookkeeping: best trial is {best_row.model_class}, hpsklearn kept {model_class}")
    return SearchResult(
        best_pipeline=pipeline,
        best_model_class=model_class,
        best_params=_json_params(pipeline),
        trials=table,
        n_failed=n_failed,
        seconds=seconds,
        best_loss=float(best_row.loss),
        n_startup_jobs=n_startup,
        extra={
            "valid_size": valid_size,
            "n_rows": len(Xs),
            "regressors": list(regressors),
            "preprocessing": list(preprocessing),
        },
    )


def _pipeline(preprocs, learner, n_fit_rows: int, n_features: int, seed: int) -> Pipeline:
    """Unfitted clones of the preprocessing steps and the regressor, as one Pipeline.

    PCA's ``n_components`` is capped as hpsklearn caps it during a trial, and PCA gets
    ``random_state=seed`` (hpsklearn's ``pca`` cannot take one, so inside the search its
    randomized SVD is unseeded; the returned pipeline refits reproducibly).
    """
    from sklearn.base import clone
    from sklearn.decomposition import PCA

    steps, used = [], set()
    for step in preprocs or []:
        step = clone(step)
        if isinstance(step, PCA) and isinstance(step.n_components, int | np.integer):
            step.set_params(n_components=int(min(step.n_components, n_fit_rows, n_features)))
        if isinstance(step, PCA):
            step.set_params(random_state=seed)
        name = type(step).__name__.lower()
        while name in used:
            name += "_"
        used.add(name)
        steps.append((name, step))
    steps.append(("regressor", clone(learner)))
    return Pipeline(steps)


def _json_value(v: Any):
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else repr(float(v))
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return repr(v)


def _json_params(pipeline: Pipeline) -> dict:
    """``step__param`` -> JSON-safe value (tuples become lists, objects their repr), every step."""
    return {k: _json_value(v) for k, v in pipeline.get_params(deep=True).items() if "__" in k}


def _trial_table(estim, proposed, errors, n_fit, n_features, trial_timeout, seed) -> pd.DataFrame:
    from hyperopt import STATUS_OK, space_eval

    docs = {doc["tid"]: doc for doc in estim.trials.trials}
    rows = []
    for k, prop in enumerate(proposed):
        point = space_eval(estim.space, prop["vals"])
        if hasattr(point["regressor"], "n_jobs"):  # as hpsklearn does in each trial
            point["regressor"].n_jobs = estim.n_jobs
        pipeline = _pipeline(point["preprocessing"], point["regressor"], n_fit, n_features, seed)
        row = {
            "trial": k,
            "model_class": type(pipeline.steps[-1][1]).__name__,
            "params": json.dumps(_json_params(pipeline), sort_keys=True),
            "loss": math.nan,
            "status": "fail",
            "seconds": math.nan,
            "error": "",
        }
        if prop["tid"] in errors:
            row["error"], row["seconds"] = errors[prop["tid"]]
        else:
            doc = docs[prop["tid"]]
            result = doc["result"]
            row["seconds"] = (doc["refresh_time"] - doc["book_time"]).total_seconds()
            if result.get("status") == STATUS_OK:
                row["loss"], row["status"] = float(result["loss"]), "ok"
            else:
                row["error"] = _failure_text(result.get("failure", "unknown failure"), pipeline, trial_timeout)
        rows.append(row)
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def _failure_text(failure: str, pipeline: Pipeline, trial_timeout) -> str:
    """hpsklearn's terse ``failure`` strings, made readable."""
    if failure == "TimeOut":
        return f"TimeOut: the trial ran past trial_timeout={trial_timeout:g} s"
    if any(failure == str(step) for _, step in pipeline.steps[:-1]):  # hpsklearn's _NonFiniteFeature
        return f"non-finite features after preprocessing step {failure}"
    return str(failure)


def fit_pipeline(pipeline: Pipeline, X: np.ndarray, y: np.ndarray) -> Pipeline:
    """A fitted clone of ``pipeline``, single-threaded as in the search (OpenMP learners
    thrash when they share the cores with torch's threads)."""
    from sklearn.base import clone

    with threadpool_limits(1):
        return clone(pipeline).fit(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64))


def automl_fit(
    X: np.ndarray, y: np.ndarray, max_evals: int, trial_timeout: float, seed: int = 0, progress: bool = True
) -> tuple[Pipeline, SearchResult]:
    """Search on ``X, y``, then fit the chosen pipeline on all of them; returns it and the report."""
    search = automl_search(X, y, max_evals, trial_timeout, seed, progress)
    return fit_pipeline(search.best_pipeline, X, y), search

"""The paper's configurations (Table I), a peer baseline, and the protocol that evaluates one of them.

Protocol: K-fold CV on the train part gives the fold validation MAEs (reported as
mean ± std). The fold model with the best validation MAE is evaluated once on the
held-out test set (the paper's rule); the mean of all fold models is reported beside
it. Where a configuration has a layer to choose (the source layer of RL:DL and
TL+RL:DL, the number of frozen layers of TL:Freeze), the profile's ``layer_search``
picks it from the profile's grid: ``"cv"`` cross-validates every candidate (the
paper's way), ``"halving"`` runs successive halving on fold 0 (every candidate
trains briefly, the best 1/eta trains longer, and so on) and cross-validates only the
winner. Every evaluation of the search is kept in the metrics' ``sweep`` rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from tlrl import checkpoint
from tlrl.catalog import METHODS, N_HIDDEN, Method
from tlrl.data import as_dataset, cv_folds, dataset_name, default_cache_dir, load_dataset
from tlrl.errors import TlrlError
from tlrl.extras import require_for
from tlrl.featurize import featurize
from tlrl.io import atomic_dir, write_csv, write_json
from tlrl.model import NN17, copy_weights, freeze_first
from tlrl.outputs import claim_folder
from tlrl.predict import predict_array
from tlrl.profiles import Profile, get_profile
from tlrl.representation import Source, load_source, representation
from tlrl.train import fit_many

SWEEP_COLUMNS = ["method", "kind", "layer", "search", "rung", "folds", "epochs", "val_mae", "val_mae_std", "seconds"]


def get_method(slug: str) -> Method:
    if slug not in METHODS:
        raise TlrlError(f"unknown method {slug!r}: choose from {', '.join(METHODS)}")
    return METHODS[slug]


def training_profile(method: Method, profile: Profile) -> Profile:
    """The profile as ``method`` trains with it: the transfer learning rate for the networks that start
    as the whole source (TL, TL:Freeze), the scratch epochs and learning rate for SC:DL, and SC:DL(EF)'s
    own settings (``scratch_ef_train``)."""
    if method.learner != "nn17":
        return profile
    if method.init == "source" and profile.transfer_lr:
        return profile.with_(train__lr=profile.transfer_lr)
    if method.category != "SC":
        return profile
    changes = {"train__lr": profile.scratch_lr} if profile.scratch_lr else {}
    if profile.scratch_max_epochs:
        changes["train__max_epochs"] = profile.scratch_max_epochs
    if method.inputs == "ef":
        changes.update({f"train__{k}": v for k, v in profile.scratch_ef_train.items()})
    if "train__max_epochs" in changes and "train__patience" not in changes:
        changes["train__patience"] = max(profile.train.patience, changes["train__max_epochs"])
    return profile.with_(**changes)


def prepare_data(
    dataset: str | Path | pd.DataFrame, profile: Profile, seed: int, data_dir: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test parts, each cut to the profile's row limits by a seeded sample."""
    df = as_dataset(dataset, seed) if isinstance(dataset, pd.DataFrame) else load_dataset(dataset, data_dir, seed=seed)
    train = df[df["split"] == "train"].reset_index(drop=True)
    test = df[df["split"] == "test"].reset_index(drop=True)
    if train.empty or test.empty:
        raise TlrlError(f"need both train and test rows, got {len(train)} train and {len(test)} test")
    if profile.max_train_rows and len(train) > profile.max_train_rows:
        train = train.sample(profile.max_train_rows, random_state=seed).reset_index(drop=True)
    if profile.max_test_rows and len(test) > profile.max_test_rows:
        test = test.sample(profile.max_test_rows, random_state=seed).reset_index(drop=True)
    return train, test


@dataclass
class Inputs:
    """Feature matrices for the train and test parts, and what they are."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    test_formulas: list[str]
    spec: dict  # the checkpoint card's "input" field


def base_features(
    train: pd.DataFrame, test: pd.DataFrame, kind: str, cache_dir: Path, progress: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """EF or PA for both parts (rows with unusable formulas are dropped with a warning); ``progress``: PA's bar."""
    out = []
    for part in (train, test):
        X, kept = featurize(part, kind, cache_dir=cache_dir / "features", progress=progress)
        out.append((np.nan_to_num(X.to_numpy(np.float32)), kept["target"].to_numpy(np.float32), kept))
    (Xtr, ytr, _), (Xte, yte, kept_test) = out
    return Xtr, ytr, Xte, yte, kept_test["formula"].tolist()


def build_inputs(
    method: Method, train: pd.DataFrame, test: pd.DataFrame, source: Source | None, layer: int | None,
    cache_dir: Path, progress: bool = False,
) -> Inputs:
    """The method's inputs: EF, PA (with a progress bar when asked), or the source's layer activations of EF."""
    kind = "pa" if method.inputs == "pa" else "ef"
    Xtr, ytr, Xte, yte, formulas = base_features(train, test, kind, cache_dir, progress)
    if method.inputs != "representation":
        return Inputs(Xtr, ytr, Xte, yte, formulas, {"kind": kind})
    acts = [representation(source, X, layer, method.activation, cache_dir / "activations") for X in (Xtr, Xte)]
    spec = {"kind": "representation", "source": source.ref, "source_digest": source.digest,
            "layer": layer, "activation": method.activation}
    return Inputs(acts[0], ytr, acts[1], yte, formulas, spec)


def new_models(method: Method, n_inputs: int, n: int, source: Source | None, seed: int, frozen: int = 0):
    """``n`` fresh NN-17s for ``method``, seeded ``seed * 1000 + k``: from scratch, or copied from the source
    (all layers, or all but the first), with ``frozen`` hidden layers fixed."""
    models = []
    for k in range(n):
        model = NN17(n_inputs, seed=seed * 1000 + k)
        if method.init != "scratch":
            copy_weights(source.model, model, skip_first=method.init == "source_but_first")
        freeze_first(model, frozen)
        models.append(model)
    return models


def cross_validate(
    method: Method, inputs: Inputs, source: Source | None, profile: Profile, seed: int, frozen: int = 0,
    n_first_folds: int | None = None,
) -> tuple[list, list[float], dict]:
    """Train one model per fold (or per one of the first ``n_first_folds``); return the fitted
    models, their val MAEs and extras. ``frozen``: how many hidden layers stay fixed."""
    folds = cv_folds(len(inputs.X_train), profile.n_folds, seed)[:n_first_folds]
    if method.learner == "automl":
        return _cross_validate_automl(inputs, folds, profile, seed)
    if method.learner == "hgb":
        return _cross_validate_sklearn(lambda X, y: peer_model(seed).fit(X, y), inputs, folds, {})
    models = new_models(method, inputs.X_train.shape[1], len(folds), source, seed, frozen)
    results = fit_many(
        models, inputs.X_train, inputs.y_train, [tr for tr, _ in folds], [va for _, va in folds],
        profile.train.with_(seed=seed), seeds=[seed * 1000 + k for k in range(len(folds))],
    )
    histories = [r.history.assign(fold=k) for k, r in enumerate(results)]
    return models, [r.best_val_mae for r in results], {"history": pd.concat(histories, ignore_index=True)}


def peer_model(seed: int):
    """The peer baseline: scikit-learn's HistGradientBoostingRegressor with an MAE loss and up to
    1,000 early-stopped iterations (its default 100 underfit 25k rows); defaults otherwise."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(loss="absolute_error", max_iter=1000, random_state=seed)


def _cross_validate_sklearn(fit_one, inputs: Inputs, folds, extras: dict):
    """``fit_one(X, y)`` on each fold's train rows; its MAE on the fold's val rows."""
    models, maes = [], []
    for tr, va in folds:
        model = fit_one(inputs.X_train[tr], inputs.y_train[tr])
        maes.append(float(np.mean(np.abs(model.predict(inputs.X_train[va]) - inputs.y_train[va]))))
        models.append(model)
    return models, maes, extras


def _cross_validate_automl(inputs: Inputs, folds, profile: Profile, seed: int):
    """One AutoML search on the whole train part, then CV of the chosen pipeline.

    The search validates on a split of the train part only; the test set never reaches it.
    """
    require_for([slug for slug, m in METHODS.items() if m.learner == "automl"])
    from tlrl.automl import automl_search, fit_pipeline

    search = automl_search(inputs.X_train, inputs.y_train, profile.automl_evals, profile.automl_trial_timeout, seed,
                           regressors=profile.automl_regressors, preprocessing=profile.automl_preprocessing)
    extras = {"trials": search.trials, "best_model_class": search.best_model_class,
              "best_params": search.best_params, "automl_failed_trials": search.n_failed}
    return _cross_validate_sklearn(partial(fit_pipeline, search.best_pipeline), inputs, folds, extras)


@dataclass(frozen=True)
class Fit:
    """One stacked ``fit_many`` call of a configuration: its folds (all, or the first ``folds``) at one
    ``layer``, for ``epochs`` (None: the profile's). ``search``: "cv" or "halving" for a layer search's
    candidate at ``rung``, None for the fit of the chosen layer."""

    layer: int | None
    search: str | None = None
    rung: int = 1
    folds: int | None = None
    epochs: int | None = None

    @property
    def name(self) -> str:
        """A file name: ``halving-r1-L3``, ``cv-r1-L3``, ``final-L3`` or ``final``."""
        at = "" if self.layer is None else f"-L{self.layer}"
        return f"{self.search}-r{self.rung}{at}" if self.search else f"final{at}"


@dataclass
class FitResult:
    """What a ``Fit`` gives: its folds' validation MAEs and, for a whole CV, every fold model's test predictions."""

    fold_val_mae: list[float]
    seconds: float
    n_train: int
    spec: dict  # the inputs, as the checkpoint card's "input" field
    test: pd.DataFrame | None = None  # formula, target and fold_<k>: each fold model's prediction
    history: pd.DataFrame | None = None
    extras: dict = field(default_factory=dict)  # AutoML's trials and choice
    models: list | None = None  # kept in memory only, for checkpoints

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_val_mae))


# the steps of one configuration: it yields the next fits, receives their results, and returns the fit
# to test, its layer and the search's sweep rows
Protocol = Generator[list[Fit], list[FitResult], tuple[Fit, int | None, list[dict]]]


def protocol(method: Method, slug: str, profile: Profile, layer: int | None = None) -> Protocol:
    """The fits that evaluate a configuration, in the order the search needs them.

    Without a layer to search (or with ``layer`` given): one CV at that layer. ``"cv"``: a CV of every
    candidate at once, the lowest mean wins and is the one tested. ``"halving"``: each rung trains its
    candidates on fold 0 and keeps the best 1/eta, then the winner is cross-validated.
    """
    if not method.searches_layer or layer is not None:
        layer = layer if layer is not None else method.fixed_layer
        yield [Fit(layer)]
        return Fit(layer), layer, []
    kind = "frozen" if method.freezes else method.activation
    sweep: list[dict] = []

    def record(fits: list[Fit], results: list[FitResult]) -> None:
        for f, r in zip(fits, results, strict=True):
            maes = r.fold_val_mae
            values = [slug, kind, f.layer, f.search, f.rung, len(maes), f.epochs, r.mean,
                      float(np.std(maes)) if len(maes) > 1 else None, r.seconds]
            sweep.append(dict(zip(SWEEP_COLUMNS, values, strict=True)))

    if profile.layer_search == "cv":
        fits = [Fit(k, "cv", 1, None, profile.train.max_epochs) for k in profile.layers]
        results = yield fits
        record(fits, results)
        best = fits[min(range(len(fits)), key=lambda i: results[i].mean)]
        return best, best.layer, sweep
    survivors = list(profile.layers)
    for rung, epochs in enumerate(profile.halving_epochs, start=1):
        fits = [Fit(k, "halving", rung, 1, epochs) for k in survivors]
        results = yield fits
        record(fits, results)
        scores = {f.layer: r.fold_val_mae[0] for f, r in zip(fits, results, strict=True)}
        survivors = sorted(survivors, key=scores.get)[: max(1, math.ceil(len(survivors) / profile.halving_eta))]
        if len(survivors) == 1:
            break
    chosen = Fit(survivors[0])
    yield [chosen]
    return chosen, chosen.layer, sweep


def drive(steps: Generator, execute: Callable[[list], list]):
    """Run a generator of steps (such as ``protocol``) to its end, ``execute`` doing each step; its return value."""
    results = None
    try:
        while True:
            results = execute(steps.send(results))
    except StopIteration as stop:
        return stop.value


def fit(method: Method, spec: Fit, train: pd.DataFrame, test: pd.DataFrame, source: Source | None,
        profile: Profile, seed: int, cache: Path, keep_models: bool = False) -> FitResult:
    """Train ``spec``'s folds; a whole CV also predicts the test rows with each fold model.

    ``profile``: the configuration's own (``training_profile``); ``keep_models``: return the models too.
    """
    start = time.perf_counter()
    inputs = build_inputs(method, train, test, source, spec.layer, cache, profile.train.progress)
    if spec.epochs is not None:
        profile = profile.with_(train__max_epochs=spec.epochs, train__patience=min(spec.epochs, profile.train.patience))
    frozen = spec.layer if method.freezes else 0
    models, maes, extras = cross_validate(method, inputs, source, profile, seed, frozen, spec.folds)
    table = None
    if spec.folds is None:
        table = pd.DataFrame({"formula": inputs.test_formulas, "target": inputs.y_test,
                              **{f"fold_{k}": _predict(model, inputs.X_test) for k, model in enumerate(models)}})
    return FitResult([float(v) for v in maes], time.perf_counter() - start, len(inputs.X_train), inputs.spec, table,
                     extras.pop("history", None), extras, models if keep_models else None)


def _predict(model, X: np.ndarray) -> np.ndarray:
    return predict_array(model, X) if isinstance(model, NN17) else model.predict(X)


def fold_tests(result: FitResult) -> tuple[int, np.ndarray, float, float]:
    """The paper's rule and ours on the test rows: the best fold (lowest validation MAE), every fold
    model's test predictions, and the test MAE of the best fold's model and of the fold ensemble."""
    best_fold = int(np.argmin(result.fold_val_mae))
    preds = result.test.filter(like="fold_").to_numpy().T
    y = result.test["target"].to_numpy()
    errors = [float(np.mean(np.abs(p - y))) for p in (preds[best_fold], preds.mean(0))]
    return best_fold, preds, *errors


def run(
    method: str,
    dataset: str | Path | pd.DataFrame,
    source: str | Path | None = None,
    layer: int | None = None,
    profile: str | Profile = "quick",
    seed: int = 0,
    data_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    save_models: bool = True,
) -> dict:
    """Run one configuration end to end, in this process, and return its metrics.

    With ``out_dir`` it writes ``metrics.json``, ``test_predictions.csv`` and the training
    history, plus (NN-17 methods, ``save_models``) one checkpoint per fold for ``tlrl predict``.
    """
    start = time.perf_counter()
    m = get_method(method)
    prof = get_profile(profile)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if layer is not None and (isinstance(layer, bool) or not isinstance(layer, (int, np.integer))):
        raise TlrlError(f"layer must be an integer, got {layer!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TlrlError(f"seed must be an integer from 0 to {2**32 - 1}, got {seed!r}")
    if layer is not None and not m.searches_layer:
        fixed = f": it always uses the last hidden layer ({m.fixed_layer})" if m.fixed_layer else ""
        raise TlrlError(f"method {method!r} takes no --layer{fixed}")
    if layer is not None and not 1 <= layer <= N_HIDDEN - 1:
        raise TlrlError(f"layer must be in 1..{N_HIDDEN - 1}, got {layer}")
    if not 0 <= seed < 2**32:
        raise TlrlError(f"seed must be an integer from 0 to {2**32 - 1}, got {seed}")
    if out_dir is not None:
        claim_folder(out_dir, "fit", force=True, inputs=[_path_of(dataset), source])
    src = load_source(source) if m.uses_source else None
    described, prof = prof.reductions, training_profile(m, prof)
    train, test = prepare_data(dataset, prof, seed, data_dir)
    results: dict[Fit, FitResult] = {}

    def execute(fits: list[Fit]) -> list[FitResult]:
        for f in fits:  # only the best whole CV so far keeps its models: the one tested is that one
            results[f] = fit(m, f, train, test, src, prof, seed, cache, keep_models=save_models)
            cvs = [r for r in results.values() if r.test is not None]
            best = min(cvs, key=lambda r: r.mean) if cvs else None
            for r in results.values():
                if r is not best:
                    r.models = None
        return [results[f] for f in fits]

    chosen, layer, sweep = drive(protocol(m, method, prof, layer), execute)
    metrics = metrics_of(method, dataset, results[chosen], layer, sweep, prof, described, src and src.ref, seed,
                         time.perf_counter() - start)
    if out_dir is not None:
        write_run(Path(out_dir), metrics, results[chosen], prof)
    return metrics


def metrics_of(slug: str, dataset: str | Path | pd.DataFrame, result: FitResult, layer: int | None, sweep: list[dict],
               profile: Profile, described: str, source: str | None, seed: int, seconds: float) -> dict:
    """A configuration's metrics from the fit it tests (``result``) and its search's ``sweep`` rows;
    ``profile``: the configuration's own, ``described``: the profile's reductions, ``source``: its ref."""
    m = get_method(slug)
    maes = result.fold_val_mae
    best_fold, _, test_mae, test_mae_ensemble = fold_tests(result)
    return {
        "method": slug,
        "paper_name": m.paper_name,
        "category": m.category,
        "dataset": dataset_name(dataset),
        "n_train": result.n_train,
        "n_test": len(result.test),
        "n_folds": len(maes),
        "fold_val_mae": maes,
        "cv_mae_mean": result.mean,
        "cv_mae_std": float(np.std(maes)),
        "best_fold": best_fold,
        "best_layer": layer,
        "layer_search": profile.layer_search if sweep else None,
        "test_mae": test_mae,
        "test_mae_ensemble": test_mae_ensemble,
        "input": result.spec,
        "source": source,
        "profile": profile.name,
        "reductions": described,
        "seed": seed,
        "seconds": seconds,
        "sweep": sweep,
        **{k: v for k, v in result.extras.items() if k in ("best_model_class", "best_params", "automl_failed_trials")},
    }


def _path_of(dataset: str | Path | pd.DataFrame) -> str | Path | None:
    """The file a dataset was read from, if it is one."""
    return None if isinstance(dataset, pd.DataFrame) else dataset


def write_run(out: Path, metrics: dict, result: FitResult, prof: Profile) -> None:
    """Write the run folder as a whole (an earlier run there is replaced, never mixed in): the fold
    checkpoints where ``result`` kept its models, the test predictions, the history and the metrics."""
    with atomic_dir(out) as tmp:
        _write_run_files(tmp, metrics, result, prof)


def _write_run_files(out: Path, metrics: dict, result: FitResult, prof: Profile) -> None:
    best_fold, preds, _, _ = fold_tests(result)
    y = result.test["target"].to_numpy()
    for k, model in enumerate(result.models or []):  # the models first: on a full disk they are what is kept
        if isinstance(model, NN17):
            history = result.history
            card = {"input": result.spec, "task": {"dataset": metrics["dataset"], "method": metrics["method"]},
                    "profile": prof.name, "seed": metrics["seed"], "fold": k,
                    "history": history[history.fold == k].drop(columns="fold").to_dict(orient="list"),
                    "val_mae": metrics["fold_val_mae"][k], "test_mae": float(np.mean(np.abs(preds[k] - y)))}
            checkpoint.save(model, out / f"fold_{k}", card)
    table = result.test[["formula", "target"]].assign(pred_best_fold=preds[best_fold], pred_ensemble=preds.mean(0))
    for name, frame in (("test_predictions.csv", table), ("history.csv", result.history),
                        ("automl_trials.csv", result.extras.get("trials"))):
        if frame is not None:
            write_csv(out / name, frame)
    write_json(out / "metrics.json", metrics)

"""The paper's configurations (Table I) and the protocol that evaluates one of them.

Protocol: K-fold CV on the train part gives the fold validation MAEs (reported as
mean ± std). The fold model with the best validation MAE is evaluated once on the
held-out test set (the paper's rule); the mean of all fold models is reported beside
it. For RL and TL+RL without a fixed layer, every layer of the profile's grid is
cross-validated and the layer with the lowest mean CV MAE is chosen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from tlrl import checkpoint
from tlrl.data import cv_folds, default_cache_dir, load_dataset
from tlrl.errors import TlrlError
from tlrl.featurize import featurize
from tlrl.io import atomic_write, write_json
from tlrl.model import N_HIDDEN, NN17, copy_weights, freeze_first
from tlrl.predict import predict_array
from tlrl.profiles import Profile, get_profile
from tlrl.representation import Source, load_source, representation
from tlrl.train import fit_many


@dataclass(frozen=True)
class Method:
    """One row of the paper's Table I."""

    paper_name: str
    category: Literal["SC", "TL", "RL", "TL+RL"]
    inputs: Literal["ef", "pa", "representation"]
    init: Literal["scratch", "source", "source_but_first"] = "scratch"
    learner: Literal["nn17", "automl"] = "nn17"
    activation: Literal["relu", "dense"] = "relu"
    fixed_layer: int | None = None  # RL:Freezing always uses the last hidden layer
    freezes: bool = False

    @property
    def sweeps_layers(self) -> bool:
        return self.inputs == "representation" and self.fixed_layer is None


METHODS: dict[str, Method] = {
    "sc-ml-ef": Method("SC:ML(EF)", "SC", "ef", learner="automl"),
    "sc-ml-pa": Method("SC:ML(PA)", "SC", "pa", learner="automl"),
    "sc-dl-ef": Method("SC:DL(EF)", "SC", "ef"),
    "sc-dl-pa": Method("SC:DL(PA)", "SC", "pa"),
    "tl-finetune": Method("TL:Fine-Tune", "TL", "ef", init="source"),
    "tl-freeze": Method("TL:Freeze(k)+Fine-Tune", "TL", "ef", init="source", freezes=True),
    "rl-freezing": Method("RL:Freezing", "RL", "representation", fixed_layer=N_HIDDEN),
    "rl-dl-relu": Method("RL:DL(ReLU)", "RL", "representation", activation="relu"),
    "rl-dl-dense": Method("RL:DL(Dense)", "RL", "representation", activation="dense"),
    "tlrl-dl-relu": Method("TL+RL:DL(ReLU)", "TL+RL", "representation", init="source_but_first", activation="relu"),
    "tlrl-dl-dense": Method("TL+RL:DL(Dense)", "TL+RL", "representation", init="source_but_first", activation="dense"),
}


def get_method(slug: str) -> Method:
    if slug not in METHODS:
        raise TlrlError(f"unknown method {slug!r}: choose from {', '.join(METHODS)}")
    return METHODS[slug]


def prepare_data(
    dataset: str | Path | pd.DataFrame, profile: Profile, seed: int, data_dir: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test parts, each cut to the profile's row limits by a seeded sample."""
    df = dataset if isinstance(dataset, pd.DataFrame) else load_dataset(dataset, data_dir, seed=seed)
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
    train: pd.DataFrame, test: pd.DataFrame, kind: str, cache_dir: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """EF or PA for both parts (rows with unusable formulas are dropped with a warning)."""
    out = []
    for part in (train, test):
        X, kept = featurize(part, kind, cache_dir=cache_dir / "features", progress=False)
        out.append((np.nan_to_num(X.to_numpy(np.float32)), kept["target"].to_numpy(np.float32), kept))
    (Xtr, ytr, _), (Xte, yte, kept_test) = out
    return Xtr, ytr, Xte, yte, kept_test["formula"].tolist()


def build_inputs(
    method: Method, train: pd.DataFrame, test: pd.DataFrame, source: Source | None, layer: int | None,
    cache_dir: Path,
) -> Inputs:
    """The method's inputs: EF, PA, or the source's layer activations of EF."""
    kind = "pa" if method.inputs == "pa" else "ef"
    Xtr, ytr, Xte, yte, formulas = base_features(train, test, kind, cache_dir)
    if method.inputs != "representation":
        return Inputs(Xtr, ytr, Xte, yte, formulas, {"kind": kind})
    acts = [representation(source, X, layer, method.activation, cache_dir / "activations") for X in (Xtr, Xte)]
    spec = {"kind": "representation", "source": source.ref, "source_digest": source.digest,
            "layer": layer, "activation": method.activation}
    return Inputs(acts[0], ytr, acts[1], yte, formulas, spec)


def _new_models(method: Method, n_inputs: int, n: int, source: Source | None, profile: Profile, seed: int):
    models = []
    for k in range(n):
        model = NN17(n_inputs, seed=seed * 1000 + k)
        if method.init != "scratch":
            copy_weights(source.model, model, skip_first=method.init == "source_but_first")
        if method.freezes:
            freeze_first(model, profile.freeze_layers)
        models.append(model)
    return models


def cross_validate(
    method: Method, inputs: Inputs, source: Source | None, profile: Profile, seed: int
) -> tuple[list, list[float], dict]:
    """Train one model per fold; return the fitted models, their val MAEs and extras."""
    folds = cv_folds(len(inputs.X_train), profile.n_folds, seed)
    if method.learner == "automl":
        return _cross_validate_automl(inputs, folds, profile, seed)
    models = _new_models(method, inputs.X_train.shape[1], len(folds), source, profile, seed)
    results = fit_many(
        models, inputs.X_train, inputs.y_train, [tr for tr, _ in folds], [va for _, va in folds],
        profile.train.with_(seed=seed), seeds=[seed * 1000 + k for k in range(len(folds))],
    )
    histories = [r.history.assign(fold=k) for k, r in enumerate(results)]
    return models, [r.best_val_mae for r in results], {"history": pd.concat(histories, ignore_index=True)}


def _cross_validate_automl(inputs: Inputs, folds, profile: Profile, seed: int):
    """One AutoML search on the whole train part, then CV of the chosen pipeline.

    The search validates on a split of the train part only; the test set never reaches it.
    """
    from tlrl.automl import automl_search, fit_pipeline

    search = automl_search(inputs.X_train, inputs.y_train, profile.automl_evals, profile.automl_trial_timeout, seed)
    models, maes = [], []
    for tr, va in folds:
        model = fit_pipeline(search.best_pipeline, inputs.X_train[tr], inputs.y_train[tr])
        maes.append(float(np.mean(np.abs(model.predict(inputs.X_train[va]) - inputs.y_train[va]))))
        models.append(model)
    extras = {"trials": search.trials, "best_model_class": search.best_model_class,
              "best_params": search.best_params, "automl_failed_trials": search.n_failed}
    return models, maes, extras


def _predict(model, X: np.ndarray) -> np.ndarray:
    return predict_array(model, X) if isinstance(model, NN17) else model.predict(X)


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
    """Run one configuration end to end and return its metrics.

    With ``out_dir`` it writes ``metrics.json``, ``test_predictions.csv`` and the training
    history, plus (NN-17 methods, ``save_models``) one checkpoint per fold for ``tlrl predict``.
    """
    start = time.perf_counter()
    m = get_method(method)
    prof = get_profile(profile)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if layer is not None and not (m.inputs == "representation" or m.freezes):
        raise TlrlError(f"method {method!r} takes no --layer")
    if layer is not None and not 1 <= layer <= N_HIDDEN - 1:
        raise TlrlError(f"layer must be in 1..{N_HIDDEN - 1}, got {layer}")
    src = load_source(source) if m.init != "scratch" or m.inputs == "representation" else None
    if m.freezes and layer is not None:
        prof = prof.with_(freeze_layers=layer)
    train, test = prepare_data(dataset, prof, seed, data_dir)

    layers = prof.layers if m.sweeps_layers and layer is None else [layer or m.fixed_layer]
    sweep, best = [], None
    for k in layers:
        inputs = build_inputs(m, train, test, src, k, cache)
        models, maes, extras = cross_validate(m, inputs, src, prof, seed)
        sweep.append({"method": method, "kind": m.activation, "layer": k,
                      "cv_mae_mean": float(np.mean(maes)), "cv_mae_std": float(np.std(maes))})
        if best is None or np.mean(maes) < np.mean(best[2]):
            best = (k, inputs, maes, models, extras)
    best_layer, inputs, maes, models, extras = best

    best_fold = int(np.argmin(maes))
    preds = np.stack([_predict(model, inputs.X_test) for model in models])
    metrics = {
        "method": method,
        "paper_name": m.paper_name,
        "category": m.category,
        "dataset": dataset if isinstance(dataset, str) else "dataframe",
        "n_train": len(inputs.X_train),
        "n_test": len(inputs.X_test),
        "n_folds": len(maes),
        "fold_val_mae": [float(v) for v in maes],
        "cv_mae_mean": float(np.mean(maes)),
        "cv_mae_std": float(np.std(maes)),
        "best_fold": best_fold,
        "best_layer": prof.freeze_layers if m.freezes else best_layer if m.inputs == "representation" else None,
        "test_mae": float(np.mean(np.abs(preds[best_fold] - inputs.y_test))),
        "test_mae_ensemble": float(np.mean(np.abs(preds.mean(0) - inputs.y_test))),
        "input": inputs.spec,
        "source": src.ref if src else None,
        "profile": prof.name,
        "reductions": prof.reductions,
        "seed": seed,
        "seconds": time.perf_counter() - start,
        "sweep": sweep,
        **{k: v for k, v in extras.items() if k in ("best_model_class", "best_params", "automl_failed_trials")},
    }
    if out_dir is not None:
        _write_run(Path(out_dir), metrics, models if save_models else [], inputs, preds, best_fold, extras, prof)
    return metrics


def _write_run(out: Path, metrics: dict, models, inputs: Inputs, preds, best_fold: int, extras: dict, prof) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({"formula": inputs.test_formulas, "target": inputs.y_test,
                          "pred_best_fold": preds[best_fold], "pred_ensemble": preds.mean(0)})
    for name, frame in (("test_predictions.csv", table), ("history.csv", extras.get("history")),
                        ("automl_trials.csv", extras.get("trials"))):
        if frame is not None:
            with atomic_write(out / name) as tmp:
                frame.to_csv(tmp, index=False)
    for k, model in enumerate(models):
        if isinstance(model, NN17):
            history = extras["history"]
            card = {"input": inputs.spec, "task": {"dataset": metrics["dataset"], "method": metrics["method"]},
                    "profile": prof.name, "seed": metrics["seed"], "fold": k,
                    "history": history[history.fold == k].drop(columns="fold").to_dict(orient="list"),
                    "val_mae": metrics["fold_val_mae"][k], "test_mae": float(np.mean(np.abs(preds[k] - inputs.y_test)))}
            checkpoint.save(model, out / f"fold_{k}", card)
    write_json(out / "metrics.json", metrics)

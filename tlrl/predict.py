"""Predictions from trained NN-17 models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tlrl import checkpoint
from tlrl.catalog import model_dir
from tlrl.errors import TlrlError
from tlrl.featurize import check_errors, nonfinite_rows, parse_formulas, physical_attributes, report_problems
from tlrl.model import NN17
from tlrl.representation import load_source, representation


@torch.no_grad()
def predict_array(model: NN17, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """Model outputs for a feature matrix, in batches, without gradients."""
    model.eval()
    device = next(model.parameters()).device
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    out = [model(X[s : s + batch_size].to(device)).cpu() for s in range(0, len(X), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def _expand(model_dirs: list[str | Path]) -> list[Path]:
    """Checkpoint dirs; a run dir stands for all its ``fold_*`` checkpoints. A model given twice, or a
    run that kept no models, is an error."""
    if not model_dirs or not all(isinstance(d, (str, Path)) for d in model_dirs):
        raise TlrlError(f"give a model as a checkpoint or run folder (or a list of them), got {model_dirs!r}")
    paths = []
    for d in map(model_dir, model_dirs):
        folds = sorted(d.glob("fold_*/card.json"))
        if not folds and not (d / checkpoint.CARD).exists():
            _no_models(d)
        paths += [f.parent for f in folds] if folds else [d]
    seen: dict[Path, Path] = {}
    for path in paths:
        if path.resolve() in seen:
            raise TlrlError(f"the model {path} is given twice (it would count double in the ensemble)")
        seen[path.resolve()] = path
    return paths


def _no_models(run: Path) -> None:
    """Explain a run folder without checkpoints: its method keeps none, or a benchmark did not save them."""
    from tlrl.methods import METHODS  # here: tlrl.methods imports this module

    try:
        metrics = json.loads((run / "metrics.json").read_text())
        method = METHODS[metrics["method"]]
    except (OSError, ValueError, KeyError, TypeError):
        return  # not a run folder: checkpoint.load says what is missing
    if method.learner != "nn17":
        raise TlrlError(f"{run} is a run of {metrics['method']} ({method.paper_name}), which keeps no models: only "
                        "the NN-17 methods save checkpoints for predict")
    raise TlrlError(f"{run} holds the metrics of {metrics['method']} but no models ('tlrl benchmark' keeps none); "
                    f"run 'tlrl fit --method {metrics['method']}' for models to predict with")


def _formulas(formulas) -> pd.Series:
    """Formulas as text: one string, a list, an array, a Series, or a frame's ``formula`` column."""
    if isinstance(formulas, str):
        return pd.Series([formulas], dtype="object")
    if isinstance(formulas, pd.DataFrame):
        if "formula" not in formulas.columns:
            raise TlrlError(f"a frame of formulas needs a 'formula' column; it has {list(formulas.columns)}")
        formulas = formulas["formula"]
    if not isinstance(formulas, (list, tuple, pd.Series, pd.Index, np.ndarray)):
        raise TlrlError(f"formulas must be a string, a list, a Series or a frame with a 'formula' column, "
                        f"got {type(formulas).__name__}")
    return pd.Series(list(formulas), dtype="object").astype(str)


def features_for(spec: dict, formulas: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The inputs a checkpoint's card asks for, one row per formula, and each row's problem ('' if none).

    Rows with a problem hold zeros and must not be predicted.
    """
    X, problems = parse_formulas(formulas)
    ok = problems == ""
    kind = spec.get("kind")
    if kind == "ef":
        return X, problems
    if kind == "pa":
        pa = np.zeros((len(X), 0), np.float32)
        if ok.any():
            values = physical_attributes(pd.Series(formulas)[ok].tolist(), progress=False).to_numpy()
            problems[np.flatnonzero(ok)[nonfinite_rows(values)]] = "non-finite PA attribute"
            pa = np.zeros((len(X), values.shape[1]), np.float32)
            with np.errstate(over="ignore"):
                pa[ok] = np.nan_to_num(values.astype(np.float32))  # NaN: an attribute the element lacks
            pa[problems != ""] = 0
        return pa, problems
    if kind == "representation":
        source = load_source(spec["source"])
        if source.digest != spec.get("source_digest", source.digest):
            raise TlrlError(f"the source model at {spec['source']} is not the one this model was trained on")
        return representation(source, X, int(spec["layer"]), spec["activation"]), problems
    raise TlrlError(f"unknown input kind {kind!r} in the model card")


def predict(model_dirs: str | Path | list[str | Path], formulas, errors: str = "warn") -> pd.DataFrame:
    """Predictions for formulas: one row per formula, in order.

    Columns ``formula, prediction, std, problem``: the mean and std over the models (a run
    folder stands for its fold models; std is empty for one model), and why a row has no
    prediction ('' when it has one). ``errors='raise'`` makes any unusable formula an error.
    """
    check_errors(errors)
    formulas = _formulas(formulas)
    paths = _expand(list(model_dirs) if isinstance(model_dirs, (list, tuple)) else [model_dirs])
    loaded = [checkpoint.load(p) for p in paths]
    for path, (_, card) in zip(paths, loaded):
        if "input" not in card:
            raise TlrlError(f"checkpoint {path} does not fit the schema: its {checkpoint.CARD} has no 'input' "
                            "saying what the model takes")
    specs = {json.dumps(card["input"], sort_keys=True) for _, card in loaded}
    if len(specs) > 1:
        raise TlrlError(f"the models take different inputs and cannot form one ensemble: {sorted(specs)}")
    X, problems = features_for(loaded[0][1]["input"], formulas)
    report_problems(formulas, problems, errors, "their prediction is left empty, the problem column says why")
    for path, (model, _) in zip(paths, loaded):
        if X.shape[1] != model.n_inputs:
            raise TlrlError(f"{path} expects {model.n_inputs} inputs, the data gives {X.shape[1]}")
    ok = problems == ""
    preds = np.full((len(loaded), len(X)), np.nan)
    preds[:, ok] = np.stack([predict_array(model, X[ok]) for model, _ in loaded])
    overflow = ok & ~np.isfinite(preds).all(0)
    problems[overflow] = "the model's prediction is not finite (NaN or inf)"
    preds[:, overflow] = np.nan
    std = preds.std(0) if len(loaded) > 1 else np.full(len(X), np.nan)
    return pd.DataFrame({"formula": formulas.to_numpy(), "prediction": preds.mean(0), "std": std,
                         "problem": problems})

"""Predictions from trained NN-17 models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tlrl import checkpoint
from tlrl.errors import TlrlError
from tlrl.featurize import element_fractions, physical_attributes
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
    """Checkpoint dirs; a run dir stands for all its ``fold_*`` checkpoints."""
    paths = []
    for d in map(Path, model_dirs):
        folds = sorted(d.glob("fold_*/card.json"))
        paths += [f.parent for f in folds] if folds else [d]
    return paths


def features_for(spec: dict, formulas: pd.Series, errors: str = "warn") -> tuple[np.ndarray, np.ndarray]:
    """Build the inputs a checkpoint's card asks for; returns (X, kept-row mask)."""
    X, keep = element_fractions(formulas, errors=errors)
    kind = spec.get("kind")
    if kind == "ef":
        return X, keep
    if kind == "pa":
        pa = physical_attributes(pd.Series(formulas)[keep].tolist(), progress=False)
        return np.nan_to_num(pa.to_numpy(np.float32)), keep
    if kind == "representation":
        source = load_source(spec["source"])
        if source.digest != spec.get("source_digest", source.digest):
            raise TlrlError(f"the source model at {spec['source']} is not the one this model was trained on")
        return representation(source, X, int(spec["layer"]), spec["activation"]), keep
    raise TlrlError(f"unknown input kind {kind!r} in the model card")


def predict(model_dirs: str | Path | list[str | Path], formulas, errors: str = "warn") -> pd.DataFrame:
    """Predictions for formulas; several fold models give the ensemble mean and std."""
    paths = _expand([model_dirs] if isinstance(model_dirs, (str, Path)) else model_dirs)
    loaded = [checkpoint.load(p) for p in paths]
    specs = {json.dumps(card["input"], sort_keys=True) for _, card in loaded}
    if len(specs) > 1:
        raise TlrlError(f"the models take different inputs and cannot form one ensemble: {sorted(specs)}")
    formulas = pd.Series(list(formulas), dtype="object").astype(str)
    X, keep = features_for(loaded[0][1]["input"], formulas, errors)
    for path, (model, _) in zip(paths, loaded):
        if X.shape[1] != model.n_inputs:
            raise TlrlError(f"{path} expects {model.n_inputs} inputs, the data gives {X.shape[1]}")
    preds = np.stack([predict_array(model, X) for model, _ in loaded])
    out = pd.DataFrame({"formula": formulas[keep].to_numpy(), "prediction": preds.mean(0)})
    if len(loaded) > 1:
        out["std"] = preds.std(0)
    return out

"""The source model: NN-17 trained on OQMD formation enthalpy from element fractions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tlrl import checkpoint
from tlrl.data import filter_outliers, load_dataset
from tlrl.featurize import element_fractions
from tlrl.model import NN17
from tlrl.predict import predict_array
from tlrl.profiles import Profile, get_profile
from tlrl.train import fit


def split_train_val_test(n: int, seed: int, fractions=(0.8, 0.1, 0.1)) -> tuple[np.ndarray, ...]:
    """Seeded 80:10:10 row indices."""
    order = np.random.default_rng(seed).permutation(n)
    a = int(fractions[0] * n)
    b = a + int(fractions[1] * n)
    return order[:a], order[a:b], order[b:]


def pretrain(
    out_dir: str | Path,
    data: str = "oqmd_formation_enthalpy",
    profile: str | Profile = "quick",
    data_dir: str | Path | None = None,
    seed: int = 0,
) -> tuple[NN17, dict]:
    """Train the source model and save it with its card (OQMD test MAE included).

    Outliers are filtered first; the split is a seeded 80:10:10 train/val/test.
    A run that is interrupted resumes from ``out_dir/resume.pt``.
    """
    prof = get_profile(profile)
    df, n_outliers = filter_outliers(load_dataset(data, data_dir))
    if prof.pretrain_rows is not None:
        df = df.sample(n=min(prof.pretrain_rows, len(df)), random_state=seed).reset_index(drop=True)
    X, keep = element_fractions(df["formula"])
    y = df["target"].to_numpy(np.float32)[keep]
    tr, va, te = split_train_val_test(len(X), seed)
    model = NN17(X.shape[1], seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = fit(model, X[tr], y[tr], X[va], y[va], prof.pretrain.with_(seed=seed), resume_path=out_dir / "resume.pt")
    test_mae = float(np.mean(np.abs(predict_array(model, X[te]) - y[te])))
    card = {
        "input": {"kind": "ef"},
        "task": {"dataset": data, "target": "formation enthalpy (eV/atom)"},
        "rows": {"train": len(tr), "val": len(va), "test": len(te), "outliers_dropped": n_outliers,
                 "bad_formulas_dropped": int((~keep).sum())},
        "profile": prof.name,
        "train_config": result.config,
        "seed": seed,
        "history": result.history.to_dict(orient="list"),
        "best_epoch": result.best_epoch,
        "val_mae": result.best_val_mae,
        "test_mae": test_mae,
        "seconds": result.seconds,
    }
    checkpoint.save(model, out_dir, card)
    return model, card

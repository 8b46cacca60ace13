"""``tlrl.TransferRegressor`` in scikit-learn's ``cross_val_score`` on 500 experimental band gaps.

Run by hand, not by pytest::

    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_estimator_cv.py

500 seeded rows of ``expt_bandgap``, outer 5-fold CV (seeded), profile quick: the mean predictor,
SC:DL(EF) and TL:Fine-Tune. Prints each one's MAE per fold, their mean ± std (eV) and the seconds.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import KFold, cross_val_score

import tlrl
from tlrl.data import load_dataset


def main() -> None:
    df = load_dataset("expt_bandgap").sample(500, random_state=0)
    X, y = df["formula"].tolist(), df["target"].to_numpy()
    cv = KFold(5, shuffle=True, random_state=0)
    for name, estimator in [("mean predictor", DummyRegressor()),
                            ("TransferRegressor('sc-dl-ef')", tlrl.TransferRegressor("sc-dl-ef")),
                            ("TransferRegressor('tl-finetune')", tlrl.TransferRegressor("tl-finetune"))]:
        start = time.perf_counter()
        mae = -cross_val_score(estimator, X, y, cv=cv, scoring="neg_mean_absolute_error", error_score="raise")
        print(f"{name}: MAE per fold {np.round(mae, 3).tolist()}, mean {mae.mean():.3f} ± {mae.std():.3f} eV "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

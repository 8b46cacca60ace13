"""How the number of CV folds moves a network row of the benchmark: CV MAE, best-fold and ensemble test MAE.

Run by hand, not by pytest::

    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/gpu_check.py prepare --out artifacts/gpu_inputs
    .venv/bin/python benchmarks/bench_folds.py --inputs artifacts/gpu_inputs --methods sc-dl-ef,tl-finetune \
        --folds 5,10 [--seeds 0,1] [--device cuda] [--out results/bench_folds.csv]

Each row runs the benchmark's own protocol (``tlrl.methods.cross_validate`` with the profile's recipe
for that configuration) on all 25,297 JARVIS train rows with K folds, picks the fold with the lowest
validation MAE, and tests it and the K-fold ensemble on the 2,811 test rows. More folds give every
fold model more rows (K = 5: 20,237, K = 10: 22,767); K = 10 costs about 2.25 times the CV time of
K = 5 (twice the models, each on 12 % more rows).
Configurations on EF or PA only (no layer search): the prepared inputs hold no activations.
results/bench_folds.csv: SC:DL(EF) and TL:Fine-Tune under quick, K = 5 and 10, seeds 0-2, on a lent H200,
with SC:DL(EF) at batch 128 and lr 1e-3, quick's recipe then (seed 0 at K = 5 matches the CPU run of that
recipe to 0.0004); quick now trains it at batch 64 and lr 7e-4.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from gpu_check import load_inputs

from tlrl.io import write_csv
from tlrl.methods import Inputs, cross_validate, fold_tests, get_method, training_profile
from tlrl.profiles import get_profile
from tlrl.representation import load_source
from tlrl.train import device_name, pick_device


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", required=True, help="folder of gpu_check.py prepare's npz files")
    parser.add_argument("--methods", default="sc-dl-ef", help="comma-separated slugs (EF or PA inputs)")
    parser.add_argument("--folds", default="5,10", help="comma-separated K")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of the split and the inits")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--device", default=None, help="default: cuda, then mps, then cpu")
    parser.add_argument("--out", default=None, help="also write the table as CSV here")
    args = parser.parse_args(argv)
    device = device_name(pick_device(args.device))
    rows = []
    for slug in args.methods.split(","):
        method = get_method(slug)
        if method.inputs not in ("ef", "pa") or method.learner != "nn17" or method.searches_layer:
            raise SystemExit(f"{slug}: only network rows on EF or PA without a layer search")
        data = load_inputs(args.inputs, method.inputs)
        inputs = Inputs(data["X_train"], data["y_train"], data["X_test"], data["y_test"], [], {"kind": method.inputs})
        source = load_source() if method.uses_source else None
        base = training_profile(method, get_profile(args.profile, train__device=args.device, train__progress=False))
        for k in (int(v) for v in args.folds.split(",")):
            for seed in (int(v) for v in args.seeds.split(",")):
                start = time.perf_counter()
                models, maes, _ = cross_validate(method, inputs, source, base.with_(n_folds=k), seed)
                best, _, test_mae, test_mae_ensemble = fold_tests(models, maes, inputs)
                n_fold_train = len(inputs.X_train) * (k - 1) // k
                rows.append({"method": slug, "folds": k, "seed": seed, "fold_train_rows": n_fold_train,
                             "cv_mae": float(np.mean(maes)), "cv_std": float(np.std(maes)), "best_fold": best,
                             "test_mae": test_mae, "test_mae_ensemble": test_mae_ensemble,
                             "seconds": time.perf_counter() - start, "device": device})
                print({key: round(v, 4) if isinstance(v, float) else v for key, v in rows[-1].items()}, flush=True)
                if args.out:
                    write_csv(args.out, pd.DataFrame(rows))
    table = pd.DataFrame(rows)
    print(table.groupby(["method", "folds"])[["cv_mae", "test_mae", "test_mae_ensemble", "seconds"]].mean()
          .to_string(float_format=lambda v: f"{v:.4f}"))
    return table


if __name__ == "__main__":
    main()

"""How many optimiser steps a small learning-curve fit needs (``Profile.curve_min_steps``).

For a few subsample sizes and step floors, trains SC:DL(EF) and TL:Fine-Tune on the curve's own
subsamples (``tlrl.curve``) and prints the validation MAE (the choice is made on it) beside the test
MAE and the seconds. Run by hand:

    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_curve_steps.py \
        --sizes 100,1000 --steps 250,500,1000,2000 --out results/bench_curve_steps.csv
"""

from __future__ import annotations

import argparse

import pandas as pd

from tlrl.curve import _Curve, curve_config
from tlrl.data import default_cache_dir
from tlrl.io import write_csv
from tlrl.methods import get_method, prepare_data, training_profile
from tlrl.profiles import get_profile
from tlrl.representation import load_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="jarvis_formation_energy")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--steps", default="250,500,1000,2000")
    parser.add_argument("--methods", default="sc-dl-ef,tl-finetune")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    prof = get_profile(args.profile, train__progress=False)
    train, test = prepare_data(args.dataset, prof, 0)
    curve = _Curve(train, test, prof, load_source(), default_cache_dir(), needs_pa=False)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for size in map(int, args.sizes.split(",")):
        for steps in map(int, args.steps.split(",")):
            curve.prof = prof.with_(curve_min_steps=steps)
            for slug in args.methods.split(","):
                config = curve_config(training_profile(get_method(slug), prof).train, size - size // 5, steps)
                unit = curve.run_unit(slug, size, seeds).assign(min_steps=steps)
                rows.append(unit)
                print(f"size {size:>6} steps {steps:>5} {slug:<12} batch {config.batch_size:>3} "
                      f"epochs {config.max_epochs:>4}: val {unit.val_mae.mean():.4f} test {unit.test_mae.mean():.4f} "
                      f"({unit.seconds.sum():.0f} s)", flush=True)
                write_csv(args.out, pd.concat(rows, ignore_index=True))
    table = pd.concat(rows).groupby(["size", "method", "min_steps"])[["val_mae", "test_mae", "seconds"]]
    print(table.agg({"val_mae": "mean", "test_mae": "mean", "seconds": "sum"}).round(4).to_string())


if __name__ == "__main__":
    main()

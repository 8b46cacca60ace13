"""Does successive halving choose the layer that exhaustive cross-validation chooses? At what cost?

Run by hand, not by pytest::

    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_layer_search.py \
        [--method rl-dl-relu] [--layers 1,3,5,7,9,11] [--folds 3] [--epochs 8] [--halving-epochs 1,3] \
        [--source DIR] [--out results/bench_layer_search.csv]

Both searches run the quick recipe on every JARVIS formation-energy train row, on a reduced grid
and budget (the defaults: 6 layers, 3 folds, 8 epochs) so that the exhaustive search stays
affordable on a CPU. It prints both sweeps, each search's chosen layer and the CV MAE of that
layer, whether halving's choice is the exhaustive one or within one fold-std of it, and the
seconds of each search with their ratio.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from tlrl.io import atomic_write
from tlrl.methods import run
from tlrl.profiles import get_profile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="rl-dl-relu")
    parser.add_argument("--layers", default="1,3,5,7,9,11")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8, help="epochs of every CV model")
    parser.add_argument("--halving-epochs", default="1,3", help="epochs of each halving rung")
    parser.add_argument("--source", default=None, help="source checkpoint (default: the shipped model)")
    parser.add_argument("--out", default=None, help="also write both sweeps as CSV here")
    parser.add_argument("--data-dir", default=None, help="default: $TLRL_DATA_DIR")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    layers = tuple(int(k) for k in args.layers.split(","))
    base = get_profile("quick", layers=layers, n_folds=args.folds, train__max_epochs=args.epochs,
                       train__patience=args.epochs, train__progress=False,
                       halving_epochs=tuple(int(e) for e in args.halving_epochs.split(",")))
    outcome, sweeps = {}, []
    for search in ("cv", "halving"):
        start = time.perf_counter()
        m = run(args.method, "jarvis_formation_energy", source=args.source, profile=base.with_(layer_search=search),
                data_dir=args.data_dir)
        outcome[search] = (m, time.perf_counter() - start)
        sweeps.append(pd.DataFrame(m["sweep"]))
        print(f"{search}: layer {m['best_layer']}, CV MAE {m['cv_mae_mean']:.4f} ± {m['cv_mae_std']:.4f}, "
              f"{outcome[search][1]:.0f} s", flush=True)
    table = pd.concat(sweeps, ignore_index=True)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    (cv, cv_s), (hv, hv_s) = outcome["cv"], outcome["halving"]
    exhaustive = table[table.search == "cv"].set_index("layer")
    gap = exhaustive.loc[hv["best_layer"], "val_mae"] - exhaustive["val_mae"].min()
    std = exhaustive.loc[cv["best_layer"], "val_mae_std"]
    verdict = "the same layer" if hv["best_layer"] == cv["best_layer"] else (
        "within one fold-std" if gap <= std else "worse by more than one std")
    print(f"{args.method} on {cv['n_train']} rows, layers {list(layers)}, {args.folds} folds x {args.epochs} epochs: "
          f"exhaustive CV picks {cv['best_layer']}, halving picks {hv['best_layer']} ({verdict}; its CV MAE is "
          f"{gap:+.4f} from the best). Cost: CV {cv_s:.0f} s, halving {hv_s:.0f} s, ratio {cv_s / hv_s:.1f}x")
    if args.out:
        with atomic_write(args.out) as tmp:
            table.to_csv(tmp, index=False)
    return table


if __name__ == "__main__":
    main()

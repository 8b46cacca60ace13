"""Does successive halving choose the layer that exhaustive cross-validation chooses? At what cost?

Run by hand, not by pytest::

    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_layer_search.py \
        [--method rl-dl-relu] [--layers 1,3,5,7,9,11] [--folds 2] [--epochs 8] \
        [--halving-epochs '2,4;4,8'] [--halving-eta 3] [--source DIR] [--out results/bench_layer_search.csv]

Both searches run the quick recipe on every JARVIS formation-energy train row, on a reduced grid
and budget (the defaults: 6 layers, 2 folds, 8 epochs) so that the exhaustive search stays
affordable on a CPU. Exhaustive CV runs once; each halving schedule (``;``-separated) runs after
it. It prints every sweep, each search's chosen layer and its CV MAE, for each schedule whether
its choice is the exhaustive one or within one fold-std of it, and the seconds of each search
with their ratio.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from tlrl.io import write_csv
from tlrl.methods import run
from tlrl.profiles import get_profile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="rl-dl-relu")
    parser.add_argument("--layers", default="1,3,5,7,9,11")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8, help="epochs of every CV model")
    parser.add_argument("--halving-epochs", default="2,4",
                        help="epochs of each halving rung; several schedules separated by ';' (e.g. '2,4;4,8')")
    parser.add_argument("--halving-eta", type=int, default=3, help="each rung keeps the best 1/eta")
    parser.add_argument("--source", default=None, help="source checkpoint (default: the shipped model)")
    parser.add_argument("--out", default=None, help="also write every sweep as CSV here")
    parser.add_argument("--data-dir", default=None, help="default: $TLRL_DATA_DIR")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    layers = tuple(int(k) for k in args.layers.split(","))
    base = get_profile("quick", layers=layers, n_folds=args.folds, train__max_epochs=args.epochs,
                       train__patience=args.epochs, train__progress=False,
                       halving_eta=args.halving_eta)
    cv, cv_s, table = _search(args, base.with_(layer_search="cv"), "cv", "")
    exhaustive = table.set_index("layer")
    tables = [table]
    for schedule in args.halving_epochs.split(";"):
        rungs = tuple(int(e) for e in schedule.split(","))
        hv, hv_s, sweep = _search(args, base.with_(layer_search="halving", halving_epochs=rungs), f"halving {schedule}",
                                 schedule)
        tables.append(sweep)
        gap = exhaustive.loc[hv["best_layer"], "val_mae"] - exhaustive["val_mae"].min()
        std = exhaustive.loc[cv["best_layer"], "val_mae_std"]
        verdict = "the same layer" if hv["best_layer"] == cv["best_layer"] else (
            "within one fold-std" if gap <= std else "worse by more than one std")
        print(f"{args.method} on {cv['n_train']} rows, layers {list(layers)}, {args.folds} folds x {args.epochs} "
              f"epochs: exhaustive CV picks {cv['best_layer']}, halving with rungs of {schedule} epochs (best 1/"
              f"{args.halving_eta} go on) picks {hv['best_layer']} ({verdict}; its CV MAE is {gap:+.4f} from the "
              f"best). Cost: CV {cv_s:.0f} s, halving {hv_s:.0f} s, ratio {cv_s / hv_s:.1f}x", flush=True)
    table = pd.concat(tables, ignore_index=True)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out:
        write_csv(args.out, table)
    return table


def _search(args: argparse.Namespace, profile, label: str, schedule: str) -> tuple[dict, float, pd.DataFrame]:
    """One layer search: its metrics, seconds (search and the winner's CV) and sweep rows."""
    start = time.perf_counter()
    m = run(args.method, "jarvis_formation_energy", source=args.source, profile=profile, data_dir=args.data_dir)
    seconds = time.perf_counter() - start
    print(f"{label}: layer {m['best_layer']}, CV MAE {m['cv_mae_mean']:.4f} ± {m['cv_mae_std']:.4f}, {seconds:.0f} s",
          flush=True)
    sweep = pd.DataFrame(m["sweep"]).astype({"val_mae_std": float})
    return m, seconds, sweep.assign(schedule=schedule)


if __name__ == "__main__":
    main()

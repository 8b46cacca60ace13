"""An equal tuning budget: the recipe search TL and SC:DL(EF) got, for the RL:DL and TL+RL:DL rows.

Each configuration trains on fold 0 of quick's 5-fold split at the layer its quick search chose
(seed 0), with quick's recipe and with one change at a time: learning rate, AdamW weight decay, batch.
Rows already in ``--out`` (same method, change and seed) are kept and not rerun.
It prints the validation MAE (the choice is made on it) beside the test MAE and the seconds. The rule,
set before the run: a change is adopted for a configuration only when its validation MAE is lower than
quick's by more than 0.002 eV/atom (about twice the seed-to-seed spread of these rows); then its whole
5-fold CV must beat quick's by the paired rule (``tlrl.paired``) before the benchmark row is rerun.
``--confirm`` runs that second step: every change that passed on fold 0 trains all five folds, and its
fold MAEs are paired with the committed quick benchmark's (``results/quick/runs/<method>``).
Run by hand:

    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_recipe_rl.py --out results/bench_recipe_rl.csv
    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_recipe_rl.py --out results/bench_recipe_rl.csv \
        --confirm results/bench_recipe_rl_cv.csv
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

from tlrl.data import default_cache_dir
from tlrl.io import write_csv
from tlrl.methods import build_inputs, cross_validate, fold_tests, get_method, prepare_data, training_profile
from tlrl.paired import compare
from tlrl.profiles import Profile, get_profile
from tlrl.representation import load_source

LAYERS = {"rl-dl-relu": 2, "rl-dl-dense": 1, "tlrl-dl-relu": 3, "tlrl-dl-dense": 1}  # quick's choices, seed 0
CHANGES = {
    "quick": {},
    "lr 5e-4": {"train__lr": 5e-4},
    "lr 2e-3": {"train__lr": 2e-3},
    "weight decay 0.1": {"train__weight_decay": 0.1},
    "batch 128": {"train__batch_size": 128},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(LAYERS))
    parser.add_argument("--changes", default=",".join(CHANGES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--confirm", metavar="CSV", help="run the 5-fold CV of every change that passed on fold 0")
    args = parser.parse_args()
    quick = get_profile("quick", train__progress=False)
    train, test = prepare_data("jarvis_formation_energy", quick, args.seed)
    source, cache = load_source(), default_cache_dir()
    rows = pd.read_csv(args.out).to_dict("records") if os.path.exists(args.out) else []
    done = {(r["method"], r["change"], r["seed"]) for r in rows}
    for slug in args.methods.split(","):
        todo = [name for name in args.changes.split(",") if (slug, name, args.seed) not in done]
        if not todo:
            continue
        m = get_method(slug)
        inputs = build_inputs(m, train, test, source, LAYERS[slug], cache)
        for name in todo:
            prof = training_profile(m, quick).with_(**CHANGES[name])
            start = time.perf_counter()
            models, maes, _ = cross_validate(m, inputs, source, prof, args.seed, n_first_folds=1)
            _, _, test_mae, _ = fold_tests(models, maes, inputs)
            rows.append({"method": slug, "layer": LAYERS[slug], "change": name, "lr": prof.train.lr,
                         "weight_decay": prof.train.weight_decay, "batch": prof.train.batch_size, "seed": args.seed,
                         "val_mae": maes[0], "test_mae": test_mae, "seconds": time.perf_counter() - start})
            print(f"{slug:<14} layer {LAYERS[slug]:>2} {name:<17}: val {maes[0]:.4f} test {test_mae:.4f} "
                  f"({rows[-1]['seconds']:.0f} s)", flush=True)
            write_csv(args.out, pd.DataFrame(rows))
    table = pd.DataFrame(rows)
    base = table[(table.change == "quick") & (table.seed == args.seed)].set_index("method")["val_mae"]
    table["val_vs_quick"] = table["val_mae"] - table["method"].map(base)
    print(table[["method", "change", "val_mae", "val_vs_quick", "test_mae"]].round(4).to_string(index=False))
    if args.confirm:
        passed = table[(table.val_vs_quick < -ADOPT) & table.method.isin(args.methods.split(","))]
        confirm(passed, args.confirm, quick, args.seed, train, test, source, cache)


ADOPT = 0.002  # eV/atom on fold 0's validation MAE, set before the run


def confirm(passed: pd.DataFrame, out: str, quick: Profile, seed: int, train, test, source, cache) -> None:
    """The 5-fold CV of each passing (method, change), paired fold by fold with the quick benchmark's."""
    rows = pd.read_csv(out).to_dict("records") if os.path.exists(out) else []
    done = {(r["method"], r["change"]) for r in rows}
    for slug, name in passed[["method", "change"]].itertuples(index=False):
        if (slug, name) in done:
            continue
        m = get_method(slug)
        inputs = build_inputs(m, train, test, source, LAYERS[slug], cache)
        prof = training_profile(m, quick).with_(**CHANGES[name])
        start = time.perf_counter()
        models, maes, _ = cross_validate(m, inputs, source, prof, seed)
        _, _, test_mae, ensemble = fold_tests(models, maes, inputs)
        base = json.loads((Path("results/quick/runs") / slug / "metrics.json").read_text())
        paired = compare(name, "quick", maes, base["fold_val_mae"])
        rows.append({"method": slug, "layer": LAYERS[slug], "change": name, "seed": seed,
                     "cv_mae": sum(maes) / len(maes), "quick_cv_mae": base["cv_mae_mean"],
                     "diff_mean": paired.mean, "diff_se": paired.standard_error, "verdict": paired.verdict,
                     "test_mae": test_mae, "quick_test_mae": base["test_mae"], "test_mae_ensemble": ensemble,
                     "fold_val_mae": " ".join(f"{v:.5f}" for v in maes),
                     "seconds": time.perf_counter() - start})
        print(f"{slug} {name}: CV {rows[-1]['cv_mae']:.4f} vs quick {base['cv_mae_mean']:.4f}: "
              f"{paired.sentence()} ({rows[-1]['seconds']:.0f} s)", flush=True)
        write_csv(out, pd.DataFrame(rows))


if __name__ == "__main__":
    main()

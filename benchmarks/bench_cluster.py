"""The benchmark in this process against ``--cluster local:2`` (one thread per worker), side by side.

Run by hand: ``python benchmarks/bench_cluster.py [--quick SLUGS] [--out results/bench_cluster.csv]``.
The smoke profile runs on 800 JARVIS rows with every configuration but AutoML; ``--quick`` adds the quick
profile on all rows for the configurations named (comma-separated). The features (PA, the source's
activations) are computed before either run, so neither pays for them. The serial run uses torch's threads
(every core); the cluster's start-up is not counted. Each line says whether the two runs wrote the same
numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from tlrl.benchmark import run_benchmark
from tlrl.cluster import connect
from tlrl.data import default_cache_dir, load_dataset
from tlrl.io import write_csv
from tlrl.methods import METHODS, base_features, prepare_data
from tlrl.profiles import get_profile
from tlrl.representation import load_source, representation

NUMBERS = ["method", "cv_mae_mean", "fold_val_mae", "best_layer", "test_mae", "test_mae_ensemble"]


def warm_cache(dataset, profile: str, methods: list[str]) -> None:
    """PA and every activation the configurations use, into the feature cache."""
    prof, cache = get_profile(profile), default_cache_dir()
    train, test = prepare_data(dataset, prof, 0)
    base_features(train, test, "pa", cache)
    Xtr, _, Xte, _, _ = base_features(train, test, "ef", cache)
    source = load_source()
    for kind in {METHODS[slug].activation for slug in methods if METHODS[slug].inputs == "representation"}:
        for layer in prof.layers:
            for X in (Xtr, Xte):
                representation(source, X, layer, kind, cache / "activations")


def side_by_side(dataset, profile: str, methods: list[str], rows: int) -> dict:
    """Seconds of the serial and the local:2 run of one benchmark, and whether their numbers agree."""
    warm_cache(dataset, profile, methods)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        serial = run_benchmark(dataset, Path(tmp, "serial"), profile=profile, methods=methods)
        serial_s = time.perf_counter() - start
        with connect("local:2") as client:
            start = time.perf_counter()
            tasks = run_benchmark(dataset, Path(tmp, "local2"), profile=profile, methods=methods, client=client)
            local_s = time.perf_counter() - start
    same = serial[NUMBERS].equals(tasks[NUMBERS])
    print(f"{profile}, {len(methods)} configurations, {rows} rows: serial {serial_s:.1f} s, local:2 {local_s:.1f} s, "
          f"serial/local:2 = {serial_s / local_s:.2f}, same numbers: {same}", flush=True)
    return {"profile": profile, "methods": " ".join(methods), "rows": rows, "serial_s": serial_s,
            "local2_s": local_s, "ratio": serial_s / local_s, "same_numbers": same,
            "machine": f"{os.cpu_count()}-core {platform.machine()}", "when": time.strftime("%Y-%m-%d %H:%M")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", default="", help="configurations to run under quick on all rows, e.g. tl-finetune")
    parser.add_argument("--out", type=Path, help="also write the lines to this CSV")
    args = parser.parse_args()
    jarvis = load_dataset("jarvis_formation_energy")
    small = pd.concat([jarvis[jarvis.split == "train"].sample(600, random_state=0),
                       jarvis[jarvis.split == "test"].sample(200, random_state=0)], ignore_index=True)
    lines = [side_by_side(small, "smoke", [s for s, m in METHODS.items() if m.learner != "automl"], len(small))]
    if args.quick:
        lines.append(side_by_side("jarvis_formation_energy", "quick", args.quick.split(","), len(jarvis)))
    if args.out:
        write_csv(args.out, pd.DataFrame(lines))


if __name__ == "__main__":
    main()

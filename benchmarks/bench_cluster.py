"""Smoke benchmark on 800 JARVIS rows: in process against ``--cluster local:2`` (one thread each), side by side.

Run by hand: ``OMP_NUM_THREADS=1 python benchmarks/bench_cluster.py``. The AutoML configurations are left out.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from tlrl.benchmark import run_benchmark
from tlrl.cluster import connect
from tlrl.data import load_dataset
from tlrl.methods import METHODS


def main() -> None:
    jarvis = load_dataset("jarvis_formation_energy")
    rows = pd.concat([jarvis[jarvis.split == "train"].sample(600, random_state=0),
                      jarvis[jarvis.split == "test"].sample(200, random_state=0)], ignore_index=True)
    methods = [slug for slug, m in METHODS.items() if m.learner != "automl"]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_benchmark(rows, Path(tmp, "serial"), profile="smoke", methods=methods)
        serial = time.perf_counter() - start
        with connect("local:2") as client:
            start = time.perf_counter()
            run_benchmark(rows, Path(tmp, "local2"), profile="smoke", methods=methods, client=client)
            local = time.perf_counter() - start
    print(f"{len(methods)} smoke configurations: serial {serial:.1f} s, local:2 {local:.1f} s, "
          f"serial/local:2 = {serial / local:.2f}")


if __name__ == "__main__":
    main()

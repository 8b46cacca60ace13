"""The whole protocol: every configuration and the layer sweeps, with resumable results.

Each configuration's metrics land in ``runs/<slug>/`` atomically as soon as it
finishes; ``results.csv``, ``sweep.csv`` and ``table2.md`` are rebuilt after each one.
A rerun skips configurations that already have metrics unless ``force=True``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from tlrl.io import atomic_write
from tlrl.methods import METHODS, get_method, run
from tlrl.profiles import Profile, get_profile

# Gupta et al.'s JARVIS formation-energy MAEs (eV/atom) as far as we cite them: per
# configuration, and the test MAE of each category's winner. Blank cells: not cited.
PAPER = {
    "sc-ml-ef": {"cv": 0.206},
    "sc-ml-pa": {"cv": 0.141},
    "sc-dl-ef": {"test": 0.142},
    "tl-finetune": {"test": 0.123},
}
PAPER_WINNER_TEST = {"SC": 0.142, "TL/RL": 0.123, "TL+RL": 0.121}
RESULT_COLUMNS = [
    "method", "paper_name", "category", "cv_mae_mean", "cv_mae_std", "fold_val_mae", "best_layer",
    "test_mae", "test_mae_ensemble", "n_train", "n_test", "seconds", "profile", "seed", "reductions",
]  # fmt: skip


def run_benchmark(
    dataset: str | Path | pd.DataFrame,
    out_dir: str | Path,
    profile: str | Profile = "quick",
    source: str | Path | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
    methods: list[str] | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """Run the configurations (all by default) and write results.csv, sweep.csv, table2.md."""
    out = Path(out_dir)
    prof = get_profile(profile)
    slugs = methods or list(METHODS)
    for slug in slugs:
        get_method(slug)  # an unknown slug fails before any work starts
    results = None
    for slug in tqdm(slugs, desc="benchmark", unit="config"):
        metrics_path = out / "runs" / slug / "metrics.json"
        if metrics_path.exists() and not force:
            continue
        run(slug, dataset, source=source, profile=prof, seed=seed, data_dir=data_dir,
            out_dir=out / "runs" / slug, save_models=False)
        results = write_summaries(out)
    if results is None:  # nothing reran: leave existing summary files untouched
        results = results_table(load_runs(out)) if (out / "results.csv").exists() else write_summaries(out)
    return results


def load_runs(out_dir: str | Path) -> list[dict]:
    """All finished configurations' metrics, in Table I order."""
    runs = {p.parent.name: json.loads(p.read_text()) for p in Path(out_dir).glob("runs/*/metrics.json")}
    return [runs[slug] for slug in METHODS if slug in runs]


def results_table(runs: list[dict]) -> pd.DataFrame:
    """One row per finished configuration, the columns of results.csv."""
    return pd.DataFrame([{c: r.get(c) for c in RESULT_COLUMNS} for r in runs], columns=RESULT_COLUMNS)


def write_summaries(out_dir: str | Path) -> pd.DataFrame:
    """Rebuild results.csv, sweep.csv and table2.md from the finished runs."""
    out = Path(out_dir)
    runs = load_runs(out)
    results = results_table(runs)
    sweep = pd.DataFrame([row for r in runs for row in r["sweep"] if r.get("best_layer") is not None
                          and len(r["sweep"]) > 1])
    for name, frame in (("results.csv", results), ("sweep.csv", sweep)):
        with atomic_write(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    with atomic_write(out / "table2.md") as tmp:
        tmp.write_text(table2(results))
    return results


def category_winners(results: pd.DataFrame) -> pd.DataFrame:
    """Per category (SC, TL/RL, TL+RL), the configuration with the lowest CV MAE."""
    group = results["category"].replace({"TL": "TL/RL", "RL": "TL/RL"})
    best = results.loc[results.groupby(group)["cv_mae_mean"].idxmin()].copy()
    best.insert(0, "group", group[best.index])
    return best.sort_values("group", key=lambda s: s.map({"SC": 0, "TL/RL": 1, "TL+RL": 2}))


def table2(results: pd.DataFrame) -> str:
    """The paper's Table II layout: ours beside the paper's numbers, and the category winners."""
    if results.empty:
        return "No configuration has finished yet.\n"
    lines = [
        "| configuration | CV MAE (mean ± std) | best layer | test MAE (best fold) | test MAE (ensemble) "
        "| paper CV MAE | paper test MAE |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results.itertuples():
        paper = PAPER.get(r.method, {})
        layer = "" if pd.isna(r.best_layer) else str(int(r.best_layer))
        lines.append(
            f"| {r.paper_name} | {r.cv_mae_mean:.4f} ± {r.cv_mae_std:.4f} | {layer} | {r.test_mae:.4f} "
            f"| {r.test_mae_ensemble:.4f} | {_cell(paper.get('cv'))} | {_cell(paper.get('test'))} |"
        )
    winners = category_winners(results)
    lines += ["", "Category winners, chosen by CV MAE as in the paper (test MAE of the best fold):", ""]
    lines += [f"- **{w.group}**: {w.paper_name}, CV {w.cv_mae_mean:.4f}, test {w.test_mae:.4f} "
              f"(paper's winner: test {PAPER_WINNER_TEST[w.group]:.3f})" for w in winners.itertuples()]
    first = results.iloc[0]
    lines += ["", f"Profile `{first.profile}`, seed {first.seed}, {int(first.n_train)} train / {int(first.n_test)} "
              f"test rows. Reductions: {first.reductions}.",
              f"Machine: {os.cpu_count()}-core {platform.machine()} {platform.system()}; "
              f"written {time.strftime('%Y-%m-%d %H:%M %Z')}; "
              f"total {results['seconds'].sum() / 60:.1f} min of configuration time.", ""]
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"

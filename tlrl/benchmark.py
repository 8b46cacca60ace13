"""The whole protocol: every configuration and the layer sweeps, with resumable results.

The work is a plan of tasks (``tlrl.plan``): features, then each configuration's fits, a search
rung at a time. Each fit lands in ``tasks/<slug>/`` as it finishes, and each configuration's metrics in
``runs/<slug>/`` once its last fit has; ``results.csv``, ``sweep.csv`` and ``table2.md`` are rebuilt
after each configuration. A rerun skips finished configurations and fits unless ``force=True``.
"""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tlrl.cluster import check_client
from tlrl.data import dataset_name
from tlrl.errors import TlrlError
from tlrl.featurize import featurize
from tlrl.io import atomic_write, write_csv, write_json
from tlrl.methods import METHODS, SWEEP_COLUMNS, get_method
from tlrl.outputs import claim_folder, run_folder
from tlrl.paired import RULE, Paired, compare
from tlrl.plan import (
    TASKS,
    Job,
    absolute,
    benchmark_data,
    benchmark_plan,
    check_tasks,
    clear_tasks,
    remember,
    remove_fits,
    run_here,
    where,
)
from tlrl.profiles import Profile, get_profile
from tlrl.provenance import check_results_dir, read_metrics
from tlrl.train import check_device

if TYPE_CHECKING:
    from distributed import Client

# Gupta et al.'s JARVIS formation-energy results (eV/atom): the CV MAE (mean, std) of every
# configuration of Table II, and the test MAE of each category's winner.
PAPER_CV = {
    "sc-ml-ef": (0.206, 0.011), "sc-ml-pa": (0.141, 0.005), "sc-dl-ef": (0.135, 0.007), "sc-dl-pa": (0.167, 0.005),
    "tl-finetune": (0.121, 0.007), "rl-freezing": (0.230, 0.008), "rl-dl-relu": (0.128, 0.005),
    "rl-dl-dense": (0.118, 0.006), "tlrl-dl-relu": (0.124, 0.006), "tlrl-dl-dense": (0.117, 0.005),
}  # fmt: skip
PAPER_TEST = {"SC": 0.142, "TL/RL": 0.123, "TL+RL": 0.121}
GROUPS = {"SC": "SC", "TL": "TL/RL", "RL": "TL/RL", "TL+RL": "TL+RL", "peer": "peer"}
PAPER_NAMES = {slug: m.paper_name for slug, m in METHODS.items()}
RESULT_COLUMNS = [
    "method", "paper_name", "category", "cv_mae_mean", "cv_mae_std", "fold_val_mae", "best_layer",
    "test_mae", "test_mae_ensemble", "n_train", "n_test", "n_folds", "seconds", "profile", "seed", "reductions",
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
    client: Client | None = None,
) -> pd.DataFrame:
    """Run the configurations (all by default) and write results.csv, sweep.csv, table2.md.

    A folder holding results of another dataset, profile, seed, source or tlrl version is
    refused before any work (``tlrl.provenance``); ``force`` starts it afresh, once the data's formulas
    are known to be usable. With a
    ``distributed.Client`` the tasks run on Dask (``tlrl.cluster``).
    """
    out = run_folder(out_dir, force)
    check_client(client)
    prof = get_profile(profile)
    check_device(prof.train.device)
    if methods is not None and not list(methods):
        raise TlrlError("methods names no method; leave it out (None) to run all of them")
    slugs = list(methods) if methods is not None else list(METHODS)
    for slug in slugs:
        get_method(slug)  # an unknown slug fails before any work starts
    job = Job(prof if client is None else prof.with_(train__progress=False), seed, *where(data_dir, source),
              tuple(slugs))
    with warnings.catch_warnings(record=True) as caught:  # shown once the folder is known to be usable
        warnings.simplefilter("always")
        data = benchmark_data(job, dataset)  # a source that is no EF checkpoint fails here
        for part in (data.train, data.test):
            featurize(part, "ef", progress=False)  # unusable formulas fail before a forced folder is cleared
    claim_folder(out, "benchmark", force, inputs=[dataset_name(dataset), source])  # a table carries its name
    for path in out.glob("runs/*/metrics.json"):
        read_metrics(path)  # a broken one is reported before any work
    check_tasks(out)
    check_results_dir(out, dataset, prof, seed, source, data_dir, force)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if force:
        clear_tasks(out)
    todo = [slug for slug in slugs if force or not (out / "runs" / slug / "metrics.json").exists()]
    drivers = benchmark_plan(job, absolute(dataset), out.resolve(), todo)
    for slug in set(slugs) - set(todo):  # a run stopped after writing the configuration, before removing its fits
        remove_fits(out / TASKS / slug)
    if client is None:
        remember(job, data)
        run_here(drivers, lambda: write_summaries(out), "configuration", prof.train.progress)
    else:
        from tlrl.cluster import run_on

        run_on(client, drivers, lambda: write_summaries(out), "configuration")
    results = results_table(load_runs(out))
    summary = out / "results.csv"  # a rerun with nothing to do rewrites summaries that lack a run
    if not summary.exists() or pd.read_csv(summary)["method"].tolist() != results["method"].tolist():
        results = write_summaries(out)
    return results


def load_runs(out_dir: str | Path) -> list[dict]:
    """All finished configurations' metrics, in Table I order."""
    runs = {p.parent.name: read_metrics(p) for p in Path(out_dir).glob("runs/*/metrics.json")}
    return [runs[slug] for slug in METHODS if slug in runs]


def results_table(runs: list[dict]) -> pd.DataFrame:
    """One row per finished configuration, the columns of results.csv."""
    return pd.DataFrame([{c: r.get(c) for c in RESULT_COLUMNS} for r in runs], columns=RESULT_COLUMNS)


def write_summaries(out_dir: str | Path) -> pd.DataFrame:
    """Rebuild results.csv, sweep.csv, paired.json and table2.md from the finished runs."""
    out = Path(out_dir)
    runs = load_runs(out)
    results = results_table(runs)
    sweep = pd.DataFrame([row for r in runs for row in r["sweep"]], columns=SWEEP_COLUMNS)
    for name, frame in (("results.csv", results), ("sweep.csv", sweep)):
        write_csv(out / name, frame)
    paired = paired_difference(results)
    if paired is not None:
        write_json(out / "paired.json", paired)
    with atomic_write(out / "table2.md") as tmp:
        tmp.write_text(table2(results, paired))
    return results


def group_of(results: pd.DataFrame) -> pd.Series:
    """Each configuration's Table II category: SC, TL/RL, TL+RL (or peer)."""
    return results["category"].map(GROUPS)


def category_winners(results: pd.DataFrame) -> pd.DataFrame:
    """Per category of the paper (SC, TL/RL, TL+RL), the configuration with the lowest CV MAE."""
    group = group_of(results)
    paper = results[group != "peer"]
    best = paper.loc[paper.groupby(group[paper.index])["cv_mae_mean"].idxmin()].copy()
    best.insert(0, "group", group[best.index])
    return best.sort_values("group", key=lambda s: s.map({"SC": 0, "TL/RL": 1, "TL+RL": 2}))


def paper_winners() -> dict[str, str]:
    """The paper's category winners by its own CV MAEs (its test MAEs belong to these)."""
    best: dict[str, str] = {}
    for slug, (cv, _) in PAPER_CV.items():
        group = GROUPS[METHODS[slug].category]
        if group not in best or cv < PAPER_CV[best[group]][0]:
            best[group] = slug
    return best


def compare_folds(results: pd.DataFrame, a: str, b: str) -> dict | None:
    """Configuration ``a`` against ``b`` fold by fold (both cross-validated on the same folds), by the
    book's paired rule (``tlrl.paired``); None when the two do not share their folds."""
    runs = results.set_index("method")
    if a not in runs.index or b not in runs.index or runs.loc[a, "n_train"] != runs.loc[b, "n_train"]:
        return None
    paired = compare(a, b, *(_folds(v) for v in runs.loc[[a, b], "fold_val_mae"]))
    return None if paired is None else paired.as_dict()


def paired_difference(results: pd.DataFrame) -> dict | None:
    """The paper's claim "TL+RL beats TL" as a paired per-fold difference of validation MAEs: ``a`` is
    the better TL+RL configuration by CV, ``b`` is TL:Fine-Tune (``compare_folds``)."""
    tlrl = results[results["category"] == "TL+RL"]
    if tlrl.empty:
        return None
    return compare_folds(results, tlrl.loc[tlrl["cv_mae_mean"].idxmin(), "method"], "tl-finetune")


def compare_seeds(results_dirs: list[str | Path], a: str, b: str) -> dict | None:
    """``a`` against ``b`` over the folds of several benchmark folders (one seed each), pooled: every seed's
    folds are its own pairs (``folds``); also the best-fold test MAEs paired over the seeds (``test``, None
    with one seed) and the number of ``seeds``. None where no folder holds both."""
    pairs = [(r[a], r[b]) for r in ({x["method"]: x for x in load_runs(d)} for d in results_dirs) if a in r and b in r]
    folds = compare(a, b, *([v for run in side for v in run["fold_val_mae"]] for side in zip(*pairs, strict=True)))
    if folds is None:
        return None
    test = compare(a, b, *([run["test_mae"] for run in side] for side in zip(*pairs, strict=True)))
    return {"folds": folds, "test": test, "seeds": len(pairs)}


def _folds(value) -> list[float]:
    """Fold MAEs as a list, whether fresh from metrics or read back from results.csv."""
    return json.loads(value) if isinstance(value, str) else list(value)


def table2(results: pd.DataFrame, paired: dict | None = None) -> str:
    """The paper's Table II layout: ours beside the paper's numbers, the category winners, TL+RL vs TL."""
    if results.empty:
        return "No configuration has finished yet.\n"
    lines = [
        "| configuration | CV MAE (mean ± std) | best layer | test MAE (best fold) | test MAE (ensemble) "
        "| paper CV MAE | paper test MAE |",
        "|---|---|---|---|---|---|---|",
    ]
    paper_test = {slug: PAPER_TEST[group] for group, slug in paper_winners().items()}
    for r in results.itertuples():
        layer = "" if pd.isna(r.best_layer) else str(int(r.best_layer))
        cv = PAPER_CV.get(r.method)
        lines.append(
            f"| {r.paper_name} | {r.cv_mae_mean:.4f} ± {r.cv_mae_std:.4f} | {layer} | {r.test_mae:.4f} "
            f"| {r.test_mae_ensemble:.4f} | {f'{cv[0]:.3f} ± {cv[1]:.3f}' if cv else ''} "
            f"| {_cell(paper_test.get(r.method))} |"
        )
    winners = category_winners(results)
    lines += ["", "Category winners, chosen by CV MAE as in the paper (test MAE of the best fold):", ""]
    theirs = {group: METHODS[slug].paper_name for group, slug in paper_winners().items()}
    lines += [f"- **{w.group}**: {w.paper_name}, CV {w.cv_mae_mean:.4f}, test {w.test_mae:.4f}, "
              f"fold ensemble {w.test_mae_ensemble:.4f} (paper's winner: {theirs[w.group]}, "
              f"test {PAPER_TEST[w.group]:.3f})" for w in winners.itertuples()]
    if paired is not None:
        lines += ["", f"The paper's claim, TL+RL beats TL: {Paired(**paired).sentence(PAPER_NAMES, over='folds')} "
                  f"(std of the differences {paired['std']:.4f}). The rule: {RULE}."]
    first = results.iloc[0]
    lines += ["", f"Profile `{first.profile}`, seed {first.seed}, {int(first.n_train)} train / {int(first.n_test)} "
              f"test rows. Settings: {first.reductions}.",
              f"Machine: {os.cpu_count()}-core {platform.machine()} {platform.system()}; "
              f"written {time.strftime('%Y-%m-%d %H:%M %Z')}; "
              f"total {results['seconds'].sum() / 60:.1f} min of configuration time.", ""]
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"

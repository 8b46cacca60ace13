"""The learning curve: each configuration's test MAE against the number of training rows.

For each seed the train part is shuffled once, and the subsample of size n is the first n rows of
that order, so every smaller set lies inside the larger one and every method sees the same rows.
Every fifth row of a subsample validates (best epoch, layer or frozen-layer count); the rest fit.
Rows outside the subsample are never seen: a user with 300 rows has no others. The test part stays
whole. A seed sets the subsample, the data order and the initialisation.

Each fit takes its configuration's benchmark recipe (``training_profile``) with two changes for
small sets (``curve_config``): the batch is at most a tenth of the fitting rows (never below 16),
and the epochs grow so that a fit takes at least ``Profile.curve_min_steps`` optimiser steps.
Layer searches run the profile's search (over ``Profile.curve_layers``) on the subsample's own
validation rows, their rungs scaled to the fit's epochs. Three reference lines train nothing: the
mean predictor, the source model as it is (zero-shot), and the source plus a constant offset fitted
on the subsample.

Results: ``runs/<size>/<method>_s<seeds>.csv`` per unit of work (written atomically; a rerun
skips finished units), rebuilt into ``curve.csv``, ``summary.csv`` and ``paired.csv`` after
each unit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tlrl.data import default_cache_dir
from tlrl.errors import TlrlError
from tlrl.featurize import featurize
from tlrl.io import write_csv
from tlrl.methods import METHODS, Method, get_method, new_models, peer_model, prepare_data, training_profile
from tlrl.outputs import claim_folder
from tlrl.paired import compare
from tlrl.predict import predict_array
from tlrl.profiles import Profile, get_profile
from tlrl.provenance import check_results_dir
from tlrl.representation import load_source, representation
from tlrl.train import TrainConfig, fit_many

if TYPE_CHECKING:
    from distributed import Client

CURVE_METHODS: tuple[str, ...] = (
    "sc-dl-ef", "peer-hgb-pa", "tl-finetune", "tl-freeze", "rl-dl-relu", "rl-dl-dense", "tlrl-dl-relu",
    "tlrl-dl-dense",
)  # fmt: skip
REFERENCES: dict[str, str] = {
    "mean": "mean predictor",
    "zero-shot": "source as it is (zero-shot)",
    "offset": "source + constant offset",
}
DEFAULT_SIZES: tuple[int, ...] = (100, 300, 1000, 3000, 10000)
COLUMNS = ["size", "method", "seed", "test_mae", "val_mae", "layer", "epochs", "batch", "seconds"]
VAL_EVERY = 5  # every fifth row of a subsample validates
MIN_BATCH = 16
TRANSFER = ("tl-finetune", "tl-freeze", "rl-dl-relu", "rl-dl-dense", "tlrl-dl-relu", "tlrl-dl-dense")
# the paired differences in paired.csv: (a, b), a − b per seed on the test MAE
PAIRS = (("tlrl-dl-relu", "tl-finetune"), ("tlrl-dl-dense", "tl-finetune"), ("tl-finetune", "sc-dl-ef"),
         ("best-transfer", "peer-hgb-pa"))


def label(method: str) -> str:
    """The reader's name of a curve method or reference line."""
    return REFERENCES.get(method) or (METHODS[method].paper_name if method in METHODS else method)


def subsample(n_train: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into the train part that fit and validate at ``size`` for ``seed`` (nested in size)."""
    order = np.random.default_rng(seed).permutation(n_train)[:size]
    val = np.arange(size) % VAL_EVERY == 0
    return order[~val], order[val]


def curve_config(config: TrainConfig, n_fit: int, min_steps: int) -> TrainConfig:
    """``config`` for a fit on ``n_fit`` rows: batch at most n_fit/10 (a power of two, ≥ 16), and enough
    epochs for ``min_steps`` optimiser steps. A cosine schedule without early stop keeps no early stop."""
    batch = max(MIN_BATCH, min(config.batch_size, 2 ** int(math.log2(max(1, n_fit // 10)))))
    epochs = max(config.max_epochs, math.ceil(min_steps / math.ceil(n_fit / batch)))
    patience = epochs if config.patience >= config.max_epochs else config.patience
    return config.with_(batch_size=batch, max_epochs=epochs, patience=patience)


def _seeds_text(seeds: Sequence[int]) -> str:
    return "-".join(map(str, seeds))


class _Curve:
    """The features of the train and test parts, the source, and one unit of work per (size, method)."""

    def __init__(self, train: pd.DataFrame, test: pd.DataFrame, prof: Profile, source, cache: Path,
                 needs_pa: bool) -> None:
        self.prof, self.source, self.cache = prof, source, cache
        parts = []
        for part in (train, test):
            pa = None
            if needs_pa:
                pa, part = featurize(part, "pa", cache_dir=cache / "features", progress=False)
                pa = np.nan_to_num(pa.to_numpy(np.float32))
            ef, part = featurize(part, "ef", progress=False)
            parts.append((ef.to_numpy(np.float32), pa, part["target"].to_numpy(np.float32)))
        (self.ef, self.pa, self.y), (self.ef_test, self.pa_test, self.y_test) = parts
        if source is not None:
            self.source_pred = predict_array(source.model, self.ef)
            self.source_pred_test = predict_array(source.model, self.ef_test)

    @property
    def n_train(self) -> int:
        return len(self.y)

    def inputs(self, m: Method, layer: int | None) -> tuple[np.ndarray, np.ndarray]:
        """The method's train and test inputs: EF, PA or the source's layer activations."""
        if m.inputs == "pa":
            return self.pa, self.pa_test
        if m.inputs != "representation":
            return self.ef, self.ef_test
        return tuple(representation(self.source, X, layer, m.activation, self.cache / "activations")
                     for X in (self.ef, self.ef_test))

    def run_unit(self, slug: str, size: int, seeds: Sequence[int]) -> pd.DataFrame:
        """Every seed of one (size, method), trained together where the method is a network."""
        start = time.perf_counter()
        splits = {s: subsample(self.n_train, size, s) for s in seeds}
        if slug in REFERENCES:
            rows = [self._reference(slug, *splits[s]) | {"seed": s} for s in seeds]
        elif get_method(slug).learner == "hgb":
            rows = [self._peer(*splits[s], s) | {"seed": s} for s in seeds]
        else:
            rows = self._networks(get_method(slug), splits)
        seconds = (time.perf_counter() - start) / len(seeds)
        frame = pd.DataFrame([{"size": size, "method": slug, "seconds": seconds, **r} for r in rows])
        return frame.reindex(columns=COLUMNS)

    def _mae(self, pred: np.ndarray, rows: np.ndarray | None = None) -> float:
        y = self.y_test if rows is None else self.y[rows]
        return float(np.mean(np.abs(pred - y)))

    def _reference(self, slug: str, fit_rows: np.ndarray, val_rows: np.ndarray) -> dict:
        if slug == "mean":
            value = float(self.y[fit_rows].mean())
            return {"test_mae": self._mae(np.full_like(self.y_test, value)),
                    "val_mae": self._mae(np.full(len(val_rows), value), val_rows)}
        # the MAE-optimal constant between the databases: the median residual on the fitting rows
        offset = float(np.median(self.y[fit_rows] - self.source_pred[fit_rows])) if slug == "offset" else 0.0
        return {"test_mae": self._mae(self.source_pred_test + offset),
                "val_mae": self._mae(self.source_pred[val_rows] + offset, val_rows)}

    def _peer(self, fit_rows: np.ndarray, val_rows: np.ndarray, seed: int) -> dict:
        model = peer_model(seed).fit(self.pa[fit_rows], self.y[fit_rows])
        return {"test_mae": self._mae(model.predict(self.pa_test)),
                "val_mae": self._mae(model.predict(self.pa[val_rows]), val_rows), "epochs": model.n_iter_}

    def _fit(self, m: Method, layer: int | None, splits: dict, config: TrainConfig):
        """Train one model per seed at ``layer``; return the models and their validation MAEs."""
        X, X_test = self.inputs(m, layer)
        frozen = layer if m.freezes else 0
        seeds = list(splits)
        models = [new_models(m, X.shape[1], 1, self.source, s, frozen)[0] for s in seeds]
        results = fit_many(models, X, self.y, [splits[s][0] for s in seeds], [splits[s][1] for s in seeds],
                           config, seeds=[s * 1000 for s in seeds])
        return models, X_test, {s: r.best_val_mae for s, r in zip(seeds, results, strict=True)}

    def _networks(self, m: Method, splits: dict) -> list[dict]:
        base = training_profile(m, self.prof).train
        n_fit = len(next(iter(splits.values()))[0])
        config = curve_config(base, n_fit, self.prof.curve_min_steps)
        layers = self._search(m, splits, config, base.max_epochs) if m.searches_layer else {s: None for s in splits}
        rows = []
        for layer in sorted(set(layers.values()), key=lambda k: -1 if k is None else k):
            chosen = {s: splits[s] for s in splits if layers[s] == layer}
            models, X_test, val = self._fit(m, layer, chosen, config)
            rows += [{"seed": s, "test_mae": self._mae(predict_array(model, X_test)), "val_mae": val[s],
                      "layer": layer, "epochs": config.max_epochs, "batch": config.batch_size}
                     for s, model in zip(chosen, models, strict=True)]
        return sorted(rows, key=lambda r: r["seed"])

    def _search(self, m: Method, splits: dict, config: TrainConfig, base_epochs: int) -> dict[int, int]:
        """Each seed's layer (or frozen-layer count) by the profile's search on its own validation rows."""
        prof = self.prof
        if prof.layer_search == "cv":
            rungs, eta = [config.max_epochs], len(prof.layers)
        else:
            rungs = [max(1, math.ceil(config.max_epochs * e / base_epochs)) for e in prof.halving_epochs]
            eta = prof.halving_eta
        survivors = {s: list(prof.curve_layers or prof.layers) for s in splits}
        for epochs in rungs:
            rung = config.with_(max_epochs=epochs, patience=min(epochs, config.patience))
            scores: dict[int, dict[int, float]] = {s: {} for s in splits}
            for layer in sorted({k for ks in survivors.values() for k in ks}):
                _, _, val = self._fit(m, layer, {s: splits[s] for s in splits if layer in survivors[s]}, rung)
                for s, mae in val.items():
                    scores[s][layer] = mae
            survivors = {s: sorted(ks, key=scores[s].get)[: max(1, math.ceil(len(ks) / eta))]
                         for s, ks in survivors.items()}
            if all(len(ks) == 1 for ks in survivors.values()):
                break
        return {s: ks[0] for s, ks in survivors.items()}


def run_curve(
    dataset: str | Path | pd.DataFrame,
    out_dir: str | Path,
    sizes: Sequence[int] | None = None,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    profile: str | Profile = "quick",
    source: str | Path | None = None,
    data_dir: str | Path | None = None,
    seeds_at: dict[int, Sequence[int]] | None = None,
    force: bool = False,
    client: Client | None = None,
) -> pd.DataFrame:
    """Run the learning curve into ``out_dir`` and return ``curve.csv``'s table.

    ``sizes``: None takes those of ``DEFAULT_SIZES`` that the train part holds (at least the smallest).
    ``methods``: configurations and reference lines (default: ``CURVE_METHODS`` and ``REFERENCES``);
    ``seeds_at``: other seeds at some sizes (e.g. ``{10000: [0]}`` to cut seeds where a fit is dear).
    A folder holding results of another dataset, profile, source or tlrl version is refused unless
    ``force``, which also reruns finished units. With a ``distributed.Client`` each unit is a Dask task
    (``tlrl.cluster``).
    """
    out = Path(out_dir)
    prof = get_profile(profile)
    slugs = list(methods or (*REFERENCES, *CURVE_METHODS))
    if len(set(slugs)) != len(slugs) or (sizes is not None and len(set(sizes)) != len(list(sizes))):
        raise TlrlError("each size and each method may be given once")
    for slug in slugs:
        if slug not in REFERENCES:
            m = get_method(slug)
            if m.learner == "automl" or m.fixed_layer:
                raise TlrlError(f"method {slug!r} is not on the curve: choose from {', '.join(CURVE_METHODS)} "
                                f"or the reference lines {', '.join(REFERENCES)}")
    seeds_at = {int(k): list(v) for k, v in (seeds_at or {}).items()}
    train, test = prepare_data(dataset, prof, 0, data_dir)
    if sizes is None:  # the default sizes the data holds; seeds_at for the others does not apply
        seeds_at = {n: v for n, v in seeds_at.items() if n <= len(train)}
        sizes = [n for n in DEFAULT_SIZES if n <= len(train)] or [min(DEFAULT_SIZES[0], len(train))]
    _check_sizes(sizes, len(train))  # again after featurizing, which may drop rows
    if set(seeds_at) - set(sizes):
        raise TlrlError(f"seeds are given for sizes not on the curve: {sorted(set(seeds_at) - set(sizes))}")
    if any(not 0 <= s < 2**32 for s in [*seeds, *(s for v in seeds_at.values() for s in v)]):
        raise TlrlError(f"seeds must be integers from 0 to {2**32 - 1}")
    plan = [(size, slug, seeds_at.get(size, list(seeds))) for size in sorted(sizes) for slug in slugs]
    for size, _, size_seeds in plan:
        if size < 2 * VAL_EVERY or not size_seeds or len(set(size_seeds)) != len(size_seeds):
            raise TlrlError(f"size {size} with seeds {size_seeds}: a size needs at least {2 * VAL_EVERY} rows "
                            "and distinct seeds")
    claim_folder(out, "curve", force, inputs=[None if isinstance(dataset, pd.DataFrame) else dataset, source])
    check_results_dir(out, dataset, prof, 0, source, data_dir, force, curve=True)
    write_summaries(out, plan)  # curve.csv marks the folder as a curve's from the start
    if client is not None:
        _run_on(client, dataset, out, plan, prof, source, data_dir, slugs, force)
        return write_summaries(out, plan)
    curve = build_curve(train, test, prof, source, slugs)
    _check_sizes(sizes, curve.n_train)
    for size, slug, size_seeds in tqdm(plan, desc="curve", unit="fit", disable=not prof.train.progress):
        path = _unit_path(out, size, slug, size_seeds)
        if path.exists() and not force:
            continue
        write_csv(path, curve.run_unit(slug, size, size_seeds))
        write_summaries(out, plan)
    return write_summaries(out, plan)


def build_curve(train: pd.DataFrame, test: pd.DataFrame, prof: Profile, source: str | Path | None,
                slugs: Sequence[str]) -> _Curve:
    """The features, the source (where ``slugs`` need it) and its predictions for a curve's units."""
    needs_source = any(s in ("zero-shot", "offset") or (s in METHODS and METHODS[s].uses_source) for s in slugs)
    needs_pa = any(s in METHODS and METHODS[s].inputs == "pa" for s in slugs)
    return _Curve(train, test, prof, load_source(source) if needs_source else None, default_cache_dir(), needs_pa)


def _run_on(client: Client, dataset, out: Path, plan: list, prof: Profile, source, data_dir, slugs: list[str],
            force: bool) -> None:
    """The plan's unfinished units as Dask tasks, each worker building the curve's inputs once."""
    from dask.base import tokenize

    from tlrl.cluster import curve_task, run_tasks

    token = tokenize(dataset, prof, source, data_dir, slugs)
    tasks = {f"{size}/{slug}": (curve_task, (token, dataset, prof, source, data_dir, slugs, slug, size, size_seeds,
                                             _unit_path(out.resolve(), size, slug, size_seeds)))
             for size, slug, size_seeds in plan if force or not _unit_path(out, size, slug, size_seeds).exists()}
    run_tasks(client, tasks, lambda: write_summaries(out, plan), "unit")


def _check_sizes(sizes: Sequence[int], n_train: int) -> None:
    if max(sizes) > n_train:
        raise TlrlError(f"the largest size, {max(sizes)}, exceeds the {n_train} usable train rows")


def _unit_path(out: Path, size: int, slug: str, seeds: Sequence[int]) -> Path:
    return out / "runs" / str(size) / f"{slug}_s{_seeds_text(seeds)}.csv"


def _read_unit(path: Path) -> pd.DataFrame:
    """A finished unit's rows; a file that is not one is a ``TlrlError`` naming it."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise TlrlError(f"{path} is unreadable ({exc.__class__.__name__}): delete it and rerun") from None
    if list(frame.columns) != COLUMNS or frame.empty:
        raise TlrlError(f"{path} is not a unit of tlrl curve (columns or rows missing): delete it and rerun")
    return frame


def write_summaries(out: Path, plan: list[tuple[int, str, list[int]]]) -> pd.DataFrame:
    """Rebuild curve.csv, summary.csv and paired.csv from the plan's finished units."""
    units = [_unit_path(out, size, slug, seeds) for size, slug, seeds in plan]
    frames = [_read_unit(p) for p in units if p.exists()]
    curve = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    write_csv(out / "curve.csv", curve)
    write_csv(out / "summary.csv", summarize(curve))
    write_csv(out / "paired.csv", paired_table(curve))
    return curve


def summarize(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std across seeds of the test and validation MAE per (size, method)."""
    if curve.empty:
        return pd.DataFrame(columns=["size", "method", "seeds", "test_mae", "test_mae_std", "val_mae"])
    g = curve.groupby(["size", "method"], sort=False)
    return g.agg(seeds=("seed", "size"), test_mae=("test_mae", "mean"), test_mae_std=("test_mae", "std"),
                 val_mae=("val_mae", "mean"), seconds=("seconds", "sum")).reset_index()


def paired_table(curve: pd.DataFrame) -> pd.DataFrame:
    """The differences of ``PAIRS`` at each size, paired over seeds on the test MAE (``tlrl.paired``).

    "best-transfer" is, at each size, the transfer configuration with the lowest mean validation MAE.
    """
    rows = []
    for size, part in curve.groupby("size"):
        by = part.pivot_table(index="seed", columns="method", values="test_mae")
        val = part.groupby("method")["val_mae"].mean()
        transfer = [t for t in TRANSFER if t in val.index]
        for a, b in PAIRS:
            if a == "best-transfer":
                a = min(transfer, key=val.get) if transfer else a
            if a not in by or b not in by:
                continue
            both = by[[a, b]].dropna()
            p = compare(a, b, both[a], both[b])
            if p is not None:
                rows.append({"size": size, "a": a, "b": b, "n": p.n, "mean": p.mean, "std": p.std,
                             "standard_error": p.standard_error, "verdict": p.verdict})
    return pd.DataFrame(rows, columns=["size", "a", "b", "n", "mean", "std", "standard_error", "verdict"])

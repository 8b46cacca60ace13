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

Results: ``runs/<size>/<method>_s<seeds>.csv`` per unit of work (a long seed list is named by its
count and hash), written atomically; a rerun skips finished units and reruns a unit file that is cut
short. After each unit they are rebuilt into ``curve.csv``, ``summary.csv`` and ``paired.csv``, which
cover the run's own sizes, seeds and methods, as ``provenance.json`` records them in its ``plan``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import numbers
import time
import warnings
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tlrl.cluster import check_client
from tlrl.data import dataset_name, default_cache_dir
from tlrl.errors import TlrlError
from tlrl.featurize import featurize
from tlrl.io import check_writable, output_lock, remove_stale_temporaries, write_csv
from tlrl.methods import (
    METHODS,
    Method,
    drive,
    get_method,
    new_models,
    peer_model,
    prepare_data,
    training_profile,
)
from tlrl.outputs import claim_folder, run_folder
from tlrl.paired import compare
from tlrl.predict import predict_array
from tlrl.profiles import Profile, get_profile
from tlrl.provenance import FILE, check_results_dir
from tlrl.representation import load_source, representation
from tlrl.train import TrainConfig, check_device, fit_many

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
DEFAULT_SIZES: tuple[int, ...] = (50, 100, 300, 1000, 3000, 10000)
COLUMNS = ["size", "method", "seed", "test_mae", "val_mae", "layer", "epochs", "batch", "seconds"]
REQUIRED = ["size", "method", "seed", "test_mae", "val_mae", "seconds"]  # never empty in a finished unit
SEEDS_IN_NAME = 64  # a unit file with a longer seed list is named by a hash of it
VAL_EVERY = 5  # every fifth row of a subsample validates
MIN_BATCH = 16
TRANSFER = ("tl-finetune", "tl-freeze", "rl-dl-relu", "rl-dl-dense", "tlrl-dl-relu", "tlrl-dl-dense")
# the paired differences in paired.csv: (a, b), a − b per seed on the test MAE
PAIRS = (("tlrl-dl-relu", "tl-finetune"), ("tlrl-dl-dense", "tl-finetune"), ("tl-finetune", "sc-dl-ef"),
         ("best-transfer", "peer-hgb-pa"), ("best-transfer", "zero-shot"))


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
        return self.activations(layer, m.activation)

    def run_unit(self, slug: str, size: int, seeds: Sequence[int]) -> pd.DataFrame:
        """Every seed of one (size, method), in this process; a network's fits as ``unit_steps`` plans them."""
        if slug not in REFERENCES and get_method(slug).learner == "nn17":
            m = get_method(slug)
            return drive(unit_steps(slug, self.prof, size, seeds), lambda fits: [self.fit(m, size, f) for f in fits])
        start = time.perf_counter()
        splits = {s: subsample(self.n_train, size, s) for s in seeds}
        if slug in REFERENCES:
            rows = [self._reference(slug, *splits[s]) | {"seed": s} for s in seeds]
        else:
            rows = [self._peer(*splits[s], s) | {"seed": s} for s in seeds]
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

    def activations(self, layer: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """The source's layer-``layer`` activations of the train and test parts (cached)."""
        return tuple(representation(self.source, X, layer, kind, self.cache / "activations")
                     for X in (self.ef, self.ef_test))

    def fit(self, m: Method, size: int, spec: CurveFit) -> dict:
        """Train one model per seed of ``spec`` at ``size``: their validation MAEs, and test MAEs for a final fit."""
        start = time.perf_counter()
        splits = {s: subsample(self.n_train, size, s) for s in spec.seeds}
        X, X_test = self.inputs(m, spec.layer)
        models = [new_models(m, X.shape[1], 1, self.source, s, spec.layer if m.freezes else 0)[0] for s in spec.seeds]
        results = fit_many(models, X, self.y, [splits[s][0] for s in spec.seeds], [splits[s][1] for s in spec.seeds],
                           spec.config, seeds=[s * 1000 for s in spec.seeds])
        test = [self._mae(predict_array(model, X_test)) for model in models] if spec.rung == 0 else None
        return {"seeds": list(spec.seeds), "val_mae": [r.best_val_mae for r in results], "test_mae": test,
                "seconds": time.perf_counter() - start}


@dataclass(frozen=True)
class CurveFit:
    """One stacked fit of a curve unit: a model per seed of ``seeds`` at ``layer``, trained with ``config``;
    ``rung``: the layer search's rung, or 0 for the final fit, which is tested."""

    layer: int | None
    seeds: tuple[int, ...]
    config: TrainConfig
    rung: int = 0

    @property
    def name(self) -> str:
        return ("final" if self.rung == 0 else f"r{self.rung}") + ("" if self.layer is None else f"-L{self.layer}")


# a network unit's steps: it yields the next fits, receives their results (``_Curve.fit``) and returns its rows
UnitSteps = Generator[list[CurveFit], list[dict], pd.DataFrame]


def unit_steps(slug: str, prof: Profile, size: int, seeds: Sequence[int]) -> UnitSteps:
    """The fits of one network unit: each seed's layer search (``search_steps``), then one fit per chosen layer."""
    m = get_method(slug)
    base = training_profile(m, prof).train
    config = curve_config(base, size - math.ceil(size / VAL_EVERY), prof.curve_min_steps)
    spent: list[float] = []
    layers = (yield from search_steps(m, prof, seeds, config, base.max_epochs, spent)) if m.searches_layer \
        else dict.fromkeys(seeds)
    fits = [CurveFit(layer, tuple(s for s in seeds if layers[s] == layer), config)
            for layer in sorted(set(layers.values()), key=lambda k: -1 if k is None else k)]
    results = yield fits
    spent += [r["seconds"] for r in results]
    rows = [{"size": size, "method": slug, "seed": s, "test_mae": test, "val_mae": val, "layer": f.layer,
             "epochs": config.max_epochs, "batch": config.batch_size, "seconds": sum(spent) / len(seeds)}
            for f, r in zip(fits, results, strict=True)
            for s, val, test in zip(r["seeds"], r["val_mae"], r["test_mae"], strict=True)]
    return pd.DataFrame(sorted(rows, key=lambda r: r["seed"])).reindex(columns=COLUMNS)


def search_steps(m: Method, prof: Profile, seeds: Sequence[int], config: TrainConfig, base_epochs: int,
                 spent: list[float]) -> Generator[list[CurveFit], list[dict], dict[int, int]]:
    """Each seed's layer (or frozen-layer count) by the profile's search on its own validation rows; each
    rung fits every layer still standing for some seed, over those seeds. ``spent`` gathers the fits' seconds."""
    if prof.layer_search == "cv":
        rungs, eta = [config.max_epochs], len(prof.layers)
    else:
        rungs = [max(1, math.ceil(config.max_epochs * e / base_epochs)) for e in prof.halving_epochs]
        eta = prof.halving_eta
    survivors = {s: list(prof.curve_layers or prof.layers) for s in seeds}
    for rung, epochs in enumerate(rungs, start=1):
        at = config.with_(max_epochs=epochs, patience=min(epochs, config.patience))
        fits = [CurveFit(layer, tuple(s for s in seeds if layer in survivors[s]), at, rung)
                for layer in sorted({k for ks in survivors.values() for k in ks})]
        results = yield fits
        spent += [r["seconds"] for r in results]
        scores: dict[int, dict[int, float]] = {s: {} for s in seeds}
        for f, r in zip(fits, results, strict=True):
            for s, mae in zip(r["seeds"], r["val_mae"], strict=True):
                scores[s][f.layer] = mae
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
    seeds_at: Mapping[int, Sequence[int]] | None = None,
    force: bool = False,
    client: Client | None = None,
) -> pd.DataFrame:
    """Run the learning curve into ``out_dir`` and return ``curve.csv``'s table.

    ``sizes``: None takes those of ``DEFAULT_SIZES`` that the train part holds (at least the smallest),
    with a warning naming those left out. ``methods``: configurations and reference lines (default:
    ``CURVE_METHODS`` and ``REFERENCES``); ``seeds_at``: other seeds at some sizes (e.g. ``{10000: [0]}``
    to cut seeds where a fit is dear). Every argument, and the data (featurised, its usable rows against
    the sizes), is checked before the folder is touched; a run that fails before any unit finished
    removes the folder it made. The folder is locked for the run (``tlrl.io.output_lock``); a folder
    holding results of another dataset, profile, source or tlrl version is refused unless ``force``,
    which also reruns every unit. The summaries cover exactly this run's units, and
    ``provenance.json``'s ``plan`` names them; units of other sizes or seeds stay in ``runs/`` for a
    later run that asks for them. The units are a plan of tasks (``tlrl.plan``); with a
    ``distributed.Client`` they run on Dask (``tlrl.cluster``).
    """
    out = run_folder(out_dir, force)
    check_client(client)
    prof = get_profile(profile)
    check_device(prof.train.device)
    slugs = _check_methods(methods)
    seeds = _integers(seeds, "seeds")
    sizes = None if sizes is None else _integers(sizes, "sizes")
    seeds_at = _check_seeds_at(seeds_at)
    if any(not 0 <= s < 2**32 for s in [*seeds, *(s for v in seeds_at.values() for s in v)]):
        raise TlrlError(f"seeds must be integers from 0 to {2**32 - 1}")
    if sizes is not None:
        _check_sizes(sizes, seeds_at)
    if source is not None:
        load_source(source)  # a source that is no EF checkpoint fails here, whatever the methods
    with warnings.catch_warnings(record=True) as caught:  # shown once the input passed, so an error is one line
        train, test = prepare_data(dataset, prof, 0, data_dir)
        curve = build_curve(train, test, prof, source, slugs)  # featurising drops or refuses the unusable rows
    n_train, left_out = curve.n_train, []
    if sizes is None:  # the default sizes the data holds; seeds_at for the others does not apply
        sizes = [n for n in DEFAULT_SIZES if n <= n_train] or [min(DEFAULT_SIZES[0], n_train)]
        seeds_at = {n: v for n, v in seeds_at.items() if n <= n_train}
        left_out = [n for n in DEFAULT_SIZES if n > n_train]
        _check_sizes(sizes, seeds_at)
    if max(sizes) > n_train:
        dropped = f" (of {len(train)}: the others were dropped as unusable)" if n_train < len(train) else ""
        raise TlrlError(f"the largest size, {max(sizes)}, exceeds the {n_train} usable train rows{dropped}")
    plan = [(size, slug, seeds_at.get(size, seeds)) for size in sorted(sizes) for slug in slugs]
    record = {"sizes": sorted(sizes), "seeds": seeds, "seeds_at": seeds_at, "methods": slugs}
    with output_lock(out):  # only now, with every input checked, may the folder change
        made = not out.exists()
        claim_folder(out, "curve", force, inputs=[dataset_name(dataset), source])
        from tlrl.plan import check_tasks

        check_tasks(out)
        check_results_dir(out, dataset, prof, 0, source, data_dir, force, plan=record)
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if left_out:
            warnings.warn(f"the train part holds {n_train} rows: the curve runs at sizes {sizes}, without the "
                          f"default sizes {left_out}", stacklevel=2)
        try:
            return _run_plan(out, plan, force, curve, client, dataset, prof, source, data_dir, slugs)
        except BaseException:
            if made:
                _remove_unstarted(out)
            raise


def _run_plan(out: Path, plan: list, force: bool, curve: _Curve, client: Client | None, dataset, prof: Profile,
              source, data_dir, slugs: list[str]) -> pd.DataFrame:
    """Run the plan's units that are not finished (all with ``force``, which also drops unfinished fits) as
    tasks (``tlrl.plan``), here or on the cluster, and return curve.csv's table."""
    from tlrl.plan import Job, absolute, clear_tasks, curve_plan, remember, run_here, where

    for folder in (out / "runs").glob("*"):
        remove_stale_temporaries(folder)
    if force:
        clear_tasks(out)
    todo = [unit for unit in plan if force or _read_unit(_unit_path(out, *unit), *unit) is None]
    for path in (_unit_path(out, *unit) for unit in todo):
        if path.exists():
            if not force:
                warnings.warn(f"{path} is cut short or lacks some of its seeds' rows; it runs again", stacklevel=3)
            path.unlink()
    job = Job(prof if client is None else prof.with_(train__progress=False), 0, *where(data_dir, source), tuple(slugs))
    units = [(*unit, _unit_path(out.resolve(), *unit)) for unit in todo]
    drivers = curve_plan(job, absolute(dataset), out.resolve(), units)
    if client is None:
        remember(job, curve)
        run_here(drivers, lambda: write_summaries(out, plan), "unit", prof.train.progress)
    else:
        from tlrl.cluster import run_on

        run_on(client, drivers, lambda: write_summaries(out, plan), "unit")
    return write_summaries(out, plan)


def _remove_unstarted(out: Path) -> None:
    """After a failure before any unit or fit finished in a folder this run made: remove the folder again."""
    if any(not p.name.startswith(".") for p in [*out.glob("runs/*/*.csv"), *out.glob("tasks/*/*/*.json")]):
        return
    (out / FILE).unlink(missing_ok=True)
    for folder in [*out.glob("runs/*"), out / "runs", out]:
        with contextlib.suppress(OSError):  # a folder still holding something stays
            folder.rmdir()


def _check_methods(methods: Sequence[str] | None) -> list[str]:
    """``methods`` as a list of curve methods and reference lines (None: the default ones)."""
    if methods is None:
        return [*REFERENCES, *CURVE_METHODS]
    if isinstance(methods, str) or not isinstance(methods, Iterable):
        raise TlrlError(f"methods must be a list of method names, got {methods!r}")
    slugs = list(methods)
    valid = [*(s for s, m in METHODS.items() if m.learner != "automl" and not m.fixed_layer), *REFERENCES]
    for slug in slugs:
        if slug not in valid:
            raise TlrlError(f"method {slug!r} is not on the curve: choose from {', '.join(valid)}")
    if not slugs:
        raise TlrlError("methods names no method; leave it out (None) to run all of them")
    if len(set(slugs)) != len(slugs):
        raise TlrlError(f"each method may be given once, got {slugs}")
    return slugs


def _integers(values: object, what: str) -> list[int]:
    """``values`` as a non-empty list of distinct integers; anything else is a ``TlrlError`` naming ``what``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TlrlError(f"{what} must be a list of integers, got {values!r}")
    items = list(values)
    if not items or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TlrlError(f"{what} must be a non-empty list of integers, got {items!r}")
    if len(set(items)) != len(items):
        raise TlrlError(f"each of the {what} may be given once, got {items}")
    return [int(v) for v in items]


def _check_seeds_at(seeds_at: Mapping[int, Sequence[int]] | None) -> dict[int, list[int]]:
    """``seeds_at`` as ``{size: seeds}`` of integers."""
    if seeds_at is None:
        return {}
    if not isinstance(seeds_at, Mapping):
        raise TlrlError(f"seeds_at must map sizes to seeds, such as {{10000: [0]}}, got {seeds_at!r}")
    sizes = _integers(list(seeds_at), "sizes of seeds_at") if seeds_at else []
    return {n: _integers(v, f"seeds at size {n}") for n, v in zip(sizes, seeds_at.values(), strict=True)}


def build_curve(train: pd.DataFrame, test: pd.DataFrame, prof: Profile, source: str | Path | None,
                slugs: Sequence[str]) -> _Curve:
    """The features, the source (where ``slugs`` need it) and its predictions for a curve's units."""
    needs_source = any(s in ("zero-shot", "offset") or (s in METHODS and METHODS[s].uses_source) for s in slugs)
    needs_pa = any(s in METHODS and METHODS[s].inputs == "pa" for s in slugs)
    cache = default_cache_dir()
    if needs_pa or any(s in METHODS and METHODS[s].inputs == "representation" for s in slugs):
        try:
            check_writable(cache, folder=True)
        except TlrlError as exc:
            raise TlrlError(f"{exc}; the feature cache needs a writable TLRL_CACHE_DIR") from None
    return _Curve(train, test, prof, load_source(source) if needs_source else None, cache, needs_pa)


def _check_sizes(sizes: Sequence[int], seeds_at: Mapping[int, Sequence[int]]) -> None:
    """Refuse sizes too small to validate on, and seeds for sizes not on the curve."""
    if min(sizes) < 2 * VAL_EVERY:
        raise TlrlError(f"a size needs at least {2 * VAL_EVERY} rows, got {min(sizes)}")
    if set(seeds_at) - set(sizes):
        raise TlrlError(f"seeds are given for sizes not on the curve: {sorted(set(seeds_at) - set(sizes))}")


def _unit_path(out: Path, size: int, slug: str, seeds: Sequence[int]) -> Path:
    """``runs/<size>/<slug>_s0-1-2.csv``; a long seed list is named by its count and a hash
    (``<slug>_100seeds-<sha256 prefix>.csv``). The rows hold the seeds either way."""
    name = "s" + "-".join(map(str, seeds))
    if len(name) > SEEDS_IN_NAME:
        name = f"{len(seeds)}seeds-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return out / "runs" / str(size) / f"{slug}_{name}.csv"


def _read_unit(path: Path, size: int, slug: str, seeds: Sequence[int]) -> pd.DataFrame | None:
    """The unit's rows, or None where ``path`` does not hold one complete row per seed of (size, slug)."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError):  # absent, empty, not a CSV
        return None
    if (list(frame.columns) != COLUMNS or frame[REQUIRED].isna().any(axis=None)
            or not (frame["size"] == size).all() or not (frame["method"] == slug).all()
            or sorted(frame["seed"]) != sorted(seeds)):
        return None
    return frame


def write_summaries(out: Path, plan: list[tuple[int, str, list[int]]]) -> pd.DataFrame:
    """Rebuild curve.csv, summary.csv and paired.csv from the plan's finished units."""
    frames = [_read_unit(_unit_path(out, *unit), *unit) for unit in plan]
    frames = [f for f in frames if f is not None]
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

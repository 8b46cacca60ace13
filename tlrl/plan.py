"""The work of a benchmark or a learning curve as a plan of tasks: features, fits, search rungs, summaries.

A task is a function of its inputs that writes its result atomically and is skipped when the result is
already there, so that a rerun resumes task by task: a fit into the results folder's ``tasks/``, a
feature (PA, the source's activations at one layer) into the feature cache. A fit is one stacked
``fit_many`` call: a configuration × layer (× rung) of the benchmark, or a curve unit's seeds × layer
(× rung) at one size. Each configuration, and each curve unit, is a driver: a generator that yields
the tasks of its next step and receives their results, so that a search's next rung is planned from
the scores of the last (``tlrl.methods.protocol``, ``tlrl.curve.unit_steps``). When a driver ends it
writes its run folder (or unit file) and removes its fits; the summaries are rebuilt after each.

``run_here`` runs the drivers in this process, one after the other; ``tlrl.cluster.run_on`` runs their
tasks on Dask as soon as their inputs are ready. Seeds fix the numbers, so both give the same ones where
each fit uses as many torch threads (on a CPU the thread count changes the order of torch's sums).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
import warnings
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from tlrl.curve import REFERENCES, CurveFit, build_curve, unit_steps
from tlrl.data import default_cache_dir
from tlrl.errors import TlrlError
from tlrl.featurize import featurize
from tlrl.io import atomic_dir, write_csv, write_json
from tlrl.methods import (
    Fit,
    FitResult,
    base_features,
    drive,
    fit,
    get_method,
    metrics_of,
    prepare_data,
    protocol,
    training_profile,
    write_run,
)
from tlrl.outputs import TASKS
from tlrl.profiles import Profile
from tlrl.representation import SHIPPED, load_source, representation


@dataclass(frozen=True)
class Job:
    """What every task of one run shares. ``id`` is new for each run: a worker prepares the data once per run."""

    profile: Profile
    seed: int
    data_dir: str | Path | None
    source: str | Path | None
    methods: tuple[str, ...]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class Task:
    """One task of the plan: ``fn(*args)`` writes its result to ``path``; None: ``fn`` fills a cache (a feature).
    ``needs``: the feature tasks that run first. ``read``: its result, read back from ``path``."""

    key: str
    fn: Callable[..., None]
    args: tuple
    path: Path | None = None
    needs: tuple[Task, ...] = ()
    read: Callable[[Path], Any] | None = None

    def done(self) -> bool:
        """Whether its result is there; a damaged one (unreadable, or not what the task makes) is removed with a
        warning, so that the task runs again."""
        if self.path is None or not self.path.exists():
            return False
        try:
            self.result()
            return True
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            warnings.warn(f"{self.path} is damaged ({type(exc).__name__}); it runs again", stacklevel=2)
            _delete(self.path)
            return False

    def result(self) -> Any:
        return None if self.read is None else self.read(self.path)


Driver = Generator[list[Task], list[Any], None]
_prepared: dict[str, Any] = {}  # per process: the data of the run under way, by Job.id


def _delete(path: Path) -> None:
    """Remove a fit's result (a folder or a file), or say in one line why it cannot be."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        raise TlrlError(f"cannot remove {path} ({exc.strerror or exc}): remove it by hand") from None


def check_tasks(out: Path) -> None:
    """Refuse a results folder with a symbolic link under ``tasks/``: a fit deleted or written there would
    land outside the folder."""
    tasks = out / TASKS
    if not tasks.is_dir() or tasks.is_symlink():
        return
    links = [p for p in tasks.rglob("*") if p.is_symlink()]
    if links:
        raise TlrlError(f"{links[0]} is a symbolic link; {tasks} holds only tlrl's own fits: remove the link")


def clear_tasks(out: Path) -> None:
    """Remove every unfinished fit (``--force``), or say in one line why they cannot be removed."""
    if (out / TASKS).is_dir() and not (out / TASKS).is_symlink():
        _delete(out / TASKS)


def where(data_dir: str | Path | None, source: str | Path | None) -> tuple[str | None, str]:
    """``data_dir`` and ``source`` as workers in other folders find them: absolute, and the source as its ref
    (``SHIPPED`` by name, a checkpoint by its absolute path), as the metrics record it."""
    return (None if data_dir is None else str(Path(data_dir).resolve()),
            SHIPPED if source is None else load_source(source).ref)


def absolute(dataset):
    """A dataset given as a file's path, made absolute for workers in other folders; names and frames as given."""
    if isinstance(dataset, (str, Path)) and Path(dataset).is_file():
        return str(Path(dataset).resolve())
    return dataset


def remember(job: Job, prepared: Any) -> None:
    """Let this process's tasks of ``job`` use data prepared already (the serial run's client)."""
    _prepared.clear()
    _prepared[job.id] = prepared


def _once(job: Job, prepare: Callable[[], Any]) -> Any:
    """The data of ``job`` in this process, prepared on first use (one run's at a time)."""
    if job.id not in _prepared:
        with warnings.catch_warnings():  # the client has reported the dropped rows
            warnings.simplefilter("ignore")
            remember(job, prepare())
    return _prepared[job.id]


def run_here(drivers: dict[str, Driver], on_done: Callable[[], object], what: str, progress: bool) -> None:
    """Run every driver to its end in this process, its tasks one by one, and call ``on_done`` after each."""
    ran: set[str] = set()

    def execute(tasks: list[Task]) -> list[Any]:
        for task in tasks:
            if task.done():
                continue
            for need in task.needs:
                if need.key not in ran:
                    need.fn(*need.args)
                    ran.add(need.key)
            task.fn(*task.args)
        return [task.result() for task in tasks]

    for driver in tqdm(drivers.values(), desc=f"{what}s", unit=what, disable=not progress):
        drive(driver, execute)
        on_done()


def _steps(steps: Generator, task: Callable[[Any], Task]) -> Generator[list[Task], list[Any], Any]:
    """A driver's steps of fits as steps of tasks (``task`` maps each fit); the steps' return value."""
    results = None
    try:
        while True:
            results = yield [task(spec) for spec in steps.send(results)]
    except StopIteration as stop:
        return stop.value


# --- the benchmark -------------------------------------------------------------------------------------


@dataclass
class _Data:
    train: pd.DataFrame
    test: pd.DataFrame
    source: Any  # a tlrl.representation.Source, or None where no configuration uses one
    cache: Path


def benchmark_data(job: Job, dataset) -> _Data:
    """The train and test parts, the source and the cache of a benchmark run."""
    train, test = prepare_data(dataset, job.profile, job.seed, job.data_dir)
    uses = any(get_method(slug).uses_source for slug in job.methods)
    return _Data(train, test, load_source(job.source) if uses else None, default_cache_dir())


def benchmark_plan(job: Job, dataset, out: Path, slugs: Iterable[str]) -> dict[str, Driver]:
    """A driver per configuration of ``slugs``, writing ``out/runs/<slug>/``."""
    return {slug: _configuration(job, dataset, out, slug) for slug in slugs}


def _configuration(job: Job, dataset, out: Path, slug: str) -> Driver:
    m = get_method(slug)
    prof = training_profile(m, job.profile)
    folder = out / TASKS / slug
    pa = Task("features/pa", _pa, (job, dataset)) if m.inputs == "pa" else None

    def task(spec: Fit) -> Task:
        needs = (pa,) if pa else ()
        if m.inputs == "representation":
            args = (job, dataset, spec.layer, m.activation)
            needs = (Task(f"features/{m.activation}-L{spec.layer}", _activations, args),)
        def read(path: Path) -> FitResult:
            return _checked(read_fit(path), spec, prof.n_folds, m.learner == "nn17")

        return Task(f"{slug}/{spec.name}", _fit, (job, dataset, slug, spec, folder / spec.name), folder / spec.name,
                    needs, read)

    chosen, layer, sweep = yield from _steps(protocol(m, slug, prof), task)
    result = task(chosen).result()
    seconds = sum(row["seconds"] for row in sweep) + (result.seconds if chosen.search is None else 0.0)
    source = job.source if m.uses_source else None  # its ref (``where``)
    metrics = metrics_of(slug, dataset, result, layer, sweep, prof, job.profile.reductions, source, job.seed, seconds)
    write_run(out / "runs" / slug, metrics, result, prof)
    remove_fits(folder)


def _pa(job: Job, dataset) -> None:
    """PA of both parts into the feature cache."""
    data = _once(job, lambda: benchmark_data(job, dataset))
    for part in (data.train, data.test):
        featurize(part, "pa", cache_dir=data.cache / "features", progress=job.profile.train.progress)


def _activations(job: Job, dataset, layer: int, kind: str) -> None:
    """The source's layer-``layer`` activations of both parts into the feature cache."""
    data = _once(job, lambda: benchmark_data(job, dataset))
    Xtr, _, Xte, _, _ = base_features(data.train, data.test, "ef", data.cache)
    for X in (Xtr, Xte):
        representation(data.source, X, layer, kind, data.cache / "activations")


def _fit(job: Job, dataset, slug: str, spec: Fit, path: Path) -> None:
    data = _once(job, lambda: benchmark_data(job, dataset))
    m = get_method(slug)
    with warnings.catch_warnings():  # the client has reported the rows each part drops
        warnings.filterwarnings("ignore", message=r"\d+ of \d+ rows have unusable formulas")
        result = fit(m, spec, data.train, data.test, data.source, training_profile(m, job.profile), job.seed,
                     data.cache)
    write_fit(path, result)


def write_fit(path: Path, result: FitResult) -> None:
    """A fit's result as a folder, written as a whole: fit.json, and test.parquet, history.csv,
    automl_trials.csv where it has them (parquet keeps the predictions' floats exact)."""
    extras = {k: v for k, v in result.extras.items() if k != "trials"}
    with atomic_dir(path) as tmp:
        write_json(tmp / "fit.json", {"fold_val_mae": result.fold_val_mae, "seconds": result.seconds,
                                      "n_train": result.n_train, "spec": result.spec, "extras": extras})
        if result.test is not None:
            result.test.to_parquet(tmp / "test.parquet")
        for name, frame in (("history.csv", result.history), ("automl_trials.csv", result.extras.get("trials"))):
            if frame is not None:
                write_csv(tmp / name, frame)


def read_fit(path: Path) -> FitResult:
    """A fit's result as ``write_fit`` wrote it."""
    record = json.loads((path / "fit.json").read_text())
    tables = {name: pd.read_csv(path / name, float_precision="round_trip") if (path / name).exists() else None
              for name in ("history.csv", "automl_trials.csv")}
    test = pd.read_parquet(path / "test.parquet") if (path / "test.parquet").exists() else None
    extras = record["extras"] | ({"trials": tables["automl_trials.csv"]} if tables["automl_trials.csv"] is not None
                                 else {})
    return FitResult(record["fold_val_mae"], record["seconds"], record["n_train"], record["spec"], test,
                     tables["history.csv"], extras)


def _checked(result: FitResult, spec: Fit, n_folds: int, network: bool) -> FitResult:
    """``result`` if it is what ``spec`` makes: a validation MAE per fold, and for a whole CV each fold's test
    predictions (and a network's history); else a ``ValueError``."""
    folds = spec.folds or n_folds
    if len(result.fold_val_mae) != folds or not all(isinstance(v, float) for v in result.fold_val_mae):
        raise ValueError(f"{len(result.fold_val_mae)} fold MAEs for {folds} folds")
    if spec.folds is None and (result.test is None or result.test.filter(like="fold_").shape[1] != folds):
        raise ValueError("no test predictions for every fold")
    if network and result.history is None:
        raise ValueError("no history")
    return result


def remove_fits(folder: Path) -> None:
    """A finished driver's fits, and the folders up to ``tasks/`` that it leaves empty."""
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:
        with contextlib.suppress(OSError):  # a folder still holding others' fits stays
            parent.rmdir()
        if parent.name == TASKS:
            return


# --- the learning curve --------------------------------------------------------------------------------


def curve_plan(job: Job, dataset, out: Path, units: Iterable[tuple[int, str, list[int], Path]]) -> dict[str, Driver]:
    """A driver per curve unit (size, method, seeds, its file)."""
    return {f"{size}/{slug}": _unit(job, dataset, out, size, slug, seeds, path) for size, slug, seeds, path in units}


def _curve_data(job: Job, dataset):
    return build_curve(*prepare_data(dataset, job.profile, 0, job.data_dir), job.profile, job.source, job.methods)


def _unit(job: Job, dataset, out: Path, size: int, slug: str, seeds: list[int], path: Path) -> Driver:
    key = f"{size}/{slug}"
    if slug in REFERENCES or get_method(slug).learner != "nn17":  # no network to fit: the unit is one task
        yield [Task(key, _whole_unit, (job, dataset, slug, size, seeds, path), path)]
        return
    m = get_method(slug)
    folder = out / TASKS / str(size) / path.stem

    def task(spec: CurveFit) -> Task:
        needs = ()
        if m.inputs == "representation":
            needs = (Task(f"features/{m.activation}-L{spec.layer}", _curve_activations,
                          (job, dataset, spec.layer, m.activation)),)
        def read(path: Path) -> dict:
            record = json.loads(path.read_text())
            n = len(spec.seeds)
            if (record["seeds"] != list(spec.seeds) or len(record["val_mae"]) != n or float(record["seconds"]) < 0
                    or (spec.rung == 0 and len(record["test_mae"]) != n)):
                raise ValueError(f"not the fit of seeds {list(spec.seeds)}")
            return record

        return Task(f"{key}/{spec.name}", _curve_fit, (job, dataset, slug, size, spec, folder / f"{spec.name}.json"),
                    folder / f"{spec.name}.json", needs, read)

    frame = yield from _steps(unit_steps(slug, job.profile, size, seeds), task)
    write_csv(path, frame)
    remove_fits(folder)


def _whole_unit(job: Job, dataset, slug: str, size: int, seeds: list[int], path: Path) -> None:
    write_csv(path, _once(job, lambda: _curve_data(job, dataset)).run_unit(slug, size, seeds))


def _curve_activations(job: Job, dataset, layer: int, kind: str) -> None:
    _once(job, lambda: _curve_data(job, dataset)).activations(layer, kind)


def _curve_fit(job: Job, dataset, slug: str, size: int, spec: CurveFit, path: Path) -> None:
    result = _once(job, lambda: _curve_data(job, dataset)).fit(get_method(slug), size, spec)
    write_json(path, result)

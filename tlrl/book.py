"""What every chapter of the book sets up first, and the few helpers several chapters share.

``setup`` turns a chapter's papermill parameters into its profile and results folder, sets the
plot style and checks (``tlrl.provenance``) that the folder holds no results made with other
settings. Notebooks have no terminal, so progress bars are off: training runs with
``progress=False`` and the ``tlrl`` commands a chapter starts inherit ``TQDM_DISABLE``;
chapters print one-line summaries instead.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Markdown, display

from tlrl.benchmark import load_runs
from tlrl.data import cv_folds
from tlrl.errors import TlrlError
from tlrl.featurize import featurize
from tlrl.io import atomic_write
from tlrl.methods import get_method, prepare_data, training_profile
from tlrl.profiles import Profile, get_profile
from tlrl.provenance import check_results_dir
from tlrl.train import TrainConfig, device_name, pick_device

RESULTS_DIR_ENV = "TLRL_RESULTS_DIR"
DEFAULT_DEMO_LAYER = 3  # by-hand examples without a finished search: an early, wide, generic layer
DEFAULT_DATASET = "jarvis_formation_energy"
BOOK_URL = "https://tlrl-book.github.io/tlrl/"  # written by scripts/set_repository.py from _config.yml
PROFILES_URL = f"{BOOK_URL}book/reproduce.html#run-profiles"


def repository_root() -> Path | None:
    """The tlrl checkout the notebook runs in (None in Colab, where tlrl is pip-installed)."""
    here = Path.cwd().resolve()
    return next((p for p in (here, *here.parents) if (p / "tlrl" / "__init__.py").is_file()), None)


def default_results_dir(profile: str, dataset: str | Path) -> Path:
    """``<base>/<profile>``, or ``<base>/<profile>-<file name>`` for another dataset.

    The base is ``$TLRL_RESULTS_DIR`` when set, else ``results/`` in the repository.
    """
    name = profile if str(dataset) == DEFAULT_DATASET else f"{profile}-{Path(str(dataset)).name.split('.')[0]}"
    base = os.environ.get(RESULTS_DIR_ENV) or (repository_root() or Path.cwd()) / "results"
    return Path(base) / name


def shown(path: str | Path) -> str:
    """A path as the reader should see it: relative to the repository, $TLRL_RESULTS_DIR or home."""
    path = Path(path).resolve()
    bases = [(repository_root(), ""), (Path.home(), "~/")]
    if os.environ.get(RESULTS_DIR_ENV):
        bases.insert(0, (Path(os.environ[RESULTS_DIR_ENV]).resolve(), f"${RESULTS_DIR_ENV}/"))
    for base, prefix in bases:
        if base is not None and path.is_relative_to(base):
            return prefix + path.relative_to(base).as_posix()
    return path.name


def setup(profile: str, dataset: str | Path, seed: int, device: str | None, results_dir: str | Path | None,
          source: str | Path | None = None, data_dir: str | Path | None = None) -> tuple[Profile, Path]:
    """A chapter's profile (no progress bars, the chosen device) and its results folder, checked by
    ``tlrl.provenance``: a folder holding results of another dataset, profile, seed or source is refused."""
    # the `tlrl` commands a chapter runs with `!`: no progress bars, and the console script installed
    # beside this kernel's Python comes first on PATH (a virtual environment that is not activated)
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    prof = get_profile(profile, train__device=device, train__progress=False)
    results_dir = Path(results_dir) if results_dir else default_results_dir(prof.name, dataset)
    (results_dir / "chapters").mkdir(parents=True, exist_ok=True)
    check_results_dir(results_dir, dataset, prof, seed, source, data_dir)
    warnings.formatwarning = warning_line
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight"})
    pd.set_option("display.precision", 4)
    display(Markdown(
        f"This page ran with the **{prof.name}** profile on {device_words(pick_device(device))}; "
        f"the [run profiles]({PROFILES_URL}) table gives every setting. Its results are in `{shown(results_dir)}`."))
    return prof, results_dir


def warning_line(message, category, filename, lineno, line=None) -> str:
    """A warning as a page shows it: category and message, without the kernel's temporary file name."""
    return f"{category.__name__}: {message}\n"


def device_words(device: torch.device) -> str:
    """``the CPU``, or ``a GPU (cuda)`` style words for a sentence."""
    return "the CPU" if device.type == "cpu" else f"a GPU ({device_name(device)})"


def demo_config(prof: Profile, seed: int) -> TrainConfig:
    """The training settings of the chapters' by-hand fits: the profile's, with room to converge.

    A demo trains on about a thousand rows, where an epoch is cheap: with a constant learning rate the
    epoch cap is raised fourfold so that early stopping, not the cap, ends the fit. A cosine schedule
    keeps its length (it decays to zero at the cap by design).
    """
    config = prof.train.with_(seed=seed)
    return config.with_(max_epochs=4 * config.max_epochs) if config.lr_schedule == "constant" else config


@dataclass
class FoldZero:
    """Fold 0 of the protocol's CV on EF inputs: what the chapters' by-hand fits train and test on."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    fold_train: np.ndarray  # row indices into X_train, cut to the demo's size
    fold_val: np.ndarray
    profile: Profile
    seed: int

    def config(self, method: str) -> TrainConfig:
        """The by-hand fit settings of ``method``: its learning rate and epochs under the profile."""
        return demo_config(training_profile(get_method(method), self.profile), self.seed)


def fold_zero(dataset: str | Path, prof: Profile, seed: int, data_dir: str | Path | None, rows: int) -> FoldZero:
    """The profile's train/test rows as EF, fold 0 of its K-fold split (training part cut to ``rows``)."""
    train, test = prepare_data(dataset, prof, seed, data_dir)
    (X_train, y_train), (X_test, y_test) = (
        (features.to_numpy(np.float32), kept["target"].to_numpy(np.float32))
        for features, kept in (featurize(part, "ef") for part in (train, test))
    )
    fold_train, fold_val = cv_folds(len(X_train), prof.n_folds, seed)[0]
    demo = FoldZero(X_train, y_train, X_test, y_test, fold_train[:rows], fold_val, prof, seed)
    c, scratch = demo_config(prof, seed), demo.config("sc-dl-ef")
    epochs = f"{c.max_epochs}" + (f" (SC:DL {scratch.max_epochs})" if scratch.max_epochs != c.max_epochs else "")
    print(f"fold 0 of {prof.n_folds}: {len(demo.fold_train):,} training rows (of {len(fold_train):,}), "
          f"{len(fold_val):,} validation rows, {len(X_test):,} test rows; batch {c.batch_size}, "
          f"{prof.learning_rates} ({c.lr_schedule}), up to {epochs} epochs, {c.stopping}"
          + (f"; {prof.scratch_ef_settings}" if prof.scratch_ef_train else ""))
    return demo


def mae(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean absolute error, the paper's metric."""
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(y))))


def signed(value: float, digits: int = 3) -> str:
    """A difference with its sign, and a true minus sign (−) as print uses: "+0.023", "−0.038"."""
    return f"{value:+.{digits}f}".replace("-", "\u2212")


MAE_COLUMNS = ("cv_mae_mean", "cv_mae_std", "test_mae", "test_mae_ensemble")
RESULT_HEADERS = {"cv_mae_mean": "CV MAE", "cv_mae_std": "CV std", "best_layer": "layer",
                  "test_mae": "test MAE (best fold)", "test_mae_ensemble": "test MAE (ensemble)",
                  "n_train": "train rows", "n_test": "test rows", "seconds": "seconds", "group": "category"}


def results_table(frame: pd.DataFrame, unit: str, columns=("cv_mae_mean", "cv_mae_std", "best_layer", "test_mae",
                                                          "test_mae_ensemble", "seconds")) -> pd.DataFrame:
    """Results for reading: one row per configuration, MAEs to 4 decimals, whole-number layers and seconds, row
    counts with thousands separators, plain headers."""
    shown_frame = frame.set_index("paper_name")[list(columns)].rename_axis("configuration")
    for column in set(MAE_COLUMNS).intersection(shown_frame):
        shown_frame[column] = shown_frame[column].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    if "best_layer" in shown_frame:
        shown_frame["best_layer"] = shown_frame["best_layer"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    if "seconds" in shown_frame:
        shown_frame["seconds"] = shown_frame["seconds"].round().astype(int)
    for count in {"n_train", "n_test"} & set(shown_frame.columns):
        shown_frame[count] = shown_frame[count].map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
    headers = RESULT_HEADERS | {"cv_mae_mean": f"CV MAE ({unit})"}
    return shown_frame.rename(columns=headers)


def chosen_layer(results_dir: Path, slugs: list[str], grid: tuple[int, ...]) -> tuple[int, str | None]:
    """The layer the first finished run among ``slugs`` chose, and that run's slug.

    Without one: the grid's layer nearest ``DEFAULT_DEMO_LAYER``, and None.
    """
    runs = {run["method"]: run for run in load_runs(results_dir)}
    for slug in slugs:
        if runs.get(slug, {}).get("best_layer") is not None:
            return int(runs[slug]["best_layer"]), slug
    return min(grid, key=lambda k: abs(k - DEFAULT_DEMO_LAYER)), None


def tlrl_command(args: str, cwd: Path, log: Path, rerun: bool) -> str:
    """``tlrl ARGS`` run in ``cwd`` as a reader would type it; what it printed is kept in ``log`` and returned.

    Without ``rerun``, an existing ``log`` is returned and nothing runs. A failing command raises its message.
    """
    if log.is_file() and not rerun:
        return log.read_text()
    result = subprocess.run(["tlrl", *shlex.split(args)], cwd=cwd, capture_output=True, text=True)
    if result.returncode:
        raise TlrlError(f"tlrl {args} failed: {result.stderr.strip()}")
    with atomic_write(log) as tmp:
        tmp.write_text(result.stdout)
    return result.stdout


def transcript(commands: dict[str, str]) -> Markdown:
    """Commands a reader can copy (a bash block), then what they printed (a text block)."""
    printed = "".join(commands.values()).rstrip("\n")
    return Markdown(f"```bash\n{chr(10).join(commands)}\n```\n\nThey printed:\n\n```text\n{printed}\n```")


def read_sweep(results_dir: Path) -> pd.DataFrame:
    """sweep.csv with one validation-MAE column per evaluation (``val_mae``, ``val_mae_std``, ``rung``).

    Folders written before the halving search hold only ``cv_mae_mean``/``cv_mae_std`` per layer: they
    are read as one exhaustive-CV rung.
    """
    path = results_dir / "sweep.csv"
    sweep = pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()
    if "cv_mae_mean" in sweep:
        sweep = sweep.rename(columns={"cv_mae_mean": "val_mae", "cv_mae_std": "val_mae_std"})
        sweep = sweep.assign(search="cv", rung=1, folds=np.nan, epochs=np.nan)
    return sweep


def paired_difference(results_dir: Path) -> dict | None:
    """paired.json (the per-fold TL+RL − TL:Fine-Tune difference), when the benchmark wrote one."""
    path = results_dir / "paired.json"
    return json.loads(path.read_text()) if path.is_file() else None


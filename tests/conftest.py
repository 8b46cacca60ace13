"""Shared fixtures: the real datasets beside the repository, in small slices."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("TLRL_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Feature/activation caches and downloads go to a per-session folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TLRL_CACHE_DIR", str(tmp_path_factory.mktemp("tlrl-cache")))
        mp.setenv("TLRL_DATA_DIR", str(DATA_DIR))
        yield


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The tests' tiny matmuls run fastest on one thread, and the machine may be busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory, data_dir) -> Path:
    """A source model pretrained on OQMD under the smoke profile (seconds)."""
    from tlrl.pretrain import pretrain

    out = tmp_path_factory.mktemp("tiny-source")
    pretrain(out, profile="smoke", data_dir=data_dir)
    return out


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "jarvis_formation_energy.csv.gz").is_file():
        pytest.fail(f"the real datasets are missing: set TLRL_DATA_DIR (looked in {DATA_DIR})")
    return DATA_DIR


@pytest.fixture(scope="session")
def jarvis(data_dir) -> pd.DataFrame:
    """The whole JARVIS formation-energy set with its published split."""
    from tlrl.data import load_dataset

    return load_dataset("jarvis_formation_energy", data_dir=data_dir)


@pytest.fixture(scope="session")
def jarvis_slice(jarvis) -> pd.DataFrame:
    """A seeded 600-row train / 200-row test slice of JARVIS."""
    train = jarvis[jarvis.split == "train"].sample(600, random_state=0)
    test = jarvis[jarvis.split == "test"].sample(200, random_state=0)
    return pd.concat([train, test], ignore_index=True)


@pytest.fixture(scope="session")
def oqmd_head(data_dir) -> pd.DataFrame:
    return pd.read_csv(data_dir / "oqmd_formation_enthalpy.csv.gz", nrows=2000)


# --- the book: notebooks executed once per session under the smoke profile -------------------------

NOTEBOOK_DIR = REPO / "notebooks"
ARTIFACTS = REPO / "_build" / "test-artifacts"


@pytest.fixture(scope="session")
def book_source() -> str | None:
    """The source model the notebooks use: ``None``, their default, i.e. the model shipped with tlrl.

    The shipped checkpoint is part of the product, so its absence fails the book tests instead of
    skipping them. ``TLRL_BOOK_TEST_SOURCE=<checkpoint dir>`` runs them against another source model.
    """
    from tlrl.pretrained import SOURCE_DIR

    override = os.environ.get("TLRL_BOOK_TEST_SOURCE")
    if override:
        return override
    if not (SOURCE_DIR / "card.json").is_file():
        pytest.fail(
            f"the shipped source model is missing: {SOURCE_DIR} has no card.json. The notebooks load it by "
            "default; train it (`tlrl pretrain`) and copy it there, or set TLRL_BOOK_TEST_SOURCE to a checkpoint "
            "folder to test the book against another source model."
        )
    return None


@pytest.fixture(scope="session")
def smoke_notebooks(tmp_path_factory, data_dir, book_source):
    """Every chapter notebook run by papermill under the smoke profile, sharing one results folder.

    Returns a namespace with ``executed`` (folder of executed copies), ``results_dir`` and
    ``runs`` (name -> namespace(output, seconds, error)); a failing notebook is recorded, not raised,
    so each chapter's test reports its own failure.
    """
    import json
    import time
    from types import SimpleNamespace

    import papermill

    base = tmp_path_factory.mktemp("smoke-book")
    executed, results = base / "executed", base / "results"
    executed.mkdir()
    parameters = {"profile": "smoke", "results_dir": str(results)}
    if book_source:
        parameters["source"] = book_source
    runs = {}
    for path in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")):
        output = executed / path.name
        start = time.perf_counter()
        try:
            papermill.execute_notebook(path, output, parameters=parameters, cwd=NOTEBOOK_DIR, kernel_name="python3",
                                       progress_bar=False, execution_timeout=600)
            error = None
        except Exception as exc:  # papermill's PapermillExecutionError names the failing cell
            error = f"{type(exc).__name__}: {exc}"
        runs[path.stem] = SimpleNamespace(output=output, seconds=time.perf_counter() - start, error=error)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "smoke-notebook-seconds.json").write_text(
        json.dumps({name: round(run.seconds, 1) for name, run in runs.items()}, indent=2) + "\n"
    )
    return SimpleNamespace(executed=executed, results_dir=results, runs=runs)

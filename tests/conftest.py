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

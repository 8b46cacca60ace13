"""A light core and extras: pyproject's dependency sets, their conda mirror, and the missing-extra line."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

from tlrl.errors import TlrlError
from tlrl.methods import run

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def test_the_core_is_light() -> None:
    core = {Requirement(r).name.lower(): Requirement(r) for r in PROJECT["dependencies"]}
    assert {"hyperopt-sklearn", "hyperopt", "setuptools", "jupyter-book", "papermill", "jarvis-tools"}.isdisjoint(core)
    assert core["numpy"].specifier.contains("2.3.0") and core["numpy"].specifier.contains("9.0"), "no numpy cap"
    automl = {Requirement(r).name.lower(): Requirement(r) for r in PROJECT["optional-dependencies"]["automl"]}
    assert not automl["numpy"].specifier.contains("2.3.0"), "hyperopt 0.2.7 needs numpy<2.3 (the automl extra)"


def test_make_installs_every_extra() -> None:
    installed = re.search(r'pip install -q -e "\.\[([a-z,]+)\]"', (REPO / "Makefile").read_text()).group(1)
    assert set(installed.split(",")) == set(PROJECT["optional-dependencies"])


def test_environment_yml_mirrors_core_and_extras() -> None:
    deps = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    conda = [d for d in deps if isinstance(d, str)]
    mirrored = {re.split(r"[<>=! ]", d, maxsplit=1)[0].lower() for d in conda + pip if not d.startswith("-")}
    wanted = names(PROJECT["dependencies"]) | names([r for rs in PROJECT["optional-dependencies"].values() for r in rs])
    assert wanted - mirrored == set()
    editable = next(d for d in pip if d.startswith("-e ."))
    assert set(editable.removeprefix("-e .[").removesuffix("]").split(",")) == set(PROJECT["optional-dependencies"])


def test_a_missing_extra_stops_automl_with_one_line(monkeypatch, jarvis_slice: pd.DataFrame, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "hpsklearn", None)  # as if hyperopt-sklearn were not installed
    with pytest.raises(TlrlError) as info:
        run("sc-ml-ef", jarvis_slice, profile="smoke", cache_dir=tmp_path)
    assert str(info.value) == "AutoML (sc-ml-ef, sc-ml-pa) needs `pip install 'tlrl[automl]'` (missing: hpsklearn)"

"""A light core and extras: pyproject's dependency sets, their conda mirror, and the missing-extra line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
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
    makefile = (REPO / "Makefile").read_text()
    assert 'pip install -q -e ".[$(EXTRAS)]"' in makefile
    installed = re.search(r"^EXTRAS +\?= *([a-z,]+)$", makefile, re.M).group(1)
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


def test_license_version_and_typing_are_declared_once() -> None:
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert "MIT License" in (REPO / "LICENSE").read_text()
    assert PROJECT["dynamic"] == ["version"] and "version" not in PROJECT
    assert (REPO / "tlrl" / "py.typed").is_file()


def test_the_core_imports_without_the_book_extra() -> None:
    assert "seaborn" not in names(PROJECT["dependencies"])
    assert "seaborn" in names(PROJECT["optional-dependencies"]["book"])
    code = ("import sys; sys.modules['seaborn'] = None; "
            "import tlrl.cli, tlrl.data, tlrl.methods, tlrl.benchmark, tlrl.predict, tlrl.featurize, tlrl.pretrain; "
            "tlrl.cli.main(['--version'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    blocked = subprocess.run([sys.executable, "-c", "import sys; sys.modules['seaborn'] = None; import tlrl.plots"],
                             capture_output=True, text=True, cwd=REPO)
    assert "seaborn" in blocked.stderr, "the check above would not notice seaborn"


def test_the_wheel_carries_license_and_py_typed_with_the_version_from_tlrl(tmp_path: Path) -> None:
    import tlrl

    tree = tmp_path / "tree"  # a copy: an in-tree build would leave build/ in the repository
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / name, tree / name)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(tree)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("tlrl-*.whl")
    assert wheel.name.startswith(f"tlrl-{tlrl.__version__}-")
    files = zipfile.ZipFile(wheel).namelist()
    assert "tlrl/py.typed" in files
    assert f"tlrl-{tlrl.__version__}.dist-info/licenses/LICENSE" in files
    metadata = zipfile.ZipFile(wheel).read(f"tlrl-{tlrl.__version__}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata and "Requires-Dist: seaborn>=0.13; extra == \"book\"" in metadata

"""The wheel as a new user gets it: built, installed alone (no extras) into a fresh venv with the
newest numpy, it fits and predicts with the source model it ships. Minutes: ``make test-wheel``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.wheel
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "_build" / "test-artifacts"
TORCH = "torch==2.13.0"  # as the Makefile: the CPU wheel on this project's machines


def sh(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)


def ok(*args, **kwargs) -> subprocess.CompletedProcess:
    result = sh(*args, **kwargs)
    command = " ".join(map(str, args))
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    ok(sys.executable, "-m", "build", "--wheel", "--outdir", out, REPO)
    (built,) = out.glob("tlrl-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory, wheel: Path) -> Path:
    """A venv without system site-packages: torch, then the wheel alone; the install times are recorded."""
    env = tmp_path_factory.mktemp("venv")
    venv.create(env, with_pip=True)
    pip = [env / "bin" / "python", "-m", "pip", "install", "-q"]
    start = time.perf_counter()
    ok(*pip, TORCH)
    torch_seconds = time.perf_counter() - start
    ok(*pip, wheel)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "wheel.json").write_text(json.dumps({
        "wheel": wheel.name, "wheel_mb": round(wheel.stat().st_size / 2**20, 1),
        "install_torch_s": round(torch_seconds, 1),
        "install_wheel_core_s": round(time.perf_counter() - start - torch_seconds, 1),
    }, indent=2) + "\n")
    return env


def test_the_wheel_carries_the_source_model_and_the_data_registry(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n for n in names if n.startswith("tlrl/pretrained/")}
    assert {"tlrl/pretrained/oqmd_nn17_ef/card.json", "tlrl/pretrained/oqmd_nn17_ef/model.safetensors"} <= shipped
    assert "tlrl/datasets.sha256" in names
    assert not any(n.startswith(("tests/", "notebooks/", "results/")) for n in names)


def test_core_install_has_the_newest_numpy_and_no_extras(fresh_venv: Path) -> None:
    probe = ok(fresh_venv / "bin" / "python", "-c", "import importlib.util, numpy; print(numpy.__version__); "
               "print([m for m in ('hpsklearn', 'hyperopt', 'jarvis', 'papermill') if importlib.util.find_spec(m)])")
    version, extras = probe.stdout.split("\n")[:2]
    assert tuple(map(int, version.split(".")[:2])) >= (2, 3), f"numpy {version}: the core must not pin numpy<2.3"
    assert extras == "[]"


def test_fit_and_predict_with_the_shipped_model(fresh_venv: Path, tmp_path: Path, jarvis_slice: pd.DataFrame) -> None:
    tlrl = fresh_venv / "bin" / "tlrl"
    jarvis_slice.to_csv(tmp_path / "small.csv", index=False)
    pd.DataFrame({"formula": ["NaCl", "GaAs", "Fe2O3"]}).to_csv(tmp_path / "new.csv", index=False)
    outside = {"cwd": tmp_path}  # not the checkout: the installed package must be the one imported
    ok(tlrl, "fit", "small.csv", "--method", "tl-finetune", "--profile", "smoke", "-o", "run", **outside)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["method"] == "tl-finetune" and metrics["test_mae"] < 1.0
    ok(tlrl, "predict", "run", "new.csv", "-o", "preds.csv", **outside)
    source = ok(fresh_venv / "bin" / "python", "-c", "from tlrl.pretrained import SOURCE_DIR; print(SOURCE_DIR)",
                **outside).stdout.strip()
    assert source.startswith(str(fresh_venv))
    ok(tlrl, "predict", source, "new.csv", "-o", "source.csv", **outside)
    for name, ensemble in (("preds.csv", True), ("source.csv", False)):
        preds = pd.read_csv(tmp_path / name)
        assert preds["formula"].tolist() == ["NaCl", "GaAs", "Fe2O3"]
        assert preds["prediction"].between(-5, 5).all() and preds["std"].notna().all() == ensemble


def test_a_missing_extra_is_one_line(fresh_venv: Path, tmp_path: Path, jarvis_slice: pd.DataFrame) -> None:
    jarvis_slice.to_csv(tmp_path / "small.csv", index=False)
    result = sh(fresh_venv / "bin" / "tlrl", "fit", "small.csv", "--method", "sc-ml-ef", "--profile", "smoke",
                "-o", "run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "tlrl fit: error: AutoML (sc-ml-ef, sc-ml-pa) needs `pip install 'tlrl[automl]'` (missing: hyperopt, hpsklearn)"
    )

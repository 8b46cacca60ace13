"""The CLI as people use it: a fast start, the data and show subcommands, shipped-model names, --device."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from tlrl import catalog
from tlrl.cli import main

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "pandas", "pymatgen", "matminer", "scipy")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["fit"], ["fit", "x", "-o", "y", "--method", "nope"],
                                  ["predict", "--help"]])
def test_help_version_and_usage_errors_import_no_heavy_library(argv: list[str]) -> None:
    code = (f"import sys; from tlrl.cli import main; code = main({argv!r}); "
            f"print([m for m in {HEAVY!r} if m in sys.modules]); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert result.returncode == (0 if "help" in argv[-1] or argv == ["--version"] else 2), result.stderr


def test_the_catalog_agrees_with_the_modules_it_stands_for() -> None:
    from tlrl.model import NN17
    from tlrl.pretrained import SOURCE_DIR
    from tlrl.profiles import PROFILES

    assert tuple(PROFILES) == catalog.PROFILE_NAMES
    assert len(NN17(86).hidden) == catalog.N_HIDDEN == 16
    assert catalog.model_dir("oqmd") == SOURCE_DIR and (SOURCE_DIR / "card.json").is_file()
    assert catalog.model_dir("runs/x") == Path("runs/x")


def test_help_names_the_environment_variables(capsys: pytest.CaptureFixture) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for variable in ("TLRL_DATA_DIR", "TLRL_CACHE_DIR", "TLRL_DATA_URL"):
        assert f"  {variable} " in out


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_list_names_every_registry_dataset_with_its_rows_unit_and_citation(capsys) -> None:
    from tlrl.data import REGISTRY, datasets

    table = datasets()
    assert list(table.columns) == ["name", "rows", "property", "unit", "source", "citation"]
    assert table["name"].tolist() == list(REGISTRY)
    assert table.set_index("name").loc["expt_bandgap", ["rows", "unit"]].tolist() == [4_920, "eV"]
    assert table["citation"].str.len().min() > 10 and table["unit"].notna().all()
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0 and all(name in out for name in REGISTRY) and "Kirklin et al." in out


def test_the_registry_row_counts_are_the_files(data_dir: Path) -> None:
    from tlrl.data import DATASETS, datasets, load_dataset

    rows = datasets().set_index("name")["rows"]
    for name in DATASETS:
        assert len(load_dataset(name, data_dir=data_dir)) == rows[name], name


def test_data_path_finds_the_checked_file_and_download_fills_the_cache(capsys, monkeypatch, tmp_path: Path,
                                                                       data_dir: Path) -> None:
    code, out, _ = run_cli(capsys, "data", "path", "expt_bandgap", "--data-dir", str(data_dir))
    assert (code, out) == (0, f"{data_dir / 'expt_bandgap.csv.gz'}\n")
    monkeypatch.delenv("TLRL_DATA_DIR")
    monkeypatch.setenv("TLRL_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_cli(capsys, "data", "path", "expt_bandgap")
    assert code == 2 and "is not on disk: run 'tlrl data download expt_bandgap' first" in err
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(data_dir))
    handler.log_message = lambda *args: None
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setenv("TLRL_DATA_URL", f"http://127.0.0.1:{server.server_address[1]}/")
        code, out, _ = run_cli(capsys, "data", "download", "expt_bandgap")
        server.shutdown()
    cached = tmp_path / "cache" / "data" / "expt_bandgap.csv.gz"
    assert (code, out) == (0, f"{cached}\n") and cached.read_bytes() == (data_dir / "expt_bandgap.csv.gz").read_bytes()
    assert run_cli(capsys, "data", "path", "expt_bandgap")[1] == f"{cached}\n"
    code, _, err = run_cli(capsys, "data", "download")
    assert code == 2 and "pass --all" in err
    code, _, err = run_cli(capsys, "data", "path", "expt_bandgapp")
    assert code == 2 and err.startswith("tlrl data: error: no dataset expt_bandgapp; 'tlrl data list' names them")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, jarvis) -> Path:
    """A smoke tl-finetune run on 60 JARVIS rows, trained on the CPU named by --device."""
    d = tmp_path_factory.mktemp("fit")
    small = pd.concat([jarvis[jarvis.split == "train"].head(48), jarvis[jarvis.split == "test"].head(12)])
    small.to_csv(d / "small.csv", index=False)
    assert main(["fit", str(d / "small.csv"), "--method", "tl-finetune", "--profile", "smoke", "--source", "oqmd",
                 "--device", "cpu", "-o", str(d / "run")]) == 0
    return d


def test_show_prints_what_a_run_holds(capsys, fitted: Path) -> None:
    metrics = json.loads((fitted / "run" / "metrics.json").read_text())
    code, out, _ = run_cli(capsys, "show", str(fitted / "run"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (f"run {fitted / 'run'}: TL:Fine-Tune (tl-finetune) on {fitted / 'small.csv'}, "
                        "profile smoke, seed 0")
    assert f"test MAE {metrics['test_mae']:.4f}" in lines[1] and f"CV MAE {metrics['cv_mae_mean']:.4f}" in lines[1]
    assert lines[2:] == ["layer: -", "models kept: fold_0, fold_1"]
    assert run_cli(capsys, "show", str(fitted))[0] == 2


def test_show_prints_a_benchmark_folder(capsys) -> None:
    code, out, _ = run_cli(capsys, "show", str(REPO / "results" / "quick"))
    assert code == 0 and out.startswith("benchmark ") and "jarvis_formation_energy, profile quick, seed 0" in out
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["tlrl-dl-relu"])
    assert row[1:] == ["0.1197", "±", "0.0030", "0.1150", "3", "0"]


def test_predict_takes_oqmd_for_the_shipped_source(capsys, fitted: Path) -> None:
    (fitted / "new.csv").write_text("formula\nNaCl\nAl2O3\n")
    code, _, err = run_cli(capsys, "predict", "oqmd", str(fitted / "new.csv"), "-o", str(fitted / "p.csv"))
    assert code == 0, err
    preds = pd.read_csv(fitted / "p.csv")
    assert preds["formula"].tolist() == ["NaCl", "Al2O3"]
    assert (preds["prediction"] < -1).all(), "formation enthalpies of stable oxides and halides are below -1 eV/atom"


def test_device_reaches_every_training_and_pretrain_takes_its_data_first(capsys, monkeypatch, tmp_path) -> None:
    import tlrl.benchmark
    import tlrl.methods
    import tlrl.pretrain
    import tlrl.train

    seen = {}
    columns = ["method", "cv_mae_mean", "cv_mae_std", "best_layer", "test_mae"]
    # this machine has neither CUDA nor MPS: the device check, tested on its own, lets them through here
    monkeypatch.setattr(tlrl.train, "check_device", lambda device: None)
    monkeypatch.setattr(tlrl.pretrain, "pretrain",
                        lambda out, **kw: seen.update(pretrain=kw) or (None, {"test_mae": 0}))
    monkeypatch.setattr(tlrl.benchmark, "run_benchmark",
                        lambda *a, **kw: seen.update(benchmark=kw) or pd.DataFrame(columns=columns))
    code, _, err = run_cli(capsys, "pretrain", "expt_bandgap", "--device", "cuda:1", "-o", str(tmp_path / "p"))
    assert code == 0 and err == ""
    prof = seen["pretrain"]["profile"]
    assert seen["pretrain"]["data"] == "expt_bandgap" and prof.name == "quick"
    assert prof.train.device == prof.pretrain.device == prof.pretrain_continue.device == "cuda:1"
    with pytest.warns(FutureWarning, match=r"^--data is deprecated: give the data as the first argument, "
                                           r"'tlrl pretrain DATA -o DIR'$"):
        code, _, _ = run_cli(capsys, "pretrain", "--data", "expt_bandgap", "-o", str(tmp_path / "q"))
    assert code == 0 and seen["pretrain"]["data"] == "expt_bandgap" and seen["pretrain"]["profile"] == "quick"
    code, _, _ = run_cli(capsys, "benchmark", "expt_bandgap", "--methods", "sc-dl-ef", "--device", "mps",
                         "-o", str(tmp_path / "b"))
    assert code == 0 and seen["benchmark"]["profile"].train.device == "mps"
    code, _, err = run_cli(capsys, "fit", "expt_bandgap", "--method", "sc-dl-ef", "--device", "gpu", "-o", "x")
    assert code == 2 and "--device: must be cpu, cuda, cuda:N or mps, got 'gpu'" in err


def test_a_missing_extra_stops_before_any_work(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "hpsklearn", None)  # as if hyperopt-sklearn were not installed
    line = ("error: AutoML (sc-ml-ef, sc-ml-pa) needs `pip install 'tlrl[automl]'` (missing: hpsklearn)")
    # the dataset does not exist: had the data been loaded first, the error would name it
    code, _, err = run_cli(capsys, "fit", "no_such.csv", "--method", "sc-ml-pa", "-o", str(tmp_path / "f"))
    assert (code, err) == (2, f"tlrl fit: {line}\n")
    code, _, err = run_cli(capsys, "benchmark", "no_such.csv", "-o", str(tmp_path / "b"))
    assert (code, err) == (2, f"tlrl benchmark: {line}\n")


@pytest.mark.parametrize("progress", [True, False])
def test_pa_featurization_in_a_run_shows_progress_when_training_does(capfd, jarvis, tmp_path, progress) -> None:
    from tlrl.methods import run
    from tlrl.profiles import get_profile

    small = pd.concat([jarvis[jarvis.split == "train"].head(40), jarvis[jarvis.split == "test"].head(10)])
    profile = get_profile("smoke", train__progress=progress)
    run("peer-hgb-pa", small, profile=profile, cache_dir=tmp_path)  # an empty feature cache: PA is computed
    assert ("MultipleFeaturizer" in capfd.readouterr().err) is progress

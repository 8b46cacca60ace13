"""Issue 24's 32 defects as a suite: the CLI through ``tlrl.cli.main`` in one process, and the API directly.

``CLI_ERRORS`` and ``API_ERRORS`` are the tables of bad inputs that must end as one ``TlrlError`` line;
the tests after them check the behaviours a table row cannot (what gets written, and where). Every
test name carries the numbers of the cases it covers (``case7``); the last test checks that none of
the 32 is left out. No test touches a real /dev node: FIFOs come from ``os.mkfifo``, character
devices from monkeypatching, a full disk and a busy folder from monkeypatched writes and renames.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tlrl import checkpoint, io, methods
from tlrl.cli import main
from tlrl.errors import TlrlError
from tlrl.featurize import SYMBOL_RULE, element_fractions, featurize
from tlrl.io import atomic_dir, output_lock, write_json
from tlrl.model import NN17
from tlrl.predict import predict
from tlrl.provenance import check_results_dir
from tlrl.representation import load_source, representation

SMOKE = ["--profile", "smoke"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, jarvis) -> Path:
    """small.csv (60 JARVIS rows), a few bad files, bare checkpoints and folders of each kind."""
    d = tmp_path_factory.mktemp("rel")
    small = pd.concat([jarvis[jarvis.split == "train"].head(48), jarvis[jarvis.split == "test"].head(12)])
    small.to_csv(d / "small.csv", index=False)
    small.assign(target=small.target.mask(small.index == small.index[2], 3e38)).to_csv(d / "huge.csv", index=False)
    small.assign(target=small.target * 1000 + 4000).to_csv(d / "mev.csv", index=False)
    (d / "formulas.csv").write_text("formula\nNaCl\nFe2O3\n")
    (d / "caps.csv").write_text("formula\nNaCl\nFE2O3\n")
    checkpoint.save(NN17(86, seed=0), d / "M", {"input": {"kind": "ef"}})
    checkpoint.save(NN17(145, seed=0), d / "PA", {"input": {"kind": "pa"}})
    checkpoint.save(NN17(86, seed=0), d / "src", {"input": {"kind": "ef"}, "train_config": {}})  # a finished source
    (d / "junk").mkdir()
    (d / "junk" / "notes.txt").write_text("mine\n")
    (d / "dd").mkdir()
    small.to_csv(d / "dd" / "small.csv", index=False)
    (d / "peer").mkdir()
    write_json(d / "peer" / "metrics.json", {"method": "peer-hgb-pa", "paper_name": "Peer: PA + HistGB"})
    _fit_like(d / "fitrun")
    for name in ("prov_list", "prov_ok"):
        (d / name).mkdir()
    (d / "prov_list" / "provenance.json").write_text("[]")
    check_results_dir(d / "prov_ok", str(d / "small.csv"), "smoke", seed=0)
    (d / "prov_ok" / "runs" / "sc-dl-ef").mkdir(parents=True)
    (d / "prov_ok" / "runs" / "sc-dl-ef" / "metrics.json").write_text('{"method": "sc-dl-ef", "cv_m')
    (d / "loop").symlink_to(d / "loop")
    (d / "loopy").mkdir()
    (d / "loopy" / "fold_0").symlink_to(d / "loopy" / "fold_0")
    return d


def _fit_like(folder: Path) -> Path:
    """A folder as 'tlrl fit' leaves it: fold checkpoints and metrics.json naming the method."""
    checkpoint.save(NN17(86, seed=1), folder / "fold_0", {"input": {"kind": "ef"}})
    write_json(folder / "metrics.json", {"method": "sc-dl-ef", "paper_name": "SC:DL(EF)"})
    return folder


def _card(files: Path, name: str, change) -> Path:
    """A copy of the checkpoint M whose card.json is edited by ``change``."""
    folder = files / f"card_{name}"
    if not folder.exists():
        checkpoint.save(NN17(86, seed=0), folder, {"input": {"kind": "ef"}})
        card = json.loads((folder / "card.json").read_text())
        change(card)
        (folder / "card.json").write_text(json.dumps(card))
    return folder


def _nan_weights(files: Path) -> Path:
    model = NN17(86, seed=0)
    with torch.no_grad():
        model.layers[3].weight[0, 0] = float("nan")
    checkpoint.save(model, files / "nanw", {"input": {"kind": "ef"}})
    return files / "nanw"


FIT = ["fit", "--method", "sc-dl-ef", *SMOKE]

# id -> (argv built from the files folder, text the one error line must hold)
CLI_ERRORS = {
    "2-fit-force-into-the-inputs-folder": (lambda f: [*FIT, f"{f}/dd/small.csv", "-o", f"{f}/dd", "--force"],
                                           "holds the input"),
    "3-benchmark-force-over-foreign-runs": (lambda f: ["benchmark", f"{f}/small.csv", *SMOKE, "-o", f"{f}/junk",
                                                       "--force"], "holds files that tlrl benchmark did not write"),
    "4-pretrain-over-a-finished-source": (lambda f: ["pretrain", "--data", f"{f}/small.csv", *SMOKE,
                                                     "-o", f"{f}/src"], "pass --force to replace it"),
    "4-pretrain-init-from-itself": (lambda f: ["pretrain", *SMOKE, "--init-from", f"{f}/src", "-o", f"{f}/src",
                                               "--force"], "holds the input"),
    "6-predict-over-a-model-file": (lambda f: ["predict", f"{f}/fitrun", f"{f}/formulas.csv",
                                               "-o", f"{f}/fitrun/fold_0/model.safetensors"],
                                    "is inside the model folder"),
    "10-target-overflows-the-loss": (lambda f: [*FIT, f"{f}/huge.csv", "-o", f"{f}/o10"],
                                     "exceed 1e+30 in magnitude, where the float32 training loss overflows"),
    "11-nan-weights": (lambda f: ["predict", str(_nan_weights(f)), f"{f}/formulas.csv", "-o", f"{f}/p.csv"],
                       "has weights that are NaN or infinite"),
    "16-card-without-input": (lambda f: ["predict", str(_card(f, "noinput", lambda c: c.pop("input"))),
                                         f"{f}/formulas.csv", "-o", f"{f}/p.csv"], "does not fit the schema"),
    "16-card-input-a-string": (lambda f: ["predict", str(_card(f, "str", lambda c: c.update(input="ef"))),
                                          f"{f}/formulas.csv", "-o", f"{f}/p.csv"], "'input' must be an object"),
    "16-card-layer-abc": (lambda f: ["predict", str(_card(f, "abc", lambda c: c.update(input={
        "kind": "representation", "source": "shipped:oqmd_nn17_ef", "layer": "abc", "activation": "relu"}))),
        f"{f}/formulas.csv", "-o", f"{f}/p.csv"], "'input.layer' must be an integer from 1 to 16, got 'abc'"),
    "16-card-layer-99": (lambda f: ["predict", str(_card(f, "l99", lambda c: c.update(input={
        "kind": "representation", "source": "shipped:oqmd_nn17_ef", "layer": 99, "activation": "relu"}))),
        f"{f}/formulas.csv", "-o", f"{f}/p.csv"], "got 99"),
    "16-card-activation-tanh": (lambda f: ["predict", str(_card(f, "tanh", lambda c: c.update(input={
        "kind": "representation", "source": "shipped:oqmd_nn17_ef", "layer": 3, "activation": "tanh"}))),
        f"{f}/formulas.csv", "-o", f"{f}/p.csv"], "'input.activation' must be 'relu' or 'dense'"),
    "16-card-without-source": (lambda f: ["predict", str(_card(f, "nosrc", lambda c: c.update(input={
        "kind": "representation", "layer": 3, "activation": "relu"}))), f"{f}/formulas.csv", "-o", f"{f}/p.csv"],
        "'input.source' must be"),
    "19-input-is-a-symlink-loop": (lambda f: ["featurize", f"{f}/loop", "--kind", "ef", "-o", f"{f}/o.csv"],
                                   "is a symlink loop"),
    "19-output-is-a-symlink-loop": (lambda f: ["predict", f"{f}/M", f"{f}/formulas.csv", "-o", f"{f}/loop"],
                                    "is a symlink loop"),
    "19-fit-output-is-a-symlink-loop": (lambda f: [*FIT, f"{f}/small.csv", "-o", f"{f}/loop"], "is a symlink loop"),
    "19-fit-loop-under-the-output": (lambda f: [*FIT, f"{f}/small.csv", "-o", f"{f}/loopy", "--force"],
                                     "did not write (fold_0)"),
    "21-provenance-is-a-list": (lambda f: ["benchmark", f"{f}/small.csv", *SMOKE, "-o", f"{f}/prov_list"],
                                "is not a provenance record (a JSON object): use --force to start the folder afresh"),
    "21-truncated-run-metrics": (lambda f: ["benchmark", f"{f}/small.csv", *SMOKE, "--methods", "sc-dl-ef",
                                            "-o", f"{f}/prov_ok"], "metrics.json is unreadable (JSONDecodeError): "
                                                                   "delete the folder"),
    "22-init-from-a-pa-checkpoint": (lambda f: ["pretrain", *SMOKE, "--init-from", f"{f}/PA", "-o", f"{f}/P22"],
                                     "must take EF"),
    "24-benchmark-into-a-fit-run": (lambda f: ["benchmark", f"{f}/small.csv", *SMOKE, "-o", f"{f}/fitrun"],
                                    "is a 'tlrl fit' run, not a 'tlrl benchmark' results folder"),
    "24-pretrain-into-unrelated-files": (lambda f: ["pretrain", *SMOKE, "-o", f"{f}/junk"],
                                         "holds files that tlrl pretrain did not write (notes.txt)"),
    "25-unknown-symbol": (lambda f: ["featurize", f"{f}/caps.csv", "--kind", "ef", "--errors", "raise",
                                     "-o", f"{f}/o.csv"], f"'FE2O3' (unknown element symbol 'FE': {SYMBOL_RULE})"),
    "28-not-a-resume-state": (lambda f: ["pretrain", *SMOKE, "-o", str(_bad_resume(f))],
                              "is not a resume state of tlrl; delete it"),
    "29-predict-with-a-method-without-models": (lambda f: ["predict", f"{f}/peer", f"{f}/formulas.csv",
                                                           "-o", f"{f}/p.csv"], "which keeps no models"),
    "30-unknown-extension": (lambda f: ["predict", f"{f}/M", f"{f}/formulas.csv", "-o", f"{f}/p.txt"],
                             "cannot tell the format of"),
}


def _bad_resume(files: Path) -> Path:
    folder = files / "badresume"
    folder.mkdir(exist_ok=True)
    torch.save({"a": pd.Timestamp(0)}, folder / "resume.pt")  # needs unpickling: torch advises weights_only=False
    return folder


def _state(folder: Path) -> dict:
    """Every path under ``folder`` and, for files, when it was last written."""
    return {p: p.stat().st_mtime_ns if p.is_file() else None for p in folder.rglob("*") if not p.is_symlink()}


@pytest.mark.parametrize("case", CLI_ERRORS)
def test_cli_bad_input_is_one_line_and_changes_nothing(case, files, capsys):
    argv = CLI_ERRORS[case][0](files)
    before = _state(files)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(f"tlrl {argv[0]}: error: "), err
    assert CLI_ERRORS[case][1] in err, err
    assert "weights_only" not in err and "Traceback" not in err
    assert _state(files) == before


# id -> (a call of the API, the TlrlError message it must raise)
API_ERRORS = {
    "8-frame-without-formula": (lambda f: predict(f / "M", pd.DataFrame({"NaCl": ["MgO"]})),
                                "needs a 'formula' column"),
    "9-nan-target-in-a-frame": (lambda f: methods.run("sc-dl-ef", _frame(f, target=np.nan), profile="smoke"),
                                "target(s) are missing, not numbers, NaN or inf"),
    "9-inf-target-in-a-frame": (lambda f: methods.run("sc-dl-ef", _frame(f, target=np.inf), profile="smoke"),
                                "NaN or inf"),
    "9-val-rows-in-a-frame": (lambda f: methods.run("sc-dl-ef", _frame(f, split="val"), profile="smoke"),
                              "split column may hold only 'train'/'test', found ['val']"),
    "10-huge-target-in-a-frame": (lambda f: methods.run("sc-dl-ef", _frame(f, target=3e38), profile="smoke"),
                                  "rows [2]"),
    "31-predict-none": (lambda f: predict(f / "M", None), "formulas must be a string, a list"),
    "31-predict-no-model": (lambda f: predict([], ["NaCl"]), "give a model"),
    "31-errors-bogus": (lambda f: predict(f / "M", ["NaCl"], errors="bogus"), "errors must be 'warn' or 'raise'"),
    "31-featurize-errors-bogus": (lambda f: featurize(pd.DataFrame({"formula": ["Xx"]}), "ef", errors="bogus"),
                                  "errors must be 'warn' or 'raise'"),
    "31-frame-without-formula": (lambda f: methods.run("sc-dl-ef", pd.DataFrame({"target": [1.0]}), profile="smoke"),
                                 "lacks column(s) ['formula']"),
    "31-featurize-frame-without-formula": (lambda f: featurize(pd.DataFrame({"f": ["NaCl"]}), "ef"),
                                           "needs a table with a 'formula' column"),
    "31-layer-as-text": (lambda f: methods.run("rl-dl-relu", _frame(f), layer="3", profile="smoke"),
                         "layer must be an integer, got '3'"),
    "32-pretrain-rows-say-why": (lambda f: _pretrain_twelve(f), "has 9 (of 12 read: 0 OQMD outliers and 3 unusable "
                                                                "formulas dropped)"),
}


def _frame(files: Path, **changes) -> pd.DataFrame:
    df = pd.read_csv(files / "small.csv")
    for column, value in changes.items():
        df.loc[2, column] = value
    return df


def _pretrain_twelve(files: Path):
    """12 rows in meV/atom (none dropped as outliers), 3 with unusable formulas: 9 left, too few."""
    from tlrl.pretrain import pretrain

    rows = [f"Xx{k},100\n" for k in range(1, 4)] + [f"Na{k}Cl,-{k}000\n" for k in range(1, 10)]
    (files / "twelve.csv").write_text("formula,target\n" + "".join(rows))
    return pretrain(files / "P32", data=str(files / "twelve.csv"), profile="smoke")


@pytest.mark.parametrize("case", API_ERRORS)
def test_api_bad_input_is_a_tlrl_error(case, files):
    call, message = API_ERRORS[case]
    with pytest.warns(UserWarning) if case.startswith("32") else _nothing():
        with pytest.raises(TlrlError, match=re.escape(message)):
            call(files)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- 1, 30: where and how outputs are written -----------------------------------------------------------------


def test_case1_a_fifo_is_written_in_place(files, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    assert main(["predict", f"{files}/M", f"{files}/formulas.csv", "-o", str(fifo)]) == 0
    reader.join(10)
    assert received and received[0].decode().startswith("formula,prediction,std,problem\nNaCl,")
    assert fifo.is_fifo()


def test_case1_a_character_device_is_written_in_place_never_replaced(files, tmp_path, monkeypatch):
    device = tmp_path / "null"
    device.write_text("")
    inode = device.stat().st_ino
    monkeypatch.setattr(io, "_writes_in_place", lambda mode: True)  # as /dev/null would be
    assert main(["predict", f"{files}/M", f"{files}/formulas.csv", "-o", str(device)]) == 0
    assert device.stat().st_ino == inode and device.read_text().startswith("formula,prediction")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_case1_a_symlink_is_written_through(files, tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert main(["predict", f"{files}/M", f"{files}/formulas.csv", "-o", str(link)]) == 0
    assert link.is_symlink() and target.read_text().startswith("formula,prediction")
    run = tmp_path / "runlink"
    run.symlink_to(_fit_like(tmp_path / "realrun"))
    with atomic_dir(run) as tmp:  # fit -o SYMLINK --force
        (tmp / "metrics.json").write_text("{}")
    assert run.is_symlink() and sorted(p.name for p in (tmp_path / "realrun").iterdir()) == ["metrics.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv", "realrun", "runlink"]


def test_case1_case30_dash_is_stdout_and_the_extension_picks_the_format(files, tmp_path, capsys):
    assert main(["predict", f"{files}/M", f"{files}/formulas.csv", "-o", "-"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("formula,prediction,std,problem\n") and "wrote 2 rows to -" in out.err
    for name, read in (("f.csv", pd.read_csv), ("f.csv.gz", pd.read_csv), ("f.parquet", pd.read_parquet)):
        assert main(["featurize", f"{files}/formulas.csv", "--kind", "ef", "-o", str(tmp_path / name)]) == 0
        assert read(tmp_path / name).shape == (2, 87)
        assert main(["predict", f"{files}/M", f"{files}/formulas.csv", "-o", str(tmp_path / f"p{name}")]) == 0
        assert list(read(tmp_path / f"p{name}").columns) == ["formula", "prediction", "std", "problem"]
    assert (tmp_path / "f.csv.gz").read_bytes()[:2] == b"\x1f\x8b"


# --- 2, 3, 4, 6, 24: what --force may replace ------------------------------------------------------------------


def test_case3_force_removes_only_the_benchmarks_own_runs(files, tmp_path):
    out = tmp_path / "B"
    check_results_dir(out, str(files / "small.csv"), "smoke", seed=0)
    _fit_like(out / "runs" / "sc-dl-ef")
    check_results_dir(out, str(files / "small.csv"), "smoke", seed=3, force=True)
    assert not (out / "runs").exists()
    (out / "runs" / "mine").mkdir(parents=True)
    assert main(["benchmark", f"{files}/small.csv", *SMOKE, "--seed", "5", "-o", str(out), "--force"]) == 2
    assert (out / "runs" / "mine").is_dir()


# --- 5, 28: resume state --------------------------------------------------------------------------------------


def test_case5_a_stale_resume_state_is_refused(tmp_path, monkeypatch):
    from tlrl import train

    rng = np.random.default_rng(0)
    X, y = rng.random((40, 86), dtype=np.float32), rng.random(40, dtype=np.float32)
    config = train.TrainConfig(max_epochs=3, batch_size=16, progress=False, checkpoint_every_s=0)
    calls = []
    val_mae = train._StackedTrainer._val_mae

    def interrupted_after_one_epoch(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return val_mae(self, *args)

    monkeypatch.setattr(train._StackedTrainer, "_val_mae", interrupted_after_one_epoch)
    resume = tmp_path / "resume.pt"
    with pytest.raises(KeyboardInterrupt):
        train.fit(NN17(86, seed=0), X[:30], y[:30], X[30:], y[30:], config, resume_path=resume)
    monkeypatch.undo()
    assert resume.is_file()
    with pytest.raises(TlrlError, match="is the resume state of another run"):
        train.fit(NN17(86, seed=7), X[:30], y[:30], X[30:], y[30:], config.with_(seed=7), resume_path=resume)
    with pytest.raises(TlrlError, match="is the resume state of another run"):
        train.fit(NN17(86, seed=0), X[:30], y[:30] + 1, X[30:], y[30:], config, resume_path=resume)
    result = train.fit(NN17(86, seed=0), X[:30], y[:30], X[30:], y[30:], config, resume_path=resume)
    assert len(result.history) == 3 and not resume.exists()


def test_case28_garbage_resume_state_never_repeats_torchs_advice(tmp_path):
    from tlrl import train

    resume = tmp_path / "resume.pt"
    resume.write_bytes(b"garbage")
    X = np.zeros((20, 86), np.float32)
    with pytest.raises(TlrlError, match="is not a resume state of tlrl") as exc:
        train.fit(NN17(86, seed=0), X[:10], X[:10, 0], X[10:], X[10:, 0],
                  train.TrainConfig(max_epochs=1, progress=False), resume_path=resume)
    assert "weights_only" not in str(exc.value)


# --- 7, 13, 14, 15, 25, 26: formulas ----------------------------------------------------------------------------


def test_case7_hydrogen_isotopes_count_as_hydrogen():
    X, keep = element_fractions(["H2O", "HDO", "D2O", "HTO", "DTO"])
    assert keep.all() and np.allclose(X.sum(1), 1)
    assert (X == X[0]).all()


def test_case13_case14_blank_lines_and_multiline_cells_stay_rows(files, tmp_path, capsys):
    inp = tmp_path / "in.csv"
    inp.write_text('formula\nNaCl\n\n"Fe2O3\nNaCl"\nMgO\n\n')
    out = tmp_path / "p.csv"
    with pytest.warns(UserWarning, match="2 of 4 rows"):
        assert main(["predict", f"{files}/M", str(inp), "-o", str(out)]) == 0
    preds = pd.read_csv(out, keep_default_na=False)
    assert preds["formula"].tolist() == ["NaCl", "", "Fe2O3\nNaCl", "MgO"]
    assert preds["problem"].tolist() == ["", "empty", "the formula cell spans several lines", ""]
    assert "(2 without a prediction)" in capsys.readouterr().out


def test_case15_pa_parses_as_ef_does(files):
    hydrates = ["CuSO4·5H2O", "2NaCl", "NaCl.H2O", "CuSO4·0.5H2O"]
    plain = ["CuSO9H10", "NaCl", "NaClH2O", "Cu2S2O9H2"]
    pa, kept = featurize(pd.DataFrame({"formula": hydrates + plain}), "pa", progress=False)
    assert len(kept) == 8
    np.testing.assert_allclose(pa.iloc[:4].to_numpy(float), pa.iloc[4:].to_numpy(float), equal_nan=True, rtol=1e-6)
    preds = predict(files / "PA", hydrates)
    assert (preds["problem"] == "").all() and preds["prediction"].notna().all()


def test_case25_case26_symbols_and_fractional_hydrates():
    for formula, bad in (("FE2O3", "FE"), ("Xx", "Xx"), ("Ee", "Ee"), ("NA", "NA"), ("Fe1E-3O", "E")):
        with pytest.raises(TlrlError, match=re.escape(f"unknown element symbol {bad!r}")):
            element_fractions(["NaCl", formula], errors="raise")
    X, keep = element_fractions(["CuSO4·0.5H2O", "Cu2S2O9H2", "CuSO4·5.5H2O", "Cu2S2O19H22"])
    assert keep.all()
    np.testing.assert_allclose(X[0], X[1], rtol=1e-6)
    np.testing.assert_allclose(X[2], X[3], rtol=1e-6)


def test_case9_case31_a_frame_is_checked_as_a_csv_is(files):
    from tlrl.data import as_dataset

    df = pd.read_csv(files / "small.csv").drop(columns="split").assign(target=lambda d: d.target.astype(str))
    df.attrs["name"] = "mine"
    checked = as_dataset(df, seed=0)
    assert set(checked["split"]) == {"train", "test"} and checked["target"].dtype == float
    assert checked.attrs["name"] == "mine"


# --- 8, 11: the predict API ----------------------------------------------------------------------------------


def test_case8_predict_takes_a_string_a_list_a_series_or_a_formula_column(files):
    one = predict(files / "M", "Fe2O3")
    assert one["formula"].tolist() == ["Fe2O3"]
    for formulas in (["Fe2O3"], pd.Series(["Fe2O3"]), pd.DataFrame({"formula": ["Fe2O3"], "x": [1]})):
        pd.testing.assert_frame_equal(predict(files / "M", formulas), one)


def test_case11_a_prediction_that_is_not_finite_says_why(files, tmp_path):
    model = NN17(86, seed=0)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(1e12)
    checkpoint.save(model, tmp_path / "big", {"input": {"kind": "ef"}})
    preds = predict(tmp_path / "big", ["NaCl"])
    assert preds["problem"].tolist() == ["the model's prediction is not finite (NaN or inf)"]
    assert preds["prediction"].isna().all()


# --- 12, 17, 18, 23: concurrent runs, full disks, busy folders, kills -------------------------------------------


def test_case12_a_second_run_on_the_same_output_fails_at_once(files, tmp_path, capsys):
    out = tmp_path / "run"
    with output_lock(out):
        assert main([*FIT, f"{files}/small.csv", "-o", str(out)]) == 2
    assert "is being written by another tlrl run right now" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_case17_a_full_disk_is_one_line_and_fit_keeps_its_models(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _full_disk)
    out = tmp_path / "f.parquet"
    assert main(["featurize", f"{files}/formulas.csv", "--kind", "ef", "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"tlrl featurize: error: no space left on device: {out}\n"
    monkeypatch.setattr(pd.DataFrame, "to_csv", _full_disk)
    assert main(["predict", f"{files}/M", f"{files}/formulas.csv", "-o", str(tmp_path / "p.csv")]) == 2
    assert capsys.readouterr().err == f"tlrl predict: error: no space left on device: {tmp_path / 'p.csv'}\n"
    assert list(tmp_path.iterdir()) == []
    run = tmp_path / "run"
    assert main([*FIT, f"{files}/small.csv", "-o", str(run)]) == 2
    err = capsys.readouterr().err
    kept = Path(err.split("what was written is kept in ")[1].strip())
    assert err.startswith(f"tlrl fit: error: no space left on device: {run}")
    assert (kept / "fold_0" / "model.safetensors").is_file() and (kept / "fold_1" / "card.json").is_file()
    assert not run.exists()


def test_case18_a_folder_that_cannot_be_renamed_gets_its_content_swapped(files, tmp_path, monkeypatch):
    out = _fit_like(tmp_path / "mnt")
    replace = os.replace

    def busy(src, dst):
        if Path(src) == out:
            raise OSError(errno.EBUSY, "Device or resource busy", str(src))
        return replace(src, dst)

    monkeypatch.setattr(io.os, "replace", busy)
    assert main([*FIT, f"{files}/small.csv", "-o", str(out), "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["fold_0", "fold_1", "history.csv", "metrics.json",
                                                     "test_predictions.csv"]
    assert json.loads((out / "metrics.json").read_text())["n_folds"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnt"]
    monkeypatch.chdir(out)  # -o . --force: the working folder is never renamed away
    with atomic_dir(".") as tmp:
        (tmp / "metrics.json").write_text("{}")
    assert Path.cwd() == out and sorted(p.name for p in out.iterdir()) == ["metrics.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnt"]


def test_case23_sigterm_cleans_up_and_stale_temporaries_go(files, tmp_path, monkeypatch, capsys):
    def terminated(self, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", terminated)
    assert main(["featurize", f"{files}/formulas.csv", "--kind", "ef", "-o", str(tmp_path / "o.parquet")]) == 143
    assert capsys.readouterr().err == "tlrl featurize: terminated\n"
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is not None
    dead = 2**22 + 1  # above any pid_max: no such process
    (tmp_path / f".run.tlrl-{dead}-abc").mkdir()
    (tmp_path / f".run.tlrl-{os.getpid()}-live").mkdir()
    with atomic_dir(tmp_path / "run") as tmp:
        (tmp / "x").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".run.tlrl-{os.getpid()}-live", "run"]


# --- 20: caches ------------------------------------------------------------------------------------------------


def test_case20_a_corrupt_cache_is_recomputed_once_with_a_message(tmp_path):
    df = pd.DataFrame({"formula": ["NaCl", "MgO"]})
    first, _ = featurize(df, "pa", cache_dir=tmp_path, progress=False)
    (cache,) = tmp_path.glob("pa-*.parquet")
    cache.write_bytes(cache.read_bytes()[:50])
    with pytest.warns(UserWarning, match="is corrupt; recomputing it"):
        again, _ = featurize(df, "pa", cache_dir=tmp_path, progress=False)
    pd.testing.assert_frame_equal(first, again)
    featurize(df, "pa", cache_dir=tmp_path, progress=False)  # rewritten: no second warning (filterwarnings=error)

    source = load_source()
    X = element_fractions(["NaCl", "MgO"])[0]
    acts = representation(source, X, 3, "relu", tmp_path)
    (npy,) = tmp_path.glob("act-*.npy")
    npy.write_bytes(npy.read_bytes()[:60])
    with pytest.warns(UserWarning, match="is corrupt; recomputing it"):
        np.testing.assert_array_equal(representation(source, X, 3, "relu", tmp_path), acts)


# --- 27, 32: pretraining on another dataset ---------------------------------------------------------------------


def test_case27_case32_pretrain_on_another_dataset_keeps_every_row_and_names_it(files, tmp_path, capsys):
    out = tmp_path / "S"
    assert main(["pretrain", "--data", f"{files}/mev.csv", *SMOKE, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "OQMD" not in printed and "eV/atom" not in printed and f"on {files}/mev.csv" in printed
    card = json.loads((out / "card.json").read_text())
    assert card["rows"]["outliers_dropped"] == 0 and sum(card["rows"][k] for k in ("train", "val", "test")) == 60


# --- every case has a test ---------------------------------------------------------------------------------------


def test_no_case_is_left_out():
    covered = {int(case.split("-")[0]) for case in (*CLI_ERRORS, *API_ERRORS)}
    covered |= {int(n) for name in globals() if name.startswith("test_") for n in re.findall(r"case(\d+)", name)}
    assert covered == set(range(1, 33))

"""Issue 10's fuzz as a suite: bad inputs through ``tlrl.cli.main`` in one process, one line and exit 2 each.

The table runs every case in this process (fast); the tests after it check what a table row
cannot: that good inputs around the edges give the right output, and that nothing stale survives.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tlrl import __version__, benchmark, checkpoint, plan
from tlrl.cli import main
from tlrl.data import load_dataset, read_table
from tlrl.errors import TlrlError
from tlrl.featurize import AMOUNT_RULE, element_fractions, nonfinite_rows
from tlrl.io import write_json
from tlrl.model import NN17
from tlrl.profiles import get_profile
from tlrl.provenance import FILE, check_results_dir

SMOKE = ["--profile", "smoke"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, jarvis) -> Path:
    """small.csv (60 JARVIS rows with the published split) and the bad files the cases read."""
    d = tmp_path_factory.mktemp("inputs")
    small = pd.concat([jarvis[jarvis.split == "train"].head(48), jarvis[jarvis.split == "test"].head(12)])
    small.to_csv(d / "small.csv", index=False)
    small.assign(target=small.target.mask(small.index == small.index[3], 1e300)).to_csv(d / "huge.csv", index=False)
    small.assign(target=1.5).to_csv(d / "constant.csv", index=False)
    small.head(5).to_csv(d / "five.csv", index=False)
    small.rename(columns={"formula": "comp", "target": "dHf"}).to_csv(d / "renamed.csv", index=False)
    (d / "formulas.csv").write_text("formula\nNaCl\nFe2O3\n")
    (d / "absurd.csv").write_text("formula\nNaCl\nFe1e308O\n")
    (d / "zero.csv").write_text("formula\nNaCl\nFe0O\n")
    (d / "hydrate.csv").write_text("formula\nNaCl\nCuSO4.5H2O\n")
    (d / "ragged.csv").write_text("formula,target\nNaCl,1.0\nMgO,2.0,7\nKCl,3.0\n")
    (d / "dup.csv").write_text("formula,formula,target\nNaCl,MgO,1.0\nKCl,LiF,2.0\n")
    (d / "a_file").write_text("not a folder\n")
    (d / "a_dir").mkdir()
    checkpoint.save(NN17(86, seed=0), d / "ckpt", {"input": {"kind": "ef"}})
    wrong = d / "wrong_width"
    checkpoint.save(NN17(86, seed=0), wrong, {"input": {"kind": "ef"}})
    card = json.loads((wrong / "card.json").read_text())
    (wrong / "card.json").write_text(json.dumps({**card, "n_inputs": 145}))
    return d


@pytest.fixture(scope="module")
def results_dir(files) -> Path:
    """A benchmark folder whose provenance says: small.csv, smoke, seed 0, the shipped source."""
    out = files / "B"
    check_results_dir(out, str(files / "small.csv"), "smoke", seed=0)
    return out


def _nonempty_run(files: Path) -> Path:
    run = files / "S"
    (run / "fold_0").mkdir(parents=True, exist_ok=True)
    return run


# id -> (argv built from the files folder, text the one error line must hold)
CASES = {
    # 1 stale benchmark results: other dataset, profile or seed into a folder made by another
    "1-benchmark-other-seed": (lambda f: ["benchmark", f"{f}/small.csv", *SMOKE, "--seed", "7", "-o", f"{f}/B"],
                               "seed 0 there, 7 now"),
    "1-benchmark-other-profile": (lambda f: ["benchmark", f"{f}/small.csv", "--profile", "full", "-o", f"{f}/B"],
                                  "profile smoke there, full now"),
    "1-benchmark-other-dataset": (lambda f: ["benchmark", "jarvis_optb88vdw_bandgap", *SMOKE, "-o", f"{f}/B"],
                                  "there, jarvis_optb88vdw_bandgap now"),
    # 2 a run folder that is not empty is refused without --force
    "2-fit-into-nonempty-folder": (lambda f: ["fit", f"{f}/small.csv", "--method", "sc-dl-ef", *SMOKE,
                                              "-o", str(_nonempty_run(f))], "is not empty"),
    # 3 output over input
    "3-predict-over-input": (lambda f: ["predict", f"{f}/ckpt", f"{f}/formulas.csv", "-o", f"{f}/formulas.csv"],
                             "is the input file"),
    "3-featurize-over-input": (lambda f: ["featurize", f"{f}/formulas.csv", "--kind", "ef", "-o",
                                          f"{f}/formulas.csv"], "is the input file"),
    # 4 absurd amounts
    "4-amount-1e308": (lambda f: ["featurize", f"{f}/absurd.csv", "--kind", "pa", "--errors", "raise",
                                  "-o", f"{f}/o.parquet"], f"'Fe1e308O' (amount 1e308: {AMOUNT_RULE})"),
    "4-amount-zero": (lambda f: ["featurize", f"{f}/zero.csv", "--kind", "ef", "--errors", "raise",
                                 "-o", f"{f}/o.parquet"], f"'Fe0O' (amount 0: {AMOUNT_RULE})"),
    # 5 a dot-written hydrate is ambiguous, never misread
    "5-dot-hydrate": (lambda f: ["featurize", f"{f}/hydrate.csv", "--kind", "ef", "--errors", "raise",
                                 "-o", f"{f}/o.parquet"], "'CuSO4.5H2O' (ambiguous '.'"),
    # 6 a target that overflows float32
    "6-huge-target": (lambda f: ["fit", f"{f}/huge.csv", "--method", "sc-dl-ef", *SMOKE, "-o", f"{f}/F6"],
                      "beyond float32's range of ±3.4e38 (lines [5])"),
    # 7 RL:Freezing is the last hidden layer by definition
    "7-rl-freezing-layer": (lambda f: ["fit", f"{f}/small.csv", "--method", "rl-freezing", "--layer", "5", *SMOKE,
                                       "-o", f"{f}/F7"], "always uses the last hidden layer (16)"),
    # 9 output paths are checked before any work
    "9-fit-output-is-a-file": (lambda f: ["fit", f"{f}/small.csv", "--method", "sc-dl-ef", *SMOKE,
                                          "-o", f"{f}/a_file"], "it is a file, and the output is a folder"),
    "9-benchmark-output-is-a-file": (lambda f: ["benchmark", f"{f}/small.csv", *SMOKE, "-o", f"{f}/a_file"],
                                     "it is a file, and the output is a folder"),
    "9-fit-output-under-a-file": (lambda f: ["fit", f"{f}/small.csv", "--method", "sc-dl-ef", *SMOKE,
                                             "-o", f"{f}/a_file/run"], "a_file is a file, not a folder"),
    "9-predict-output-under-a-file": (lambda f: ["predict", f"{f}/ckpt", f"{f}/formulas.csv",
                                                 "-o", f"{f}/a_file/p.csv"], "a_file is a file, not a folder"),
    "9-fit-output-in-proc": (lambda f: ["fit", f"{f}/small.csv", "--method", "sc-dl-ef", *SMOKE, "-o", "/proc/x"],
                             "cannot write /proc/x"),
    "9-featurize-output-in-proc": (lambda f: ["featurize", f"{f}/formulas.csv", "--kind", "ef", "-o", "/proc/x.pq"],
                                   "cannot write /proc/x.pq"),
    # 10 seeds numpy cannot take
    "10-seed-negative": (lambda f: ["fit", f"{f}/small.csv", "--method", "sc-dl-ef", "--seed", "-1", "-o", "x"],
                         "argument --seed: must be an integer from 0 to 4294967295, got -1"),
    "10-seed-too-big": (lambda f: ["benchmark", f"{f}/small.csv", "--seed", "99999999999", "-o", "x"],
                        "got 99999999999"),
    # 11 too few rows to pretrain
    "11-pretrain-five-rows": (lambda f: ["pretrain", f"{f}/five.csv", *SMOKE, "-o", f"{f}/P"],
                              "pretraining needs at least 10 usable rows"),
    # 12 a directory as input
    "12-featurize-a-directory": (lambda f: ["featurize", f"{f}/a_dir", "--kind", "ef", "-o", f"{f}/o.parquet"],
                                 "a_dir is a directory, not a CSV file"),
    "12-fit-a-directory": (lambda f: ["fit", f"{f}/a_dir", "--method", "sc-dl-ef", *SMOKE, "-o", f"{f}/F12"],
                           "a_dir is a directory, not a CSV file"),
    # 13 a ragged CSV
    "13-ragged-row": (lambda f: ["featurize", f"{f}/ragged.csv", "--kind", "ef", "-o", f"{f}/o.parquet"],
                      "ragged.csv: line 3 has 3 fields, the header has 2"),
    # 14 a checkpoint whose weights do not fit its card: one line
    "14-width-mismatch": (lambda f: ["predict", f"{f}/wrong_width", f"{f}/formulas.csv", "-o", f"{f}/p.csv"],
                          "is corrupt: RuntimeError: Error(s) in loading state_dict for NN17: size mismatch"),
    # 16 the same model twice
    "16-duplicate-model": (lambda f: ["predict", f"{f}/ckpt", f"{f}/ckpt/", f"{f}/formulas.csv", "-o", f"{f}/p.csv"],
                           "is given twice"),
    # 17 column names for fit and benchmark
    "17-fit-missing-target-col": (lambda f: ["fit", f"{f}/renamed.csv", "--method", "sc-dl-ef", *SMOKE,
                                             "--formula-col", "comp", "--target-col", "y", "-o", f"{f}/F17"],
                                  "lacks column(s) ['y']"),
    "17-benchmark-columns-of-a-registry-set": (lambda f: ["benchmark", "jarvis_formation_energy", "--formula-col",
                                                          "comp", *SMOKE, "-o", f"{f}/B17"], "apply to a CSV"),
    # 18 --methods without a method
    "18-benchmark-methods-empty": (lambda f: ["benchmark", f"{f}/small.csv", "--methods", "-o", f"{f}/B18"],
                                   "argument --methods: expected at least one argument"),
    "18-benchmark-methods-unknown": (lambda f: ["benchmark", f"{f}/small.csv", "--methods", "sc-dl-ef", "bogus",
                                                "-o", f"{f}/B18"], "invalid choice: 'bogus'"),
    # 19 a duplicated header column
    "19-duplicate-header": (lambda f: ["featurize", f"{f}/dup.csv", "--kind", "ef", "-o", f"{f}/o.parquet"],
                            "has the column(s) ['formula'] more than once"),
    # 22 a source for a scratch method
    "22-source-for-scratch": (lambda f: ["fit", f"{f}/small.csv", "--method", "sc-dl-ef", "--source", f"{f}/ckpt",
                                         *SMOKE, "-o", f"{f}/F22"], "uses no source model; drop --source"),
    # and usage errors are one line too
    "usage-unknown-option": (lambda f: ["predict", f"{f}/ckpt", f"{f}/formulas.csv", "-o", f"{f}/p.csv", "--bogus"],
                             "unrecognized arguments: --bogus"),
    "usage-bad-profile": (lambda f: ["fit", "x", "--method", "sc-dl-ef", "--profile", "huge", "-o", "x"],
                          "argument --profile: invalid choice: 'huge'"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_exit_2(case, files, results_dir, capsys):
    build, expected = CASES[case]
    argv = build(files)
    before = sorted(p.relative_to(files) for p in files.rglob("*"))
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"tlrl {argv[0]}: error: "), err
    assert expected in err, err
    assert sorted(p.relative_to(files) for p in files.rglob("*")) == before  # nothing written, nothing left


def test_no_error_case_is_left_out():
    """Every defect of issue 10 that is a user error has a row in the table (the rest have tests below)."""
    covered = {int(case.split("-")[0]) for case in CASES if case[0].isdigit()}
    assert covered == {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 22}


# --- 1: provenance ------------------------------------------------------------------------------------------------


def test_provenance_records_what_made_the_folder(results_dir, files):
    record = json.loads((results_dir / FILE).read_text())
    assert record["dataset"]["name"] == str(files / "small.csv") and record["dataset"]["rows"] == 60
    assert len(record["dataset"]["sha256"]) == 64
    assert record["profile"]["name"] == "smoke" and record["profile"]["settings"]["n_folds"] == 2
    assert record["seed"] == 0 and record["tlrl_version"] == __version__
    assert record["source"]["ref"] == "shipped:oqmd_nn17_ef" and record["source"]["digest"]
    # the same settings pass; the same name with other content does not
    check_results_dir(results_dir, str(files / "small.csv"), "smoke", seed=0)
    other = load_dataset(files / "small.csv").assign(target=lambda d: d.target + 1)
    other.attrs["name"] = str(files / "small.csv")
    with pytest.raises(TlrlError, match="same name, other content"):
        check_results_dir(results_dir, other, "smoke", seed=0)


def test_provenance_force_starts_the_folder_afresh(files, tmp_path):
    out = tmp_path / "B"
    check_results_dir(out, str(files / "small.csv"), "smoke", seed=0)
    (out / "runs" / "sc-dl-ef").mkdir(parents=True)
    (out / "runs" / "sc-dl-ef" / "metrics.json").write_text("{}")
    with pytest.raises(TlrlError, match="profile smoke with other train.lr"):
        check_results_dir(out, str(files / "small.csv"), get_profile("smoke", train__lr=0.1), seed=0)
    check_results_dir(out, str(files / "small.csv"), "smoke", seed=3, force=True)
    assert not (out / "runs").exists()
    assert json.loads((out / FILE).read_text())["seed"] == 3


def test_benchmark_force_with_unusable_formulas_keeps_the_folder(files, tmp_path, capsys):
    out = tmp_path / "B"
    check_results_dir(out, str(files / "small.csv"), "smoke", seed=0)
    (out / "runs" / "sc-dl-ef").mkdir(parents=True)
    (out / "runs" / "sc-dl-ef" / "metrics.json").write_text('{"method": "sc-dl-ef"}')
    pd.read_csv(files / "small.csv").assign(formula="Xx2O").to_csv(tmp_path / "bad.csv", index=False)
    assert main(["benchmark", str(tmp_path / "bad.csv"), *SMOKE, "-o", str(out), "--force"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "rows have unusable formulas" in err, err
    assert (out / "runs" / "sc-dl-ef" / "metrics.json").is_file()


def test_benchmark_never_writes_over_a_csv_input_inside_its_folder(files, tmp_path, capsys):
    """The CLI passes a CSV as a table: its name must still reach the folder check, as for tlrl curve."""
    out = tmp_path / "B"
    check_results_dir(out, "jarvis_formation_energy", "smoke", seed=0)
    mine = out / "results.csv"  # a user's CSV saved under a name the benchmark writes
    pd.read_csv(files / "small.csv").to_csv(mine, index=False)
    before = mine.read_text()
    for force in ([], ["--force"]):
        assert main(["benchmark", str(mine), *SMOKE, "-o", str(out), *force]) == 2
        assert "holds the input" in capsys.readouterr().err
    assert mine.read_text() == before


def test_a_folder_from_before_provenance_is_checked_by_its_runs(files, tmp_path):
    (tmp_path / "runs" / "sc-dl-ef").mkdir(parents=True)
    write_json(tmp_path / "runs" / "sc-dl-ef" / "metrics.json", {"dataset": "jarvis_formation_energy",
                                                                  "profile": "quick", "seed": 0, "source": None})
    with pytest.raises(TlrlError, match=r"dataset jarvis_formation_energy there, .*small.csv now; profile quick"):
        check_results_dir(tmp_path, str(files / "small.csv"), "smoke")
    assert not (tmp_path / FILE).exists()


# --- 2, 15, 16, 17: fit and predict on good inputs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(files) -> Path:
    """A 'tlrl fit --force' over an earlier fit run holding a stale fold, with renamed columns."""
    run = files / "run"
    (run / "fold_7").mkdir(parents=True)
    checkpoint.save(NN17(86, seed=1), run / "fold_7", {"input": {"kind": "ef"}})
    write_json(run / "metrics.json", {"method": "sc-dl-ef", "paper_name": "SC:DL(EF)"})
    code = main(["fit", f"{files}/renamed.csv", "--formula-col", "comp", "--target-col", "dHf", "--method",
                 "sc-dl-ef", *SMOKE, "-o", str(run), "--force"])
    assert code == 0
    return run


def test_fit_force_replaces_the_run_folder_as_a_whole(run_dir, files):
    assert sorted(p.name for p in run_dir.glob("fold_*")) == ["fold_0", "fold_1"]  # smoke: 2 folds, fold_7 gone
    assert not [p for p in files.iterdir() if p.name.startswith(".run")]  # no temporary sibling left
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["dataset"] == f"{files}/renamed.csv" and metrics["n_train"] + metrics["n_test"] == 60


def test_predict_keeps_every_row_in_order_with_its_problem(run_dir, tmp_path, capsys):
    inp = tmp_path / "in.csv"
    inp.write_text("formula,note\nNaCl,a\nFe1e308O,b\nNaN,c\nCuSO4.5H2O,d\nFe2O3,e\n")
    out = tmp_path / "p.csv"
    with pytest.warns(UserWarning, match="2 of 5 rows have unusable formulas.*left empty"):
        assert main(["predict", str(run_dir), str(inp), "-o", str(out)]) == 0
    out_text = capsys.readouterr().out
    assert "wrote 5 rows" in out_text and "(2 without a prediction)" in out_text
    preds = pd.read_csv(out, keep_default_na=False)
    assert list(preds.columns) == ["formula", "prediction", "std", "problem"]
    assert preds["formula"].tolist() == ["NaCl", "Fe1e308O", "NaN", "CuSO4.5H2O", "Fe2O3"]
    usable = preds["problem"] == ""
    assert usable.tolist() == [True, False, True, False, True]
    assert (preds.loc[~usable, "prediction"] == "").all()
    assert np.isfinite(preds.loc[usable, "prediction"].astype(float)).all()
    assert (preds.loc[usable, "std"].astype(float) > 0).all()
    assert preds["problem"][1] == f"amount 1e308: {AMOUNT_RULE}"


def test_one_checkpoint_keeps_the_std_column_empty(run_dir, files, tmp_path):
    out = tmp_path / "p.csv"
    assert main(["predict", str(run_dir / "fold_0"), f"{files}/formulas.csv", "-o", str(out)]) == 0
    preds = pd.read_csv(out)
    assert list(preds.columns) == ["formula", "prediction", "std", "problem"]
    assert preds["std"].isna().all() and preds["prediction"].notna().all()


# --- 4, 5, 6, 8, 20, 21: parsing --------------------------------------------------------------------------------


def test_hydrates_with_a_middle_dot_are_the_sum_of_their_parts():
    X, keep = element_fractions(["CuSO4·5H2O", "CuSO9H10", "CuSO4.H2O", "CuSO5H2", "Ce1.3Lu0.7S3"])
    assert keep.all()
    np.testing.assert_array_equal(X[0], X[1])
    np.testing.assert_array_equal(X[2], X[3])
    for formula in ("CuSO4.5H2O", "CaCl2.2H2O", "Fe.5O"):
        with pytest.raises(TlrlError, match="ambiguous '.'"):
            element_fractions(["NaCl", formula], errors="raise")


@pytest.mark.parametrize("formula", ["Fe0O", "Fe1e308O", "Fe1e-300O", "Fe-1O", "(Fe2)0O", "(Fe1e4)1e4O"])
def test_amounts_outside_the_rule_are_refused(formula):
    with pytest.raises(TlrlError, match=re.escape(AMOUNT_RULE)):
        element_fractions(["NaCl", formula], errors="raise")


def test_nonfinite_features_are_caught_in_float32():
    assert nonfinite_rows(np.array([[1.0, np.nan], [1e39, 0.0], [-np.inf, 0.0]])).tolist() == [False, True, True]


def test_formulas_that_look_like_missing_values_stay_formulas(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("formula,target\nNaN,1\nNA,2\nNone,3\n,4\n")
    assert read_table(path)["formula"].tolist() == ["NaN", "NA", "None", ""]
    with pytest.warns(UserWarning, match="3 of 4 rows") as record:
        X, keep = element_fractions(read_table(path)["formula"])
    assert "'' (empty)" in str(record[0].message)
    assert keep.tolist() == [True, False, False, False]  # NaN is sodium nitride; NA, None, '' are not formulas


def test_semicolon_and_tab_separated_files_are_read(tmp_path):
    for sep in (";", "\t"):
        path = tmp_path / "s.csv"
        path.write_text(f"formula{sep}target\nNaCl{sep}1.5\nMgO{sep}2\n")
        assert read_table(path).to_dict("list") == {"formula": ["NaCl", "MgO"], "target": [1.5, 2.0]}


def test_constant_target_warns_in_one_line(files):
    """In a real process, where warnings reach stderr (pytest records them in-process)."""
    argv = ["fit", f"{files}/constant.csv", "--method", "sc-dl-ef", "--layer", "3", *SMOKE, "-o", f"{files}/F"]
    proc = subprocess.run([sys.executable, "-m", "tlrl.cli", *argv], capture_output=True, text=True, timeout=120)
    err = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(err) == 2, proc.stderr
    assert err[0].startswith("tlrl fit: warning: every target of") and "constant target" in err[0]
    assert err[1].startswith("tlrl fit: error: method 'sc-dl-ef' takes no --layer")


def test_metrics_json_is_standard_json(tmp_path):
    write_json(tmp_path / "m.json", {"mae": math.inf, "std": np.float32("nan"), "ok": np.float64(0.5)})
    assert json.loads((tmp_path / "m.json").read_text(), parse_constant=pytest.fail) == {
        "mae": None, "std": None, "ok": 0.5}


# --- 23: help ---------------------------------------------------------------------------------------------------


def test_help_is_enough_to_use_each_command(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tlrl {__version__}"
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert "``" not in top and "tlrl <command> --help" in top
    for command in ("featurize", "pretrain", "fit", "predict", "benchmark"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "``" not in text and "-o " in text
        assert "(default: 0)" in text or command in ("featurize", "predict")  # --seed says what it does
    assert main(["fit", "--help"]) == 0
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, also at hyphens
    assert "{smoke,quick,full}" in text and "tl-finetune=TL:Fine-Tune" in text and "seedofthedatasplit" in text


# --- interrupts and resume ------------------------------------------------------------------------------------------


def test_interrupt_exits_130_and_leaves_no_temporary_file(files, tmp_path, monkeypatch, capsys):
    def interrupted(self, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", interrupted)
    assert main(["featurize", f"{files}/formulas.csv", "--kind", "ef", "-o", str(tmp_path / "o.parquet")]) == 130
    assert capsys.readouterr().err == "tlrl featurize: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def test_interrupted_fit_keeps_the_old_run_and_no_temporary_folder(run_dir, files, monkeypatch, capsys):
    before = {p.relative_to(run_dir): p.stat().st_mtime_ns for p in run_dir.rglob("*")}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", interrupted)
    code = main(["fit", f"{files}/small.csv", "--method", "sc-dl-ef", *SMOKE, "-o", str(run_dir), "--force"])
    assert code == 130 and capsys.readouterr().err == "tlrl fit: interrupted\n"
    assert {p.relative_to(run_dir): p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before
    assert not [p for p in files.iterdir() if p.name.startswith(".run")]


def test_a_killed_benchmark_resumes_to_the_uninterrupted_results(files, tmp_path, monkeypatch, capsys):
    slugs = ["sc-dl-ef", "tl-finetune"]
    whole = benchmark.run_benchmark(str(files / "small.csv"), tmp_path / "A", "smoke", methods=slugs)

    calls, fit = [], plan._fit

    def killed_on_the_second(*args):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit(*args)

    monkeypatch.setattr(plan, "_fit", killed_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        benchmark.run_benchmark(str(files / "small.csv"), tmp_path / "B", "smoke", methods=slugs)
    monkeypatch.undo()
    resumed = benchmark.run_benchmark(str(files / "small.csv"), tmp_path / "B", "smoke", methods=slugs)
    pd.testing.assert_frame_equal(whole.drop(columns="seconds"), resumed.drop(columns="seconds"))
    # and rerunning it with another seed through the CLI is refused, not served from the old runs
    assert main(["benchmark", f"{files}/small.csv", *SMOKE, "--seed", "7", "--methods", *slugs,
                 "-o", str(tmp_path / "B")]) == 2
    assert "seed 0 there, 7 now" in capsys.readouterr().err

"""The learning curve (tlrl.curve) and the paired rule (tlrl.paired) on real JARVIS rows."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tlrl import curve, io
from tlrl.cli import main
from tlrl.errors import TlrlError
from tlrl.io import output_lock
from tlrl.paired import FEW_PAIRS, compare, reading
from tlrl.profiles import get_profile
from tlrl.train import TrainConfig

METHODS = ["mean", "zero-shot", "offset", "tl-finetune", "rl-dl-relu", "peer-hgb-pa"]


def test_subsamples_are_nested_and_validate_on_their_own_rows():
    for seed in (0, 1):
        small, large = curve.subsample(1000, 100, seed), curve.subsample(1000, 300, seed)
        assert set(small[0]) <= set(large[0]) and set(small[1]) <= set(large[1])
        assert not set(small[0]) & set(small[1]) and len(small[0]) + len(small[1]) == 100
        assert len(small[1]) == 100 // curve.VAL_EVERY
    assert set(curve.subsample(1000, 100, 0)[0]) != set(curve.subsample(1000, 100, 1)[0])


def test_small_sets_get_smaller_batches_and_more_epochs():
    base = TrainConfig(batch_size=256, max_epochs=20, patience=20)
    tiny, big = curve.curve_config(base, 80, 500), curve.curve_config(base, 8000, 500)
    assert (tiny.batch_size, big.batch_size) == (16, 256)
    assert tiny.max_epochs == 100 and tiny.patience == 100  # 5 steps an epoch, 500 steps
    assert big.max_epochs == 20  # 32 steps an epoch: the recipe's 20 epochs already exceed 500 steps
    assert curve.curve_config(TrainConfig(max_epochs=4000, patience=200), 800, 500).patience == 200


def test_the_paired_rule_and_its_words():
    lower = compare("a", "b", [0.10, 0.11, 0.09, 0.10], [0.12, 0.13, 0.11, 0.12])
    assert lower.verdict == "lower" and "under this protocol" in lower.sentence()
    assert compare("a", "b", [0.1, 0.2, 0.1], [0.2, 0.1, 0.1]).verdict == "not distinguishable"
    many = compare("a", "b", np.arange(FEW_PAIRS) + 1.0, np.arange(FEW_PAIRS) * 1.0)
    assert many.verdict == "higher" and "under this protocol" not in many.sentence()
    assert (lower.reading, many.reading) == ("lower under this protocol", "higher")
    assert reading("not distinguishable", 3) == "not distinguishable"
    assert compare("a", "b", [0.1], [0.2]) is None


@pytest.fixture(scope="module")
def curve_dir(jarvis_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp("curve")
    table = curve.run_curve(jarvis_slice, out, sizes=(40, 120), methods=METHODS, seeds=(0, 1),
                            profile="smoke", seeds_at={120: [0]})
    return out, table


def test_the_curve_has_one_row_per_size_method_and_seed(curve_dir):
    out, table = curve_dir
    assert len(table) == len(METHODS) * (2 + 1)
    assert set(table.columns) == set(curve.COLUMNS)
    assert table[["test_mae", "val_mae"]].notna().all().all() and (table.test_mae > 0).all()
    relu = table[table.method == "rl-dl-relu"]
    assert relu.layer.isin([8, 15]).all() and table[table.method == "tl-finetune"].batch.eq(16).all()
    zero = table[table.method == "zero-shot"]
    assert zero.test_mae.nunique() == 1  # the source as it is sees no training rows
    summary = pd.read_csv(out / "summary.csv")
    assert summary.set_index(["size", "method"]).loc[(40, "tl-finetune"), "seeds"] == 2
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["size"]) == {40}  # one seed at 120 pairs nothing
    assert paired.verdict.isin(["lower", "higher", "not distinguishable"]).all()


def test_a_rerun_resumes_without_training(curve_dir, jarvis_slice, monkeypatch):
    out, table = curve_dir
    for name in ("run_unit", "fit"):
        monkeypatch.setattr(curve._Curve, name, lambda *a, **k: pytest.fail("a finished unit was rerun"))
    again = curve.run_curve(jarvis_slice, out, sizes=(40, 120), methods=METHODS, seeds=(0, 1), profile="smoke",
                            seeds_at={120: [0]})
    pd.testing.assert_frame_equal(again, table, check_dtype=False)


def _cut_mid_row(text: str) -> str:
    return text[: text.rindex(",", 0, len(text) - 1) - 2]


@pytest.mark.parametrize("damage", [lambda t: "", _cut_mid_row, lambda t: t.rsplit("\n", 2)[0] + "\n"],
                         ids=["empty", "cut-mid-row", "one-seed-missing"])
def test_a_unit_cut_short_runs_again(jarvis_slice, tmp_path, damage):
    kw = {"sizes": (30,), "methods": ["mean"], "seeds": (0, 1), "profile": "smoke"}
    first = curve.run_curve(jarvis_slice, tmp_path, **kw)
    unit = tmp_path / "runs" / "30" / "mean_s0-1.csv"
    unit.write_text(damage(unit.read_text()))
    with pytest.warns(UserWarning, match="mean_s0-1.csv is cut short or lacks some of its seeds' rows"):
        again = curve.run_curve(jarvis_slice, tmp_path, **kw)
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), first.drop(columns="seconds"))
    assert len(pd.read_csv(unit)) == 2


def test_force_reruns_every_unit_without_reading_them_first(jarvis_slice, tmp_path, monkeypatch):
    kw = {"sizes": (30, 40), "methods": ["mean", "offset"], "seeds": (0,), "profile": "smoke"}
    curve.run_curve(jarvis_slice, tmp_path, **kw)
    (tmp_path / "runs" / "30" / "mean_s0.csv").write_text("size,method,seed\n30,mea")
    ran, run_unit = [], curve._Curve.run_unit
    monkeypatch.setattr(curve._Curve, "run_unit", lambda self, *a: ran.append(a) or run_unit(self, *a))
    table = curve.run_curve(jarvis_slice, tmp_path, force=True, **kw)
    assert len(ran) == 4 and len(table) == 4


def test_the_summaries_and_provenance_hold_exactly_this_runs_plan(jarvis_slice, tmp_path, monkeypatch):
    kw = {"methods": ["mean"], "profile": "smoke"}
    curve.run_curve(jarvis_slice, tmp_path, sizes=(30,), seeds=(0, 1), **kw)
    table = curve.run_curve(jarvis_slice, tmp_path, sizes=(40, 50), seeds=(2,), seeds_at={50: [3, 4]}, **kw)
    assert sorted(zip(table["size"], table.seed)) == [(40, 2), (50, 3), (50, 4)]
    assert sorted(pd.read_csv(tmp_path / "summary.csv")["size"]) == [40, 50]
    plan = json.loads((tmp_path / "provenance.json").read_text())["plan"]
    assert plan == {"sizes": [40, 50], "seeds": [2], "seeds_at": {"50": [3, 4]}, "methods": ["mean"]}
    assert (tmp_path / "runs" / "30" / "mean_s0-1.csv").is_file()  # kept for a later run that asks for it
    monkeypatch.setattr(curve._Curve, "run_unit", lambda *a, **k: pytest.fail("a finished unit was rerun"))
    back = curve.run_curve(jarvis_slice, tmp_path, sizes=(30,), seeds=(0, 1), **kw)
    assert list(back["size"]) == [30, 30] and list(pd.read_csv(tmp_path / "curve.csv").seed) == [0, 1]


def test_many_seeds_get_a_short_unit_name_and_resume(jarvis_slice, tmp_path, monkeypatch):
    seeds = range(100, 200)  # 399 characters as a list in a file name
    table = curve.run_curve(jarvis_slice, tmp_path, sizes=(20,), methods=["mean"], seeds=seeds, profile="smoke")
    (unit,) = (tmp_path / "runs" / "20").iterdir()
    assert unit.name.startswith("mean_100seeds-") and len(unit.name) < 40
    assert list(pd.read_csv(unit).seed) == list(seeds) and len(table) == 100
    monkeypatch.setattr(curve._Curve, "run_unit", lambda *a, **k: pytest.fail("a finished unit was rerun"))
    curve.run_curve(jarvis_slice, tmp_path, sizes=(20,), methods=["mean"], seeds=seeds, profile="smoke")  # claimed


BAD_ARGUMENTS = {
    "sizes-empty": ({"sizes": []}, "sizes must be a non-empty list of integers, got []"),
    "sizes-text": ({"sizes": ["40"]}, "sizes must be a non-empty list of integers, got ['40']"),
    "sizes-float": ({"sizes": [40.0]}, "got [40.0]"),
    "sizes-a-string": ({"sizes": "40"}, "sizes must be a list of integers, got '40'"),
    "sizes-twice": ({"sizes": (40, 40)}, "each of the sizes may be given once"),
    "size-too-small": ({"sizes": (4,)}, "a size needs at least 10 rows, got 4"),
    "size-too-large": ({"sizes": (5000,)}, "the largest size, 5000, exceeds the 400 usable train rows"),
    "methods-empty": ({"methods": []}, "methods names no method"),
    "methods-a-string": ({"methods": "mean"}, "methods must be a list of method names, got 'mean'"),
    "methods-twice": ({"methods": ["mean", "mean"]}, "each method may be given once"),
    "method-automl": ({"methods": ["sc-ml-ef"]}, "method 'sc-ml-ef' is not on the curve"),
    "seeds-empty": ({"seeds": ()}, "seeds must be a non-empty list of integers"),
    "seeds-negative": ({"seeds": (-1,)}, "seeds must be integers from 0 to 4294967295"),
    "seeds-huge": ({"seeds": (2**40,)}, "seeds must be integers from 0 to 4294967295"),
    "seeds-at-a-list": ({"seeds_at": [(40, [0])]}, "seeds_at must map sizes to seeds"),
    "seeds-at-text-size": ({"seeds_at": {"40": [0]}}, "sizes of seeds_at must be a non-empty list of integers"),
    "seeds-at-one-int": ({"seeds_at": {40: 0}}, "seeds at size 40 must be a list of integers, got 0"),
    "seeds-at-other-size": ({"seeds_at": {99: [0]}}, "seeds are given for sizes not on the curve: [99]"),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_arguments_are_one_error_before_any_folder(case, jarvis_slice, tmp_path):
    given, message = BAD_ARGUMENTS[case]
    kw = {"sizes": (40,), "methods": ["mean"], "profile": "smoke"} | given
    with pytest.raises(TlrlError, match=re.escape(message)):
        curve.run_curve(jarvis_slice, tmp_path / "new" / "out", **kw)
    assert list(tmp_path.iterdir()) == []


def test_generators_are_read_once(jarvis_slice, tmp_path):
    table = curve.run_curve(jarvis_slice, tmp_path, sizes=(n for n in (30, 40)), methods=iter(["mean"]),
                            seeds=(s for s in (0, 1)), profile="smoke")
    assert sorted(zip(table["size"], table.seed)) == [(30, 0), (30, 1), (40, 0), (40, 1)]


def test_the_api_locks_and_claims_the_folder(jarvis_slice, tmp_path):
    out = tmp_path / "out"
    with output_lock(out), pytest.raises(TlrlError, match="being written by another tlrl run"):
        curve.run_curve(jarvis_slice, out, sizes=(30,), methods=["mean"], profile="smoke")
    assert list(tmp_path.iterdir()) == []
    curve.run_curve(jarvis_slice, out, sizes=(30,), methods=["mean"], seeds=(0,), profile="smoke")
    mine = jarvis_slice.copy()
    jarvis_slice.to_csv(out / "summary.csv", index=False)  # an input saved under a name the curve writes
    mine.attrs = {"name": str(out / "summary.csv")}  # as the CLI names the frame it loads
    with pytest.raises(TlrlError, match="holds the input"):
        curve.run_curve(mine, out, sizes=(30,), methods=["mean"], seeds=(0,), profile="smoke", force=True)


def test_stale_temporaries_of_a_killed_run_go(jarvis_slice, tmp_path):
    kw = {"sizes": (30,), "methods": ["mean"], "seeds": (0,), "profile": "smoke"}
    curve.run_curve(jarvis_slice, tmp_path, **kw)
    dead = 2**22 + 1  # above any pid_max: no such process
    size = tmp_path / "runs" / "30"
    (size / f".mean_s0.csv.tlrl-{dead}-abc.csv").write_text("size,me")
    (size / f".offset_s7.csv.tlrl-{dead}-abc.csv").write_text("")  # of a unit this run does not write
    (size / f".mean_s0.csv.tlrl-{os.getpid()}-live.csv").write_text("")
    curve.run_curve(jarvis_slice, tmp_path, **kw)
    assert sorted(p.name for p in size.iterdir()) == [f".mean_s0.csv.tlrl-{os.getpid()}-live.csv", "mean_s0.csv"]


def test_the_cli_runs_the_curve_on_a_user_csv(jarvis_slice, tmp_path, capsys):
    csv = tmp_path / "mine.csv"
    jarvis_slice.to_csv(csv, index=False)
    assert main(["curve", str(csv), "--profile", "smoke", "--sizes", "30,60", "--seeds", "0",
                 "--methods", "offset,tl-finetune", "-o", str(tmp_path / "out")]) == 0
    assert "tl-finetune" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "out" / "curve.csv")) == 4
    assert main(["curve", str(csv), "--sizes", "30,x", "-o", str(tmp_path / "o2")]) == 2
    assert main(["curve", str(csv), "--profile", "smoke", "--methods", "rl-freezing", "--sizes", "30",
                 "-o", str(tmp_path / "o3")]) == 2
    assert "not on the curve" in capsys.readouterr().err


def test_the_cli_never_writes_over_an_input_inside_its_folder(jarvis_slice, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["curve", "jarvis_formation_energy", "--profile", "smoke", "--sizes", "30", "--seeds", "0",
                 "--methods", "mean", "-o", str(out)]) == 0
    mine = out / "summary.csv"  # a user's CSV saved under a name the curve writes
    jarvis_slice.to_csv(mine, index=False)
    before = mine.read_text()
    for force in ([], ["--force"]):
        assert main(["curve", str(mine), "--profile", "smoke", "--sizes", "30", "--seeds", "0", "--methods", "mean",
                     "-o", str(out), *force]) == 2
        assert "holds the input" in capsys.readouterr().err
    assert mine.read_text() == before


@pytest.fixture(scope="module")
def small_csv(jarvis_slice, tmp_path_factory) -> Path:
    """60 train and 20 test rows: fewer than the smallest default size."""
    path = tmp_path_factory.mktemp("small") / "small.csv"
    pd.concat([jarvis_slice[jarvis_slice.split == "train"].head(60),
               jarvis_slice[jarvis_slice.split == "test"].head(20)]).to_csv(path, index=False)
    return path


def _one_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("tlrl curve: error: "), err
    return err


MEAN = ["--profile", "smoke", "--methods", "mean"]


def test_seeds_at_is_one_size_each_and_repeats_merge(small_csv, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert "must be one SIZE=SEEDS" in _one_error(["curve", str(small_csv), *MEAN, "--sizes", "40,50",
                                                    "--seeds-at", "40,50=0", "-o", out], capsys)
    assert "the size(s) [40] more than once" in _one_error(["curve", str(small_csv), *MEAN, "--sizes", "40",
                                                            "--seeds-at", "40=0", "--seeds-at", "40=1", "-o", out],
                                                           capsys)
    assert not (tmp_path / "o").exists()
    assert main(["curve", str(small_csv), *MEAN, "--sizes", "40,50", "--seeds-at", "40=5", "--seeds-at", "50=6,7",
                 "-o", out]) == 0
    table = pd.read_csv(tmp_path / "o" / "curve.csv")
    assert sorted(zip(table["size"], table.seed)) == [(40, 5), (50, 6), (50, 7)]


def test_a_fifo_as_dataset_says_what_it_is(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.csv")
    err = _one_error(["curve", str(tmp_path / "pipe.csv"), *MEAN, "-o", str(tmp_path / "o")], capsys)
    assert "pipe.csv is a FIFO, not a regular file" in err and not (tmp_path / "o").exists()


def test_an_unknown_method_lists_only_the_curve_methods(small_csv, tmp_path, capsys):
    err = _one_error(["curve", str(small_csv), "--profile", "smoke", "--methods", "bogus", "-o", str(tmp_path / "o")],
                     capsys)
    assert "'bogus' is not on the curve" in err and "tl-finetune" in err and "zero-shot" in err
    assert "sc-ml-ef" not in err and "rl-freezing" not in err


def test_the_cli_default_sizes_adapt_to_a_small_csv_but_explicit_ones_do_not(small_csv, tmp_path, capsys):
    """In a real process, where the warning reaches stderr (pytest records warnings in-process)."""
    proc = subprocess.run([sys.executable, "-m", "tlrl.cli", "curve", str(small_csv), *MEAN, "--seeds", "0",
                           "-o", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    warning = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert proc.returncode == 0 and warning == [
        "tlrl curve: warning: the train part holds 60 rows: the curve runs at sizes [50], without the default "
        "sizes [100, 300, 1000, 3000, 10000]"], proc.stderr
    assert list(pd.read_csv(tmp_path / "o" / "curve.csv")["size"]) == [50]
    err = _one_error(["curve", str(small_csv), *MEAN, "--sizes", "100", "-o", str(tmp_path / "o2")], capsys)
    assert "the largest size, 100, exceeds the 60 usable train rows" in err


def test_a_lock_that_cannot_be_made_is_one_error(small_csv, tmp_path, monkeypatch, capsys):
    opener = os.open

    def refuse_locks(path, *args, **kwargs):
        if str(path).endswith(".tlrl-lock"):  # as in a parent folder this user may not write
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return opener(path, *args, **kwargs)

    monkeypatch.setattr(io.os, "open", refuse_locks)
    err = _one_error(["curve", str(small_csv), *MEAN, "--sizes", "30", "-o", str(tmp_path / "o")], capsys)
    assert f"cannot write {tmp_path / 'o'}: Permission denied" in err and not (tmp_path / "o").exists()


# --- issue 22: nothing is written or discarded before the input is known to be good ------------------------------


@pytest.fixture(scope="module")
def bad_csvs(small_csv) -> Path:
    """Beside small.csv: every formula unusable, every other one unusable, the test part's all unusable."""
    df, folder = pd.read_csv(small_csv), small_csv.parent
    df.assign(formula="Xx2O").to_csv(folder / "unusable.csv", index=False)
    df.assign(formula=df.formula.where(df.index % 2 == 0, "Xx2O")).to_csv(folder / "half.csv", index=False)
    df.assign(formula=df.formula.where(df.split == "train", "Xx2O")).to_csv(folder / "badtest.csv", index=False)
    pd.concat([df[df.split == "train"].head(8), df[df.split == "test"].head(4)]).to_csv(folder / "eight.csv",
                                                                                         index=False)
    return folder


BAD_DATA = {
    "formulas-unusable": (["unusable.csv", "--sizes", "30"], "60 of 60 rows have unusable formulas"),
    "formula-col-wrong": (["small.csv", "--sizes", "30", "--formula-col", "target"], "rows have unusable formulas"),
    "size-over-usable-rows": (["half.csv", "--sizes", "40"],
                              "the largest size, 40, exceeds the 30 usable train rows (of 60: the others were dropped"),
    "test-part-unusable": (["badtest.csv", "--sizes", "30"], "20 of 20 rows have unusable formulas"),
    "default-sizes-too-few-rows": (["eight.csv"], "a size needs at least 10 rows, got 8"),
    "fullwidth-size": (["small.csv", "--sizes", "３０"], "must be integers separated by commas, got '３０'"),
    "underscore-size": (["small.csv", "--sizes", "3_0"], "must be integers separated by commas, got '3_0'"),
    "fullwidth-seed": (["small.csv", "--sizes", "30", "--seeds", "０"], "must be integers separated by commas"),
    "fullwidth-seeds-at": (["small.csv", "--sizes", "30", "--seeds-at", "３０=0"], "must be one SIZE=SEEDS"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_is_one_line_and_leaves_a_finished_folder_as_it_was(case, bad_csvs, tmp_path, capsys):
    finished = tmp_path / "finished"
    assert main(["curve", str(bad_csvs / "small.csv"), *MEAN, "--sizes", "30", "--seeds", "0", "-o",
                 str(finished)]) == 0
    before = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    name, *options = BAD_DATA[case][0]
    for out, force in ((tmp_path / "new", []), (finished, ["--force"])):
        with warnings.catch_warnings(record=True) as caught:  # in a terminal each would be one more line
            err = _one_error(["curve", str(bad_csvs / name), *MEAN, *options, "-o", str(out), *force], capsys)
        assert BAD_DATA[case][1] in err and caught == [], [str(w.message) for w in caught]
    assert not (tmp_path / "new").exists()
    assert {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()} == before


def test_an_api_frame_of_numbers_or_an_unwritable_cache_is_refused_before_any_folder(jarvis_slice, tmp_path,
                                                                                      monkeypatch):
    numbers = jarvis_slice.assign(formula=range(len(jarvis_slice)))
    with pytest.raises(TlrlError, match="rows have unusable formulas"):
        curve.run_curve(numbers, tmp_path / "o", sizes=(30,), methods=["mean"], profile="smoke")
    monkeypatch.setenv("TLRL_CACHE_DIR", "/proc/nocache")
    for method in ("peer-hgb-pa", "rl-dl-relu"):
        with pytest.raises(TlrlError, match="/proc takes no new files.*writable TLRL_CACHE_DIR"):
            curve.run_curve(jarvis_slice, tmp_path / "o", sizes=(30,), methods=[method], profile="smoke")
    assert list(tmp_path.iterdir()) == []


def test_a_first_run_that_fails_before_any_unit_leaves_no_folder(jarvis_slice, tmp_path, monkeypatch):
    kw = {"sizes": (30,), "methods": ["mean"], "seeds": (0,), "profile": "smoke"}

    def fail(*args):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(curve._Curve, "run_unit", fail)
    with pytest.raises(RuntimeError):
        curve.run_curve(jarvis_slice, tmp_path / "o", **kw)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["curve", "--device", "cuda"], ["curve", "--device", "cuda:1"],
                                  ["curve", "--device", "mps"], ["benchmark", "--device", "cuda"],
                                  ["fit", "--method", "sc-dl-ef", "--device", "cuda"]])
def test_a_device_torch_lacks_is_one_line_before_any_folder(argv, small_csv, tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert main([argv[0], str(small_csv), "--profile", "smoke", *argv[1:], "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"error: device {argv[-1]} is not available" in err, err
    assert not (tmp_path / "o").exists()
    with pytest.raises(TlrlError, match="device cuda is not available"):
        curve.run_curve(small_csv, tmp_path / "o", sizes=(30,), methods=["mean"],
                        profile=get_profile("smoke").with_(train__device="cuda"))
    assert not (tmp_path / "o").exists()


@pytest.fixture
def finished(jarvis_slice, tmp_path) -> tuple[Path, dict]:
    """A finished curve folder of jarvis_slice, and the arguments that made it."""
    kw = {"sizes": (30,), "methods": ["mean", "offset"], "seeds": (0,), "profile": "smoke"}
    curve.run_curve(jarvis_slice, tmp_path / "c", **kw)
    return tmp_path / "c", kw


def test_a_curve_folder_without_curve_csv_resumes(finished, jarvis_slice, monkeypatch):
    out, kw = finished
    (out / "curve.csv").unlink()
    monkeypatch.setattr(curve._Curve, "run_unit", lambda *a, **k: pytest.fail("a finished unit was rerun"))
    assert len(curve.run_curve(jarvis_slice, out, **kw)) == 2 and (out / "curve.csv").is_file()


@pytest.mark.parametrize("record", ["{garbage", "[]", None], ids=["unreadable", "a-list", "deleted"])
def test_an_unusable_or_missing_record_is_refused_and_force_starts_afresh(record, finished, small_csv, capsys):
    out, kw = finished
    if record is None:
        (out / "provenance.json").unlink()
        message = f"{out} has units but no provenance.json: use --force to start the folder afresh"
    else:
        (out / "provenance.json").write_text(record)
        message = "provenance.json is " + ("unreadable (JSONDecodeError)" if record == "{garbage" else
                                            "not a provenance record (a JSON object)")
    argv = ["curve", str(small_csv), *MEAN, "--sizes", "30", "--seeds", "0", "-o", str(out)]
    assert message in _one_error(argv, capsys)
    assert main([*argv, "--force"]) == 0
    assert json.loads((out / "provenance.json").read_text())["dataset"]["name"] == str(small_csv)
    assert sorted(p.name for p in (out / "runs" / "30").iterdir()) == ["mean_s0.csv"]  # the other data's went


BAD_CALLS = {
    "out-dir-none": ({"out_dir": None}, "out_dir must be a folder path (a str or pathlib.Path), got None"),
    "out-dir-int": ({"out_dir": 5}, "out_dir must be a folder path (a str or pathlib.Path), got 5"),
    "out-dir-bytes": ({"out_dir": b"x"}, "out_dir must be a folder path (a str or pathlib.Path), got b'x'"),
    "out-dir-empty": ({"out_dir": ""}, "out_dir must be a folder path (a str or pathlib.Path), got ''"),
    "source-int": ({"source": 5}, "source must be a checkpoint folder (a str or pathlib.Path) or None, got 5"),
    "profile-dict": ({"profile": {"name": "smoke"}}, "unknown profile {'name': 'smoke'}"),
    "client-text": ({"client": "local"}, "client must be a distributed.Client or None, got 'local'"),
    "client-int": ({"client": 1}, "client must be a distributed.Client or None, got 1"),
    "force-text": ({"force": "no"}, "force must be True or False, got 'no'"),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_api_types_are_one_error_before_any_folder(case, jarvis_slice, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    given, message = BAD_CALLS[case]
    kw = {"out_dir": tmp_path / "new" / "out", "sizes": (30,), "methods": ["mean"], "profile": "smoke"} | given
    with pytest.raises(TlrlError, match=re.escape(message)):
        curve.run_curve(jarvis_slice, **kw)
    assert list(tmp_path.iterdir()) == []

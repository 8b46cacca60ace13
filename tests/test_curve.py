"""The learning curve (tlrl.curve) and the paired rule (tlrl.paired) on real JARVIS rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tlrl import curve
from tlrl.cli import main
from tlrl.errors import TlrlError
from tlrl.paired import FEW_PAIRS, compare
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
    monkeypatch.setattr(curve._Curve, "run_unit", lambda *a, **k: pytest.fail("a finished unit was rerun"))
    again = curve.run_curve(jarvis_slice, out, sizes=(40, 120), methods=METHODS, seeds=(0, 1), profile="smoke",
                            seeds_at={120: [0]})
    pd.testing.assert_frame_equal(again, table, check_dtype=False)


def test_bad_curve_requests_are_one_error(jarvis_slice, tmp_path):
    with pytest.raises(TlrlError, match="not on the curve"):
        curve.run_curve(jarvis_slice, tmp_path, sizes=(40,), methods=["sc-ml-ef"], profile="smoke")
    with pytest.raises(TlrlError, match="exceeds"):
        curve.run_curve(jarvis_slice, tmp_path / "big", sizes=(5000,), methods=["mean"], profile="smoke")
    with pytest.raises(TlrlError, match="not on the curve: \\[99\\]"):
        curve.run_curve(jarvis_slice, tmp_path / "sa", sizes=(40,), methods=["mean"], seeds_at={99: [0]},
                        profile="smoke")
    with pytest.raises(TlrlError, match="seeds must be"):
        curve.run_curve(jarvis_slice, tmp_path / "big-seed", sizes=(40,), methods=["mean"], seeds=(2**40,),
                        profile="smoke")
    with pytest.raises(TlrlError, match="given once"):
        curve.run_curve(jarvis_slice, tmp_path / "dup", sizes=(40, 40), methods=["mean"], profile="smoke")
    with pytest.raises(TlrlError, match="at least 10 rows"):
        curve.run_curve(jarvis_slice, tmp_path / "tiny", sizes=(4,), methods=["mean"], profile="smoke")


def test_a_corrupt_unit_is_one_error_naming_it(jarvis_slice, tmp_path):
    curve.run_curve(jarvis_slice, tmp_path, sizes=(30,), methods=["mean"], seeds=(0, 1), profile="smoke")
    unit = tmp_path / "runs" / "30" / "mean_s0-1.csv"
    unit.write_text("")
    with pytest.raises(TlrlError, match="mean_s0-1.csv is unreadable"):
        curve.run_curve(jarvis_slice, tmp_path, sizes=(30,), methods=["mean"], seeds=(0, 1), profile="smoke")


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

"""Dataset loading (registry, user CSV, online), splits, folds, outliers and leakage."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from tlrl.data import (
    REGISTRY,
    cv_folds,
    dataset_label,
    filter_outliers,
    leakage_report,
    load_dataset,
    read_table,
    records_to_frame,
    with_split,
)
from tlrl.errors import TlrlError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path: Path) -> Path:
    """No test may download or touch the user's cache: figshare fails, the data URL has no server
    (tests/test_download.py downloads from a local one), the cache is a tmp dir."""
    import jarvis.db.figshare

    def no_download(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(jarvis.db.figshare, "data", no_download)
    monkeypatch.setenv("TLRL_DATA_URL", "http://127.0.0.1:9/")  # the discard port: nothing answers
    cache = tmp_path / "cache"
    monkeypatch.setenv("TLRL_CACHE_DIR", str(cache))
    return cache


def _records(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())


# --- user CSVs ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mine.csv", "mine.csv.gz"])
def test_user_csv_with_custom_column_names(tmp_path: Path, name: str) -> None:
    raw = pd.DataFrame({"id": [1, 2, 3], "composition": ["NaCl", "Fe2O3", "Lu(MnGe)6"], "Eg": [8.5, 2.2, 0.0]})
    raw.to_csv(tmp_path / name, index=False)  # compression inferred from the suffix
    if name.endswith(".gz"):
        assert (tmp_path / name).read_bytes()[:2] == b"\x1f\x8b"
    df = load_dataset(tmp_path / name, formula_col="composition", target_col="Eg")
    assert list(df.columns) == ["formula", "target", "split"]
    assert df["formula"].tolist() == ["NaCl", "Fe2O3", "Lu(MnGe)6"]
    assert df["target"].tolist() == [8.5, 2.2, 0.0]
    assert set(df["split"]) <= {"train", "test"} and (df["split"] == "test").sum() == 1


def test_user_csv_other_columns_named_like_ours_do_not_clash(tmp_path: Path) -> None:
    path = tmp_path / "clash.csv"
    pd.DataFrame({"formula": ["junk", "junk"], "comp": ["NaCl", "MgO"], "target": [9, 9], "y": [1.0, 2.0]}).to_csv(
        path, index=False
    )
    df = read_table(path, formula_col="comp", target_col="y")
    assert df.to_dict("list") == {"formula": ["NaCl", "MgO"], "target": [1.0, 2.0]}


def test_user_csv_split_column_is_kept_and_normalised(tmp_path: Path) -> None:
    path = tmp_path / "split.csv"
    path.write_text("formula,target,split\nNaCl,1,train\nMgO,2, Test\nFe2O3,3,TRAIN\n")
    assert load_dataset(path)["split"].tolist() == ["train", "test", "train"]
    path.write_text("formula,target,split\nNaCl,1,train\nMgO,2,valid\n")
    with pytest.raises(TlrlError, match=r"only 'train'/'test', found \['valid'\]"):
        load_dataset(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"formula,target\n", "has a header but no rows"),
        (b"composition,target\nNaCl,1\n", r"lacks column\(s\) \['formula'\]"),
        (b"formula,energy\nNaCl,1\n", r"lacks column\(s\) \['target'\]"),
        (
            b"formula,target\nNaCl,1\nMgO,\nFe2O3,nan\nKCl,inf\nLiF,-inf\nCaO,abc\n",
            r"5 target\(s\).*lines \[3, 4, 5, 6, 7\]",
        ),
        (gzip.compress(b"formula,target\n" + b"NaCl,1\n" * 200)[:30], r"not a readable CSV \(EOFError\)"),
    ],
    ids=["0-bytes", "header-only", "no-formula-col", "no-target-col", "nan-inf-text-targets", "truncated-gzip"],
)
def test_read_table_rejects_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv.gz" if content[:2] == b"\x1f\x8b" else tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(TlrlError, match=message):
        read_table(path)


def test_read_table_target_optional_for_prediction_inputs(tmp_path: Path) -> None:
    path = tmp_path / "formulas.csv"
    path.write_text("formula\nNaCl\nMgO\n")
    assert read_table(path, require_target=False).to_dict("list") == {"formula": ["NaCl", "MgO"]}
    with pytest.raises(TlrlError, match="lacks column"):
        read_table(path)


def test_unknown_name_that_is_no_file(tmp_path: Path) -> None:
    with pytest.raises(TlrlError, match="not a file, and not one of oqmd_formation_enthalpy"):
        load_dataset(tmp_path / "nope.csv")


# --- the registry ---------------------------------------------------------------------------


def test_every_dataset_has_words_for_the_reader(tmp_path: Path) -> None:
    labels = {name: dataset_label(name) for name in REGISTRY}
    assert all(label != name and "_" not in label for name, label in labels.items())
    assert dataset_label("jarvis_formation_energy") == "JARVIS formation energy"
    assert dataset_label(tmp_path / "my_gaps.csv.gz") == "my_gaps"


def test_registry_name_through_the_environment(monkeypatch, data_dir: Path) -> None:
    monkeypatch.setenv("TLRL_DATA_DIR", str(data_dir))
    df = load_dataset("expt_bandgap", online=False)
    assert len(df) == 4920
    assert (
        df["split"].value_counts().to_dict()
        == pd.read_csv(data_dir / "expt_bandgap.csv.gz")["split"].value_counts().to_dict()
    )


def test_data_dir_argument_wins_over_the_environment(monkeypatch, tmp_path: Path, data_dir: Path) -> None:
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    pd.DataFrame({"formula": ["NaCl", "MgO"], "target": [1.0, 2.0]}).to_csv(decoy / "expt_bandgap.csv.gz", index=False)
    monkeypatch.setenv("TLRL_DATA_DIR", str(decoy))
    assert len(load_dataset("expt_bandgap", data_dir=data_dir, online=False)) == 4920
    with pytest.raises(TlrlError, match=r"decoy/expt_bandgap\.csv\.gz is not tlrl's expt_bandgap: its SHA-256 is "):
        load_dataset("expt_bandgap", online=False)  # the decoy is checked against the registry


def test_missing_registry_dataset_offline_says_where_it_looked(monkeypatch, tmp_path: Path, offline: Path) -> None:
    here, env = tmp_path / "here", tmp_path / "env"
    monkeypatch.setenv("TLRL_DATA_DIR", str(env))
    with pytest.raises(TlrlError, match="'jarvis_bulk_modulus_kv' not found") as info:
        load_dataset("jarvis_bulk_modulus_kv", data_dir=here, online=False)
    for directory in (here, env, offline / "data"):
        assert str(directory / "jarvis_bulk_modulus_kv.csv.gz") in str(info.value)


def test_latest_jarvis_and_the_paper_split_never_stand_in_for_each_other(
    monkeypatch, tmp_path: Path, data_dir: Path, offline: Path
) -> None:
    monkeypatch.setenv("TLRL_DATA_DIR", str(data_dir))
    with pytest.raises(TlrlError, match="'jarvis_latest_formation_energy' not found in .*through jarvis-tools"):
        load_dataset("jarvis_latest_formation_energy", online=False)
    # what older versions cached from jarvis-tools under the paper's name is not the paper's file
    monkeypatch.setenv("TLRL_DATA_DIR", str(tmp_path / "empty"))
    offline.mkdir(parents=True)
    stale = pd.DataFrame({"formula": ["NaCl"], "target": [-2.0]})
    stale.to_csv(offline / "jarvis_formation_energy.csv.gz", index=False)
    with pytest.raises(TlrlError, match="'jarvis_formation_energy' not found"):
        load_dataset("jarvis_formation_energy", online=False)


def test_published_jarvis_split_is_kept(jarvis: pd.DataFrame) -> None:
    assert len(jarvis) == 28_108
    assert jarvis["split"].value_counts().to_dict() == {"train": 25_297, "test": 2_811}
    assert jarvis["formula"].iloc[1] == "Lu(MnGe)6"  # file order kept


# --- splits and folds --------------------------------------------------------------------------


def test_seeded_split_when_absent(jarvis: pd.DataFrame) -> None:
    df = jarvis.drop(columns="split")
    a, b, c = with_split(df, seed=0), with_split(df, seed=0), with_split(df, seed=1)
    assert (a["split"] == "test").sum() == math.ceil(0.1 * len(df))
    pd.testing.assert_frame_equal(a, b)
    assert (a["split"] != c["split"]).sum() > 1000
    pd.testing.assert_frame_equal(a.drop(columns="split"), df)


def test_seeded_split_of_a_user_csv_depends_on_the_seed_only(tmp_path: Path, oqmd_head: pd.DataFrame) -> None:
    path = tmp_path / "oqmd.csv"
    oqmd_head.to_csv(path, index=False)
    first, again, other = load_dataset(path, seed=3), load_dataset(path, seed=3), load_dataset(path, seed=4)
    assert first["split"].tolist() == again["split"].tolist()
    assert first["split"].tolist() != other["split"].tolist()
    assert (first["split"] == "test").sum() == 200


def test_a_single_row_cannot_be_split() -> None:
    with pytest.raises(TlrlError, match="at least 2 rows"):
        with_split(pd.DataFrame({"formula": ["NaCl"], "target": [1.0]}))


def test_cv_folds_give_81_9_10(jarvis: pd.DataFrame) -> None:
    n = len(jarvis)
    n_train = int((jarvis["split"] == "train").sum())
    folds = cv_folds(n_train, n_folds=10, seed=0)
    assert len(folds) == 10
    vals = [val for _, val in folds]
    assert np.array_equal(np.sort(np.concatenate(vals)), np.arange(n_train))  # disjoint and covering
    for train, val in folds:
        assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == n_train
        assert abs(len(train) / n - 0.81) < 0.002
        assert abs(len(val) / n - 0.09) < 0.002
    assert abs((n - n_train) / n - 0.10) < 0.002
    assert not np.array_equal(vals[0], np.arange(len(vals[0])))  # shuffled


def test_cv_folds_are_seeded() -> None:
    same = zip(cv_folds(500, seed=7), cv_folds(500, seed=7), strict=True)
    assert all(np.array_equal(v1, v2) for (_, v1), (_, v2) in same)
    assert not np.array_equal(cv_folds(500, seed=7)[0][1], cv_folds(500, seed=8)[0][1])


def test_cv_folds_need_enough_rows() -> None:
    with pytest.raises(TlrlError, match="at least 10 training rows, got 6"):
        cv_folds(6, n_folds=10)


# --- outliers and leakage ------------------------------------------------------------------------


def test_filter_outliers_on_the_full_oqmd(data_dir: Path) -> None:
    raw = pd.read_csv(data_dir / "oqmd_formation_enthalpy.csv.gz")
    assert raw["target"].min() < -198 and raw["target"].max() > 43  # the documented absurd values
    n_beyond = int(((raw["target"] < -5) | (raw["target"] > 5)).sum())
    kept, n_removed = filter_outliers(raw)
    assert n_removed == n_beyond
    assert len(kept) == len(raw) - n_removed == 341_614
    assert -5 <= kept["target"].min() and kept["target"].max() <= 5
    assert kept.index.equals(pd.RangeIndex(len(kept)))


def test_filter_outliers_keeps_the_limit_itself() -> None:
    df = pd.DataFrame({"formula": list("ABCDE"), "target": [-5.0, 5.0, 5.001, -7.0, 0.3]})
    kept, n_removed = filter_outliers(df)
    assert kept["formula"].tolist() == ["A", "B", "E"] and n_removed == 2
    assert filter_outliers(df, limit=6.0)[1] == 1


def test_leakage_report_on_jarvis(jarvis: pd.DataFrame) -> None:
    report = leakage_report(jarvis)
    assert report["n_shared_compositions"] == 220
    assert report["n_test_rows_shared"] >= 220
    assert len(report["examples"]) == 10


def test_leakage_report_matches_reduced_formulas() -> None:
    df = pd.DataFrame(
        {"formula": ["NaCl", "Fe2O3", "Cl2Na2", "MgO", "Fe4O6"], "split": ["train", "train", "test", "test", "test"]}
    )
    report = leakage_report(df)
    assert report["examples"] == ["Fe2O3", "NaCl"]
    assert (report["n_shared_compositions"], report["n_test_rows_shared"]) == (2, 2)
    assert (report["n_train_compositions"], report["n_test_compositions"]) == (2, 3)


# --- the latest JARVIS through jarvis-tools (records; nothing downloads) ---------------------------


def test_dft_3d_records_to_frame_drops_na() -> None:
    records = _records("jarvis_dft_3d_records.json")
    df = records_to_frame(records, "formation_energy_peratom")
    assert df.to_dict("list") == {
        "formula": ["Si", "NaCl", "GaAs", "Lu(MnGe)6"],
        "target": [0.0, -1.921, -0.37, -0.25477],
    }
    gaps = records_to_frame(records, "optb88vdw_bandgap")
    assert gaps["formula"].tolist() == ["Si", "NaCl", "Al2O3", "Lu(MnGe)6"]
    assert records_to_frame(records, "bulk_modulus_kv")["target"].tolist() == [87.3, 232.1, 61.0]


def test_oqmd_records_to_frame_takes_the_formula_from_the_atoms() -> None:
    df = records_to_frame(_records("oqmd_3d_records.json"), "_oqmd_delta_e")
    assert df["target"].tolist() == [-1.834, -1.696, -0.5]
    expected = ["Na2Cl2", "Fe2O3", "MgAl2O4"]
    assert [Composition(f) for f in df["formula"]] == [Composition(f) for f in expected]


def test_latest_jarvis_download_failure_is_one_error(monkeypatch, tmp_path: Path, offline: Path) -> None:
    import jarvis.db.figshare

    def unreachable(dataset: str, store_dir: str | None = None):
        raise ConnectionError("figshare.com is unreachable")

    monkeypatch.setattr(jarvis.db.figshare, "data", unreachable)
    monkeypatch.setenv("TLRL_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(TlrlError) as info:
        load_dataset("jarvis_latest_formation_energy", data_dir=tmp_path / "arg")
    message = str(info.value)
    assert "download of jarvis-tools 'dft_3d' failed: ConnectionError: figshare.com is unreachable" in message
    assert str(offline / "jarvis_latest_formation_energy.csv.gz") in message
    assert not (offline / "jarvis_latest_formation_energy.csv.gz").exists()


def test_online_success_converts_caches_and_is_found_again(monkeypatch, tmp_path: Path, offline: Path) -> None:
    import jarvis.db.figshare

    calls = []

    def fake_data(dataset: str, store_dir: str | None = None) -> list[dict]:
        calls.append((dataset, store_dir))
        return _records("oqmd_3d_records.json")

    monkeypatch.setattr(jarvis.db.figshare, "data", fake_data)
    monkeypatch.setenv("TLRL_DATA_DIR", str(tmp_path / "empty"))
    first = load_dataset("jarvis_latest_oqmd_formation_enthalpy", seed=0)
    assert calls == [("oqmd_3d_no_cfid", str(offline / "jarvis"))]
    assert first["target"].tolist() == [-1.834, -1.696, -0.5]
    cached = offline / "jarvis_latest_oqmd_formation_enthalpy.csv.gz"
    assert cached.is_file() and cached.read_bytes()[:2] == b"\x1f\x8b"

    def no_second_download(*args, **kwargs):
        raise AssertionError("downloaded again although cached")

    monkeypatch.setattr(jarvis.db.figshare, "data", no_second_download)
    pd.testing.assert_frame_equal(load_dataset("jarvis_latest_oqmd_formation_enthalpy", seed=0), first)

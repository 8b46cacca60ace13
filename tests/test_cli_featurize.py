"""``tlrl featurize``: the good paths, and bad inputs as one error line with exit code 2."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tlrl.cli import main
from tlrl.featurize import ELEMNET_ELEMENTS, element_fractions, pa_featurizer

GOOD = "formula,target\nNaCl,-2.1\nLu(MnGe)6,-0.25\nFe2O3,-1.7\n"
BAD_INPUTS = {
    "missing-file": None,
    "no-formula-column": "composition,target\nNaCl,1.0\n",
    "empty-0-bytes": "",
    "header-only": "formula,target\n",
    "nan-target": "formula,target\nNaCl,1.0\nMgO,nan\n",
    "empty-target": "formula,target\nNaCl,1.0\nMgO,\n",
    "inf-target": "formula,target\nNaCl,inf\nMgO,1.0\n",
    "unparseable-with-raise": "formula,target\nNaCl,1.0\nNa$Cl,2.0\n123,3.0\n",
    "outside-86-with-raise": "formula,target\nNaCl,1.0\nHeH,2.0\n",
    "no-usable-formula": "formula,target\nxyz,1.0\nHeH,2.0\n",
}


def _input(tmp_path: Path, content: str | None) -> Path:
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_text(content)
    return path


def _argv(path: Path, out: Path, case: str = "") -> list[str]:
    argv = ["featurize", str(path), "--kind", "ef", "-o", str(out)]
    return argv + (["--errors", "raise"] if case.endswith("with-raise") else [])


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_error_line(tmp_path: Path, capsys, case: str) -> None:
    out = tmp_path / "out" / "features.parquet"
    code = main(_argv(_input(tmp_path, BAD_INPUTS[case]), out, case))
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("tlrl featurize: error: ")
    assert "Traceback" not in err
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary file left


@pytest.mark.parametrize("case", ["missing-file", "unparseable-with-raise", "nan-target"])
def test_bad_input_in_a_real_process(tmp_path: Path, case: str) -> None:
    out = tmp_path / "features.parquet"
    argv = _argv(_input(tmp_path, BAD_INPUTS[case]), out, case)
    proc = subprocess.run([sys.executable, "-m", "tlrl.cli", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("tlrl featurize: error: ")
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_error_line_names_the_problem(tmp_path: Path, capsys) -> None:
    main(_argv(_input(tmp_path, BAD_INPUTS["unparseable-with-raise"]), tmp_path / "o.parquet", "with-raise"))
    err = capsys.readouterr().err
    assert "2 of 3 rows" in err and "'Na$Cl'" in err and "'123'" in err
    main(_argv(_input(tmp_path, BAD_INPUTS["no-formula-column"]), tmp_path / "o.parquet"))
    assert "lacks column(s) ['formula']" in capsys.readouterr().err


def test_output_that_is_a_directory(tmp_path: Path, capsys) -> None:
    code = main(_argv(_input(tmp_path, GOOD), tmp_path))
    assert code == 2
    assert capsys.readouterr().err.startswith(f"tlrl featurize: error: cannot write {tmp_path}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_ef_good_path(tmp_path: Path, capsys) -> None:
    out = tmp_path / "deep" / "ef.parquet"
    assert main(_argv(_input(tmp_path, GOOD), out)) == 0
    table = pd.read_parquet(out)
    assert list(table.columns) == ["formula", "target", *ELEMNET_ELEMENTS]
    assert table["formula"].tolist() == ["NaCl", "Lu(MnGe)6", "Fe2O3"]
    assert table["target"].tolist() == [-2.1, -0.25, -1.7]
    np.testing.assert_array_equal(table[list(ELEMNET_ELEMENTS)].to_numpy(), element_fractions(table["formula"])[0])
    assert f"wrote 3 rows x 86 EF features to {out}" in capsys.readouterr().out


def test_ef_good_path_with_custom_columns_gzip_and_a_dropped_row(tmp_path: Path, jarvis_slice: pd.DataFrame) -> None:
    src = jarvis_slice.head(30).rename(columns={"formula": "comp", "target": "dHf"})
    src.loc[7, "comp"] = "HeH"
    path = tmp_path / "in.csv.gz"
    with gzip.open(path, "wt") as fh:
        src.to_csv(fh, index=False)
    out = tmp_path / "ef.parquet"
    with pytest.warns(UserWarning, match="1 of 30 rows"):
        code = main(
            ["featurize", str(path), "--kind", "ef", "-o", str(out), "--formula-col", "comp", "--target-col", "dHf"]
        )
    assert code == 0
    table = pd.read_parquet(out)
    assert len(table) == 29 and "HeH" not in set(table["formula"])
    assert table["target"].tolist() == src["dHf"].drop(index=7).tolist()


def test_pa_good_path(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("formula\nNaCl\nLu(MnGe)6\n")  # no target: prediction inputs
    out = tmp_path / "pa.parquet"
    assert main(["featurize", str(path), "--kind", "pa", "-o", str(out)]) == 0
    table = pd.read_parquet(out)
    assert list(table.columns) == ["formula", *pa_featurizer().feature_labels()]
    assert table.shape == (2, 146)

"""The CLI as people use it: a fast start, the data and show subcommands, shipped-model names, --device."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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

"""The source model shipped with tlrl: NN-17 trained on OQMD formation enthalpy (EF)."""

from __future__ import annotations

from pathlib import Path

from tlrl import checkpoint
from tlrl.model import NN17

SOURCE_DIR = Path(__file__).parent / "oqmd_nn17_ef"


def source_model() -> tuple[NN17, dict]:
    """The shipped OQMD source model and its card (settings, history, OQMD test MAE)."""
    return checkpoint.load(SOURCE_DIR)

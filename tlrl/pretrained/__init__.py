"""The source model shipped with tlrl: NN-17 trained on OQMD formation enthalpy (EF)."""

from __future__ import annotations

from tlrl import checkpoint
from tlrl.catalog import SHIPPED_MODELS
from tlrl.model import NN17

SOURCE_DIR = SHIPPED_MODELS["oqmd"]


def source_model() -> tuple[NN17, dict]:
    """The shipped OQMD source model and its card (settings, history, OQMD test MAE)."""
    return checkpoint.load(SOURCE_DIR)

"""Checkpoints: safetensors weights plus a JSON model card. Loading runs no pickle."""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tlrl.errors import TlrlError
from tlrl.featurize import ELEMNET_ELEMENTS
from tlrl.io import atomic_write, write_json
from tlrl.model import HIDDEN_WIDTHS, N_HIDDEN, NN17

WEIGHTS = "model.safetensors"
CARD = "card.json"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a result."""
    import numpy
    import pandas
    import sklearn

    import tlrl

    return {
        "tlrl": tlrl.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }


def save(model: NN17, model_dir: str | Path, card: dict) -> Path:
    """Write ``model.safetensors`` and ``card.json`` (architecture, inputs, history, metrics…)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    full_card = {
        "architecture": "NN-17 (ElemNet)",
        "hidden_widths": list(HIDDEN_WIDTHS),
        "n_inputs": model.n_inputs,
        "dropout": model.dropout,
        "elements": list(ELEMNET_ELEMENTS),
        "library_versions": library_versions(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **card,
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(model_dir / WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    write_json(model_dir / CARD, full_card)
    return model_dir


def card_problem(card: object) -> str | None:
    """What makes a model card unusable (the schema ``load`` and ``predict`` rely on), or None."""
    if not isinstance(card, dict):
        return "it is not a JSON object"
    n = card.get("n_inputs")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return f"'n_inputs' must be a positive integer, got {n!r}"
    if "input" not in card:
        return None  # a bare model; predict needs it (``predict`` says so)
    spec = card["input"]
    if not isinstance(spec, dict):
        return f"'input' must be an object with a 'kind', got {spec!r}"
    kind = spec.get("kind")
    if kind not in ("ef", "pa", "representation"):
        return f"'input.kind' must be 'ef', 'pa' or 'representation', got {kind!r}"
    if kind == "representation":
        layer = spec.get("layer")
        if not isinstance(spec.get("source"), str):
            return f"'input.source' must be a source model reference, got {spec.get('source')!r}"
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= N_HIDDEN:
            return f"'input.layer' must be an integer from 1 to {N_HIDDEN}, got {layer!r}"
        if spec.get("activation") not in ("relu", "dense"):
            return f"'input.activation' must be 'relu' or 'dense', got {spec.get('activation')!r}"
    return None


def load(model_dir: str | Path) -> tuple[NN17, dict]:
    """The model and its card; a missing, corrupt or non-finite checkpoint, or a card off the schema
    (``card_problem``), is a ``TlrlError``."""
    model_dir = Path(model_dir)
    card_path, weights_path = model_dir / CARD, model_dir / WEIGHTS
    if not card_path.is_file() or not weights_path.is_file():
        raise TlrlError(f"{model_dir} is not a tlrl checkpoint (needs {CARD} and {WEIGHTS})")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        raise TlrlError(f"checkpoint {model_dir} is corrupt: {CARD} is unreadable ({exc.__class__.__name__})") from None
    problem = card_problem(card)
    if problem:
        raise TlrlError(f"checkpoint {model_dir} is corrupt: its {CARD} does not fit the schema ({problem})")
    try:
        state = load_file(str(weights_path))
        model = NN17(card["n_inputs"], dropout=bool(card.get("dropout", False)))
        model.load_state_dict(state)
    except Exception as exc:  # safetensors and torch each raise their own types
        detail = " ".join(str(exc).split())  # torch's state-dict message spans lines
        raise TlrlError(f"checkpoint {model_dir} is corrupt: {exc.__class__.__name__}: {detail}") from None
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise TlrlError(f"checkpoint {model_dir} has weights that are NaN or infinite; it cannot predict")
    model.eval()
    return model, card

"""The source model as a feature extractor: layer-k activations for RL and TL+RL."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlrl import checkpoint
from tlrl.catalog import model_dir
from tlrl.errors import TlrlError
from tlrl.featurize import ELEMNET_ELEMENTS
from tlrl.io import atomic_write
from tlrl.model import NN17, ActivationKind, activations
from tlrl.pretrained import SOURCE_DIR

SHIPPED = "shipped:oqmd_nn17_ef"


@dataclass
class Source:
    """A loaded source model, how to find it again, and a digest of its weights."""

    model: NN17
    card: dict
    ref: str  # SHIPPED or an absolute checkpoint path
    digest: str


def load_source(source: str | Path | None = None) -> Source:
    """The shipped source model (``None``, ``SHIPPED`` or ``"oqmd"``) or a checkpoint trained on EF."""
    if source is not None and not isinstance(source, (str, os.PathLike)):
        raise TlrlError(f"source must be a checkpoint folder (a str or pathlib.Path) or None, got {source!r}")
    shipped = source in (None, SHIPPED, "oqmd")
    path = SOURCE_DIR if shipped else model_dir(source)
    if not path.exists():
        raise TlrlError(f"source model {path} does not exist")
    model, card = checkpoint.load(path)
    if card.get("input", {}).get("kind") != "ef" or model.n_inputs != len(ELEMNET_ELEMENTS):
        raise TlrlError(
            f"source {path} takes {card.get('input', {}).get('kind')!r} inputs of width {model.n_inputs}; "
            f"a source model must take EF ({len(ELEMNET_ELEMENTS)} element fractions)"
        )
    digest = hashlib.sha256((path / checkpoint.WEIGHTS).read_bytes()).hexdigest()[:16]
    return Source(model, card, SHIPPED if shipped else str(path.resolve()), digest)


def representation(
    source: Source,
    X_ef: np.ndarray,
    layer: int,
    kind: ActivationKind,
    cache_dir: str | Path | None = None,
) -> np.ndarray:
    """Layer-``layer`` activations of the source for EF inputs, cached as .npy when asked."""
    if cache_dir is None:
        return activations(source.model, X_ef, layer, kind)
    rows = hashlib.sha256(np.ascontiguousarray(X_ef).tobytes()).hexdigest()[:16]
    path = Path(cache_dir) / f"act-{source.digest}-{rows}-L{layer}-{kind}.npy"
    if path.exists():
        try:
            cached = np.load(path)
            if cached.shape[0] == len(X_ef):
                return cached
        except (OSError, ValueError, EOFError):  # a truncated or foreign file
            pass
        warnings.warn(f"the activation cache file {path} is corrupt; recomputing it", stacklevel=2)
    out = activations(source.model, X_ef, layer, kind)
    with atomic_write(path) as tmp:
        np.save(tmp, out)
    return out


def __getattr__(name: str):
    """``SourceActivations``, the matminer featurizer, imported (with matminer) only when asked for."""
    if name == "SourceActivations":
        from tlrl.featurizers import SourceActivations

        return SourceActivations
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""tlrl's inputs as matminer featurizers: ElemNet's element fractions (EF) and the source model's layer
activations (the RL representation). Import them as ``tlrl.featurize.ElementFraction`` and
``tlrl.representation.SourceActivations``; this module imports matminer, the others load it only here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matminer.featurizers.base import BaseFeaturizer

from tlrl.catalog import HIDDEN_WIDTHS, N_HIDDEN
from tlrl.featurize import ELEMNET_ELEMENTS, parse_formulas

ELEMNET = ("@article{jha_elemnet_2018, author = {Jha, Dipendra and Ward, Logan and Paul, Arindam and Liao, "
           "Wei-keng and Choudhary, Alok and Wolverton, Chris and Agrawal, Ankit}, title = {{ElemNet}: Deep "
           "Learning the Chemistry of Materials From Only Elemental Composition}, journal = {Scientific Reports}, "
           "volume = {8}, pages = {17593}, year = {2018}, doi = {10.1038/s41598-018-35934-y}}")
TLRL = ("@misc{gupta_tlrl, author = {Gupta, Vishu and Liao, Wei-keng and Choudhary, Alok and Agrawal, Ankit}, "
        "title = {Combining Transfer Learning and Representation Learning to Improve Predictive Analytics on Small "
        "Materials Data}, howpublished = {IEEE Xplore document 10903497}, "
        "url = {https://ieeexplore.ieee.org/document/10903497}}")


def _ef_row(comp) -> np.ndarray:
    """The 86 element fractions of a Composition (or formula); ``ValueError`` naming why it is unusable."""
    X, problems = parse_formulas([str(comp)])
    if problems[0]:
        raise ValueError(f"{comp}: {problems[0]}")
    return X[0]


class ElementFraction(BaseFeaturizer):
    """The 86 element fractions of a composition in ElemNet's order: ``tlrl featurize --kind ef``."""

    def featurize(self, comp) -> list[float]:
        return _ef_row(comp).tolist()

    def feature_labels(self) -> list[str]:
        return list(ELEMNET_ELEMENTS)

    def citations(self) -> list[str]:
        return [ELEMNET]

    def implementors(self) -> list[str]:
        return ["tlrl"]


class SourceActivations(BaseFeaturizer):
    """Layer ``layer`` (1..16) activations of the source model for a composition's EF: the RL representation.

    ``kind``: ``"relu"`` (after the activation) or ``"dense"`` (before it); ``source``: a checkpoint folder,
    default ``oqmd`` (the model shipped with tlrl).
    """

    def __init__(self, layer: int, kind: str = "relu", source: str | Path | None = None) -> None:
        if not 1 <= layer <= N_HIDDEN or kind not in ("relu", "dense"):
            raise ValueError(f"layer must be in 1..{N_HIDDEN} and kind 'relu' or 'dense', got {layer}, {kind!r}")
        self.layer, self.kind, self.source = layer, kind, source
        self._loaded = None

    def _source(self):
        from tlrl.representation import load_source

        if self._loaded is None:
            self._loaded = load_source(self.source)
        return self._loaded

    def featurize(self, comp) -> list[float]:
        from tlrl.representation import representation

        return representation(self._source(), _ef_row(comp)[None], self.layer, self.kind)[0].tolist()

    def feature_labels(self) -> list[str]:
        return [f"source L{self.layer} {self.kind} {i}" for i in range(HIDDEN_WIDTHS[self.layer - 1])]

    def citations(self) -> list[str]:
        return [TLRL, ELEMNET]

    def implementors(self) -> list[str]:
        return ["tlrl"]

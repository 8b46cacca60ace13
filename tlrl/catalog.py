"""The names tlrl answers to, importable without torch (the CLI's start-up): NN-17's layer widths,
the configurations of the paper's Table I, the profiles and the shipped source model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

HIDDEN_WIDTHS: tuple[int, ...] = (1024,) * 4 + (512,) * 3 + (256,) * 3 + (128,) * 3 + (64,) * 2 + (32,)
N_HIDDEN = len(HIDDEN_WIDTHS)  # 16
PROFILE_NAMES: tuple[str, ...] = ("smoke", "quick", "full")  # the keys of tlrl.profiles.PROFILES
# Names that stand for a model folder wherever one is taken (--source, predict's MODEL_DIR).
SHIPPED_MODELS: dict[str, Path] = {"oqmd": Path(__file__).parent / "pretrained" / "oqmd_nn17_ef"}


def model_dir(name_or_path: str | Path) -> Path:
    """The folder of a model: a shipped model's name (``oqmd``) or a path."""
    return SHIPPED_MODELS.get(str(name_or_path), Path(name_or_path))


@dataclass(frozen=True)
class Method:
    """One row of the paper's Table I."""

    paper_name: str
    category: Literal["SC", "TL", "RL", "TL+RL", "peer"]
    inputs: Literal["ef", "pa", "representation"]
    init: Literal["scratch", "source", "source_but_first"] = "scratch"
    learner: Literal["nn17", "automl", "hgb"] = "nn17"
    activation: Literal["relu", "dense"] = "relu"
    fixed_layer: int | None = None  # RL:Freezing always uses the last hidden layer
    freezes: bool = False

    @property
    def searches_layer(self) -> bool:
        """Whether the configuration has a layer (or a number of frozen layers) to choose."""
        return (self.inputs == "representation" and self.fixed_layer is None) or self.freezes

    @property
    def uses_source(self) -> bool:
        """Whether the configuration needs the source model (its weights or its activations)."""
        return self.init != "scratch" or self.inputs == "representation"


METHODS: dict[str, Method] = {
    "sc-ml-ef": Method("SC:ML(EF)", "SC", "ef", learner="automl"),
    "sc-ml-pa": Method("SC:ML(PA)", "SC", "pa", learner="automl"),
    "sc-dl-ef": Method("SC:DL(EF)", "SC", "ef"),
    "sc-dl-pa": Method("SC:DL(PA)", "SC", "pa"),
    "tl-finetune": Method("TL:Fine-Tune", "TL", "ef", init="source"),
    "tl-freeze": Method("TL:Freeze(k)+Fine-Tune", "TL", "ef", init="source", freezes=True),
    "rl-freezing": Method("RL:Freezing", "RL", "representation", fixed_layer=N_HIDDEN),
    "rl-dl-relu": Method("RL:DL(ReLU)", "RL", "representation", activation="relu"),
    "rl-dl-dense": Method("RL:DL(Dense)", "RL", "representation", activation="dense"),
    "tlrl-dl-relu": Method("TL+RL:DL(ReLU)", "TL+RL", "representation", init="source_but_first", activation="relu"),
    "tlrl-dl-dense": Method("TL+RL:DL(Dense)", "TL+RL", "representation", init="source_but_first", activation="dense"),
    # not in the paper: what a practitioner would try first (PA + gradient boosting with an MAE loss)
    "peer-hgb-pa": Method("Peer: PA + HistGB", "peer", "pa", learner="hgb"),
}

"""``TransferRegressor``: one configuration of the paper as a scikit-learn regressor on formulas."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from tlrl.catalog import METHODS
from tlrl.errors import TlrlError
from tlrl.featurize import formulas_of


class TransferRegressor(RegressorMixin, BaseEstimator):
    """A Table I configuration (NN-17 methods) with ``fit(formulas, y)`` and ``predict(formulas)``.

    Formulas are strings, pymatgen ``Composition`` objects or a frame with a ``formula`` or
    ``composition`` column. ``fit`` runs what ``tlrl fit`` runs on the rows: a seeded 90:10 split,
    K-fold CV on the 90 (the profile sets K and, where ``layer`` is None, searches the layer), and
    keeps the run folder; ``predict`` averages its fold models, as ``tlrl predict`` does.
    ``save(folder)`` writes that run folder, ``TransferRegressor.load(folder)`` reads one back,
    also one written by ``tlrl fit``.
    """

    def __init__(self, method: str = "tl-finetune", profile: str = "quick", layer: int | None = None,
                 source: str | Path | None = None, device: str | None = None, seed: int = 0) -> None:
        self.method = method
        self.profile = profile
        self.layer = layer
        self.source = source
        self.device = device
        self.seed = seed

    def fit(self, X, y) -> TransferRegressor:
        from tlrl.data import with_split
        from tlrl.methods import run
        from tlrl.profiles import get_profile

        if METHODS.get(self.method) is None or METHODS[self.method].learner != "nn17":
            nn17 = [slug for slug, m in METHODS.items() if m.learner == "nn17"]
            raise TlrlError(f"TransferRegressor runs the NN-17 methods ({', '.join(nn17)}), not {self.method!r}")
        formulas, y = formulas_of(X), np.asarray(y, dtype=np.float64).ravel()
        if len(formulas) != len(y):
            raise TlrlError(f"{len(formulas)} formulas but {len(y)} targets")
        profile = get_profile(self.profile, **({"train__device": self.device} if self.device else {}))
        self._folder = tempfile.TemporaryDirectory(prefix="tlrl-run-")  # removed with the estimator
        self.run_dir_ = Path(self._folder.name) / "run"
        data = with_split(pd.DataFrame({"formula": formulas, "target": y}), self.seed)
        data.attrs["name"] = "TransferRegressor.fit"
        uses_source = METHODS[self.method].uses_source
        self.metrics_ = run(self.method, data, source=self.source if uses_source else None, layer=self.layer,
                            profile=profile, seed=self.seed, out_dir=self.run_dir_)
        self.layer_ = self.metrics_["best_layer"]
        return self

    def predict(self, X) -> np.ndarray:
        from tlrl.predict import predict

        check_is_fitted(self, "run_dir_")
        return predict(self.run_dir_, formulas_of(X), errors="raise")["prediction"].to_numpy()

    def save(self, folder: str | Path) -> Path:
        """Write the run folder (``metrics.json`` and one checkpoint per fold) to ``folder``, a new path."""
        check_is_fitted(self, "run_dir_")
        return Path(shutil.copytree(self.run_dir_, folder))

    @classmethod
    def load(cls, folder: str | Path) -> TransferRegressor:
        """The fitted estimator of a run folder (``save`` or ``tlrl fit``)."""
        folder = Path(folder)
        if not (folder / "metrics.json").is_file() or not any(folder.glob("fold_*/card.json")):
            raise TlrlError(f"{folder} is not a run folder with fold models (metrics.json, fold_*/card.json)")
        metrics = json.loads((folder / "metrics.json").read_text())
        source = metrics["source"] if metrics["source"] and not metrics["source"].startswith("shipped:") else None
        estimator = cls(method=metrics["method"], profile=metrics["profile"], layer=metrics["best_layer"],
                        source=source, seed=metrics["seed"])
        estimator.run_dir_, estimator.metrics_, estimator.layer_ = folder, metrics, metrics["best_layer"]
        return estimator

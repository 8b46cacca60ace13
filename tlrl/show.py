"""What a results folder holds (``tlrl show``): a ``tlrl fit`` run folder or a ``tlrl benchmark`` folder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tlrl.errors import TlrlError


def _models(run: Path) -> list[str]:
    """The fold checkpoints kept in a run folder (what ``tlrl predict`` ensembles)."""
    return [card.parent.name for card in sorted(run.glob("fold_*/card.json"))]


def _layer(value) -> str:
    return "-" if value is None or pd.isna(value) else str(int(value))


def describe(folder: str | Path) -> str:
    """A few lines on a run folder (``metrics.json``) or a benchmark folder (``results.csv``)."""
    folder = Path(folder)
    if (folder / "metrics.json").is_file():
        m = json.loads((folder / "metrics.json").read_text())
        models = _models(folder)
        return "\n".join([
            f"run {folder}: {m['paper_name']} ({m['method']}) on {m['dataset']}, profile {m['profile']}, "
            f"seed {m['seed']}",
            f"CV MAE {m['cv_mae_mean']:.4f} ± {m['cv_mae_std']:.4f} ({m['n_folds']} folds), test MAE "
            f"{m['test_mae']:.4f} (best fold {m['best_fold']}), ensemble {m['test_mae_ensemble']:.4f}",
            f"layer: {_layer(m.get('best_layer'))}",
            f"models kept: {', '.join(models) if models else 'none'}",
        ])
    if (folder / "results.csv").is_file():
        results = pd.read_csv(folder / "results.csv")
        provenance = folder / "provenance.json"
        p = json.loads(provenance.read_text()) if provenance.is_file() else {}
        head = (f"benchmark {folder}: {p.get('dataset', {}).get('name', '?')}, profile "
                f"{p.get('profile', {}).get('name', '?')}, seed {p.get('seed', '?')}, {len(results)} configurations")
        table = pd.DataFrame({
            "method": results["method"],
            "cv_mae": [f"{a:.4f} ± {b:.4f}" for a, b in zip(results["cv_mae_mean"], results["cv_mae_std"])],
            "test_mae": results["test_mae"].map("{:.4f}".format),
            "layer": results["best_layer"].map(_layer),
            "models_kept": [len(_models(folder / "runs" / m)) for m in results["method"]],
        })
        return head + "\n" + table.to_string(index=False)
    raise TlrlError(f"{folder} holds neither metrics.json (a 'tlrl fit' run) nor results.csv (a 'tlrl benchmark')")

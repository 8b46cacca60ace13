"""Optional dependencies: which pip extra brings which modules, and one clear error when one is missing."""

from __future__ import annotations

import importlib

from tlrl.errors import TlrlError

EXTRAS: dict[str, tuple[str, ...]] = {
    "automl": ("hyperopt", "hpsklearn"),  # the SC:ML methods' AutoML search
    "cluster": ("distributed",),  # --cluster: the benchmark and the curve as Dask tasks
    "online": ("jarvis",),  # jarvis-tools: the latest JARVIS datasets
}


def require(extra: str, feature: str) -> None:
    """Raise a ``TlrlError`` naming the pip command when the modules of ``extra`` do not import."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:  # absent, or broken by a missing dependency of its own
            missing.append(module)
    if missing:
        raise TlrlError(f"{feature} needs `pip install 'tlrl[{extra}]'` (missing: {', '.join(missing)})")


def require_for(methods: list[str]) -> None:
    """``require`` every extra that these methods (Table I slugs) need, before any work starts."""
    from tlrl.catalog import METHODS

    automl = [slug for slug, m in METHODS.items() if m.learner == "automl"]
    if set(methods) & set(automl):
        require("automl", f"AutoML ({', '.join(automl)})")

"""tlrl: transfer learning and representation learning for small materials data."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``tlrl.TransferRegressor``, imported (with torch and scikit-learn) only when asked for."""
    if name == "TransferRegressor":
        from tlrl.estimator import TransferRegressor

        return TransferRegressor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The one rule by which the book calls one configuration lower or higher than another.

Two configurations are compared on the same units (CV folds, seeds, or both): the per-unit
differences a − b have a mean and a standard error (SE = std / √n, with n − 1 in the std).
A mean more than ``THRESHOLD_SE`` standard errors from zero reads "lower" or "higher" *under
this protocol*; anything inside reads "not distinguishable". With few pairs the SE itself is
uncertain (at n = 5 a 2-SE mean is a t of 2 on 4 degrees of freedom, p ≈ 0.12), and CV folds
share most of their training rows, so their differences are correlated and the SE is optimistic.
The rule is a reading aid, not a significance test; it never says "confirmed" or "refuted".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

THRESHOLD_SE = 2.0
FEW_PAIRS = 10  # below this, a verdict outside the threshold is worded as tied to this protocol


@dataclass(frozen=True)
class Paired:
    """a − b over n paired units: the differences, their mean, std, SE and the verdict."""

    a: str
    b: str
    diffs: list[float]
    mean: float
    std: float
    standard_error: float
    n: int
    verdict: str  # "lower", "higher" or "not distinguishable" (a relative to b)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def reading(self) -> str:
        """The verdict as the book prints it: "higher under this protocol" with fewer than ``FEW_PAIRS``."""
        return reading(self.verdict, self.n)

    def sentence(self, names: dict[str, str] | None = None, unit: str = "eV/atom", over: str = "pairs") -> str:
        """One line: "TL+RL − TL over 15 folds: +0.0100 ± 0.0006 (SE): higher under this protocol"."""
        names = names or {}
        a, b = names.get(self.a, self.a), names.get(self.b, self.b)
        return (f"{a} − {b} over {self.n} {over}: {self.mean:+.4f} ± {self.standard_error:.4f} {unit} "
                f"(mean ± SE): {self.reading}")


def reading(verdict: str, n: int) -> str:
    """A verdict over ``n`` pairs in the book's words (tables of ``paired.csv`` carry only the verdict and n)."""
    few = verdict != "not distinguishable" and n < FEW_PAIRS
    return f"{verdict} under this protocol" if few else verdict


def compare(a: str, b: str, values_a, values_b) -> Paired | None:
    """The paired rule on two equally long sequences of per-unit values (None with fewer than 2 pairs)."""
    va, vb = np.asarray(values_a, float), np.asarray(values_b, float)
    if va.shape != vb.shape or va.ndim != 1 or len(va) < 2:
        return None
    diffs = va - vb
    mean, std = float(diffs.mean()), float(diffs.std(ddof=1))
    se = std / math.sqrt(len(diffs))
    verdict = ("lower" if mean + THRESHOLD_SE * se < 0 else
               "higher" if mean - THRESHOLD_SE * se > 0 else "not distinguishable")
    return Paired(a, b, diffs.tolist(), mean, std, se, len(diffs), verdict)


RULE = (f"a difference a − b is read over paired units (the same CV folds, or the same seeds); it reads "
        f"\"lower\" or \"higher\" when its mean is more than {THRESHOLD_SE:g} standard errors from zero, "
        f"else \"not distinguishable\"; with fewer than {FEW_PAIRS} pairs a verdict holds under this protocol only")

"""The book's figures: training curves, layer sweeps, fold spreads and parity plots.

``show(fig, name)`` displays a figure and, when MyST-NB is installed (the book build), also
stores it under ``name`` so that a ``{glue:figure}`` directive can place it with a numbered caption.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

RUNG_MARKERS = "os^Dv"
COLUMN_INCHES = 6.1  # the book's text column at 1280 px: 672 px, at the book's 110 dpi


def fit_column(fig: plt.Figure) -> None:
    """Narrow a figure whose saved width (legends outside included) exceeds the book's column, so the page
    shows its text at the size it was set (a wider image is scaled down, and its text with it)."""
    pad = plt.rcParams["savefig.pad_inches"]
    column = COLUMN_INCHES - 2 * (pad if isinstance(pad, float | int) else 0)  # the saved PNG adds the pad
    for _ in range(3):
        fig.draw_without_rendering()  # a constrained layout is placed only when the figure is drawn
        width = fig.get_tightbbox(fig.canvas.get_renderer()).width
        if width <= column * 1.02:
            return
        w, h = fig.get_size_inches()
        fig.set_size_inches(max(w - (width - column), 3.0), h)
        if fig.get_layout_engine() is None:
            fig.tight_layout()


def show(fig: plt.Figure, name: str) -> None:
    """Display ``fig`` and glue it as ``name`` for a captioned figure in the book, at most a column wide."""
    fit_column(fig)
    try:
        from myst_nb import glue
    except ImportError:  # plain Jupyter or Colab: just show it
        plt.show()
        return
    glue(name, fig)
    plt.close(fig)


def plot_curves(fits: dict, title: str, unit: str, reference: tuple[str, float] | None = None) -> plt.Figure:
    """Validation (solid) and training (dotted) MAE per epoch for each named ``FitResult``, a column wide:
    one legend entry per fit and one per line style, inside the axes where it covers least, whole epochs."""
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 3.6))
    single = len(fits) == 1  # one fit: the title names it, the legend only tells the curves apart
    handles = []
    for name, result in fits.items():
        h = result.history
        (line,) = ax.plot(h["epoch"], h["val_mae"], marker="o", ms=3, label="validation" if single else name)
        (dotted,) = ax.plot(h["epoch"], h["train_mae"], ls=":", color=line.get_color(), label="training")
        handles += [line, dotted] if single else [line]
    if not single:
        handles += [Line2D([], [], color="0.3", marker="o", ms=3, label="validation"),
                    Line2D([], [], color="0.3", ls=":", label="training")]
    if reference:
        handles.append(ax.axhline(reference[1], color="0.4", ls="--", lw=1, label=reference[0]))
    ax.set(xlabel="epoch", ylabel=f"MAE ({unit})", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # whole epochs: 5, 10, 15…
    ax.tick_params(labelsize=10)
    ax.legend(handles=handles, fontsize=9, loc="best")
    fig.tight_layout()
    return fig


def plot_sweep(ax: plt.Axes, sweep: pd.DataFrame, slug: str, label: str, color=None, style: str = "-") -> None:
    """Validation MAE ± std against the source layer, one line per rung of the layer search."""
    rows = sweep[sweep["method"] == slug]
    for rung, part in rows.groupby("rung"):
        part = part.sort_values("layer")
        detail = "" if rows["rung"].nunique() == 1 else f", rung {rung}"
        if part["epochs"].notna().all():
            epochs, folds = int(part["epochs"].max()), int(part["folds"].max())
            detail += f" ({epochs} epoch{'s' * (epochs != 1)}, {folds} fold{'s' * (folds != 1)})"
        ax.errorbar(part["layer"], part["val_mae"], yerr=part["val_mae_std"].fillna(0), ls=style, capsize=3,
                    marker=RUNG_MARKERS[(int(rung) - 1) % len(RUNG_MARKERS)], ms=4 + int(rung),
                    color=color, alpha=min(1.0, 0.45 + 0.2 * int(rung)), label=label + detail)


def plot_chosen(ax: plt.Axes, result: pd.Series, label: str, color=None) -> None:
    """The layer a search chose, with its K-fold CV MAE ± std (a star)."""
    ax.errorbar([result["best_layer"]], [result["cv_mae_mean"]], yerr=[result["cv_mae_std"]], marker="*", ms=14,
                ls="none", capsize=3, color=color, markeredgecolor="black",
                label=f"{label}: layer {int(result['best_layer'])}, CV")


def plot_reference(ax: plt.Axes, layers, value: float, label: str, **style) -> None:
    """A configuration without a layer search, as a horizontal line across the layer axis."""
    ax.plot([min(layers), max(layers)], [value, value], label=label, lw=1.2, **style)


def plot_folds(results: pd.DataFrame, title: str, unit: str, reference: tuple[str, float] | None = None) -> plt.Figure:
    """Each configuration's per-fold validation MAE (dots) and their mean (bar), the axis zoomed to the folds;
    a ``reference`` (name, value), such as the mean predictor's MAE, is written under the title, not drawn."""
    folds = results[["paper_name", "fold_val_mae"]].explode("fold_val_mae").astype({"fold_val_mae": float})
    fig, ax = plt.subplots(figsize=(7, 0.5 * results["paper_name"].nunique() + 1.6))
    sns.stripplot(folds, x="fold_val_mae", y="paper_name", hue="paper_name", size=7, ax=ax, legend=False)
    sns.pointplot(folds, x="fold_val_mae", y="paper_name", color="black", markers="|", markersize=14,
                  linestyle="none", errorbar=None, ax=ax)
    lo, hi = folds["fold_val_mae"].min(), folds["fold_val_mae"].max()
    ax.set_xlim(lo - 0.06 * (hi - lo) - 1e-3, hi + 0.06 * (hi - lo) + 1e-3)
    if reference:
        title += f"\nfor scale, {reference[0]}: {reference[1]:.3f} {unit}"
    ax.set(xlabel=f"validation MAE per fold ({unit})", ylabel="")
    ax.set_title(title, fontsize=11)
    ax.tick_params(labelsize=10)
    ax.grid(axis="x", lw=0.4, alpha=0.6)
    fig.tight_layout()
    return fig


def parity(ax: plt.Axes, y: np.ndarray, pred: np.ndarray, title: str, target_name: str, unit: str) -> None:
    """Predicted against reference values, the diagonal, and the MAE in the title."""
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.scatter(y, pred, s=7, alpha=0.45, edgecolor="none")
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set(xlabel=f"reference {target_name} ({unit})", ylabel=f"predicted ({unit})", xlim=(lo, hi), ylim=(lo, hi),
           title=f"{title}\ntest MAE {np.mean(np.abs(pred - y)):.3f} {unit}")
    ax.set_aspect("equal")


def plot_learning_curve(summary: pd.DataFrame, labels: dict[str, str], unit: str,
                        full: dict[str, tuple[int, float]] | None = None) -> plt.Figure:
    """Test MAE against training rows on log–log axes: per method the mean over seeds with a band of ± one
    std, the reference lines dashed, and (``full``: method -> (rows, test MAE)) the benchmark's full-size
    points as open markers."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    groups = (("sc-dl-ef", "peer-hgb-pa", "tl-finetune", "tl-freeze"),
              ("rl-dl-relu", "rl-dl-dense", "tlrl-dl-relu", "tlrl-dl-dense"))
    references = {"mean": ":", "zero-shot": "--", "offset": "-."}
    palette = sns.color_palette("tab10", 10)
    colors = dict(zip([m for g in groups for m in g], [palette[i] for i in (0, 1, 2, 3, 4, 5, 6, 9)], strict=True))
    for ax, group in zip(axes, groups, strict=True):
        for slug in (*group, *references):
            part = summary[summary["method"] == slug].sort_values("size")
            if part.empty:
                continue
            style = {"ls": references[slug], "color": "0.35", "lw": 1.2} if slug in references else {
                "marker": "o", "ms": 4, "color": colors[slug]}
            ax.plot(part["size"], part["test_mae"], label=labels[slug], **style)
            if slug not in references:
                std = part["test_mae_std"].fillna(0)
                ax.fill_between(part["size"], part["test_mae"] - std, part["test_mae"] + std, alpha=0.15,
                                color=colors[slug])
            if full and slug in full:
                ax.plot(*full[slug], marker="D", mfc="none", ms=7, color=colors[slug], ls="none")
        ax.set(xscale="log", yscale="log", xlabel="training rows (a fifth of them validate)")
        ax.yaxis.set_major_formatter(plt.FormatStrFormatter("%.2f"))
        ax.yaxis.set_minor_formatter(plt.FormatStrFormatter("%.2f"))
        ax.grid(True, which="both", lw=0.4)
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(0, -0.18), ncol=2, frameon=False)
    axes[0].set_ylabel(f"test MAE ({unit})")
    fig.tight_layout()
    return fig

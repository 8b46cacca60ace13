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


def legend_below(fig: plt.Figure, extra=(), ncol: int = 2) -> None:
    """One legend for all of a figure's axes, under them, where it covers no data and leaves the axes the
    column's full width (the figure needs ``layout="constrained"``); a label already shown is not repeated,
    and ``extra`` handles (such as ``rung_handles``) come last. ``ncol`` columns, or one if they would be wider
    than the figure."""
    handles, labels = [], []
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    handles += list(extra)
    labels += [h.get_label() for h in extra]
    style = {"loc": "outside lower center", "frameon": False, "fontsize": 10, "handlelength": 2.4,
             "columnspacing": 1.5}
    legend = fig.legend(handles, labels, ncol=ncol, **style)
    if ncol > 1 and legend.get_window_extent(fig.canvas.get_renderer()).width > fig.bbox.width:
        legend.remove()  # long labels: one entry a row rather than a legend wider than the column
        fig.legend(handles, labels, ncol=1, **style)


def plot_curves(fits: dict, title: str, unit: str, reference: tuple[str, float] | None = None) -> plt.Figure:
    """Validation (solid) and training (dotted) MAE per epoch for each named ``FitResult``."""
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 3.6), layout="constrained")
    for name, result in fits.items():
        h = result.history
        (line,) = ax.plot(h["epoch"], h["val_mae"], marker="o", ms=3, label=f"{name} (validation)")
        ax.plot(h["epoch"], h["train_mae"], ls=":", color=line.get_color(), label=f"{name} (training)")
    if reference:
        ax.axhline(reference[1], color="0.4", ls="--", lw=1, label=reference[0])
    ax.set(xlabel="epoch", ylabel=f"MAE ({unit})")
    ax.set_title(title, fontsize=11)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.tick_params(labelsize=10)
    legend_below(fig)
    return fig


def _rung_detail(part: pd.DataFrame) -> str:
    """A rung's training budget, "3 epochs, 1 fold" (empty for an exhaustive CV search, which records none)."""
    if not part["epochs"].notna().all():
        return ""
    epochs, folds = int(part["epochs"].max()), int(part["folds"].max())
    return f"{epochs} epoch{'s' * (epochs != 1)}, {folds} fold{'s' * (folds != 1)}"


def _rung_style(rung) -> dict:
    return {"marker": RUNG_MARKERS[(int(rung) - 1) % len(RUNG_MARKERS)], "ms": 4 + int(rung)}


def plot_sweep(ax: plt.Axes, sweep: pd.DataFrame, slug: str, label: str, color=None, style: str = "-",
               rung_in_label: bool = True) -> None:
    """Validation MAE ± std against the source layer, one line per rung of the layer search. Without
    ``rung_in_label`` only the first rung's line carries ``label`` and ``rung_handles`` tells the rungs apart
    (a shorter legend)."""
    rows = sweep[sweep["method"] == slug]
    for i, (rung, part) in enumerate(rows.groupby("rung")):
        part = part.sort_values("layer")
        if rung_in_label:
            budget = _rung_detail(part)
            detail = "" if rows["rung"].nunique() == 1 else f", rung {rung}"
            shown = label + detail + (f" ({budget})" if budget else "")
        else:
            shown = label if i == 0 else "_nolegend_"
        ax.errorbar(part["layer"], part["val_mae"], yerr=part["val_mae_std"].fillna(0), ls=style, capsize=3,
                    color=color, alpha=min(1.0, 0.45 + 0.2 * int(rung)), label=shown, **_rung_style(rung))


def rung_handles(sweep: pd.DataFrame, slugs) -> list[Line2D]:
    """Legend entries for the rungs of the layer searches of ``slugs``: each rung's marker (grey) and budget.
    No entries for a search of one rung."""
    rows = sweep[sweep["method"].isin(list(slugs))] if len(sweep) else sweep
    if not len(rows) or rows["rung"].nunique() < 2:
        return []
    budgets = {rung: _rung_detail(part) for rung, part in rows.groupby("rung")}
    return [Line2D([], [], color="0.45", ls="none", **_rung_style(rung),
                   label=f"rung {rung}" + (f": {budget}" if budget else "")) for rung, budget in budgets.items()]


def plot_chosen(ax: plt.Axes, result: pd.Series, label: str, color=None, layer_in_label: bool = True) -> None:
    """The layer a search chose, with its K-fold CV MAE ± std (a star); without ``layer_in_label`` the legend
    says "chosen layer" (one legend for panels whose searches chose different layers)."""
    chosen = f"layer {int(result['best_layer'])}" if layer_in_label else "chosen layer"
    ax.errorbar([result["best_layer"]], [result["cv_mae_mean"]], yerr=[result["cv_mae_std"]], marker="*", ms=14,
                ls="none", capsize=3, color=color, markeredgecolor="black", label=f"{label}: {chosen}, CV")


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


def _span(*values: np.ndarray) -> tuple[float, float]:
    """The range of all ``values``, padded by 3 % on each side so that no point sits on the frame."""
    lo, hi = min(float(v.min()) for v in values), max(float(v.max()) for v in values)
    pad = 0.03 * (hi - lo)
    return lo - pad, hi + pad


def parity(ax: plt.Axes, y: np.ndarray, pred: np.ndarray, title: str, target_name: str, unit: str) -> None:
    """Predicted against reference values, the diagonal, and the MAE in the title."""
    lo, hi = _span(y, pred)
    ax.scatter(y, pred, s=7, alpha=0.45, edgecolor="none")
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set(xlabel=f"reference {target_name} ({unit})", ylabel=f"predicted ({unit})", xlim=(lo, hi), ylim=(lo, hi),
           title=f"{title}\ntest MAE {np.mean(np.abs(pred - y)):.3f} {unit}")
    ax.set_aspect("equal")


def parity_row(panels: list[tuple[str, np.ndarray, np.ndarray]], target_name: str, unit: str) -> plt.Figure:
    """``parity`` plots of (title, reference, predicted) side by side at the column's width, on shared axes
    with one pair of axis labels."""
    fig, axes = plt.subplots(1, len(panels), figsize=(COLUMN_INCHES, 2.7), sharex=True, sharey=True, squeeze=False,
                             layout="constrained")
    lo, hi = _span(*(v for _, y, pred in panels for v in (y, pred)))
    for ax, (title, y, pred) in zip(axes[0], panels, strict=True):
        parity(ax, y, pred, title, target_name, unit)
        ax.set(xlabel="", ylabel="", xlim=(lo, hi), ylim=(lo, hi))
        ax.title.set_fontsize(10)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=10)
    fig.supxlabel(f"reference {target_name} ({unit})", fontsize=11)
    fig.supylabel(f"predicted ({unit})", fontsize=11)
    return fig


def plot_learning_curve(summary: pd.DataFrame, labels: dict[str, str], unit: str,
                        full: dict[str, tuple[int, float]] | None = None) -> plt.Figure:
    """Test MAE against training rows on log–log axes: per method the mean over seeds with a band of ± one
    std, the reference lines dashed, and (``full``: method -> (rows, test MAE)) the benchmark's full-size
    points as open markers."""
    fig, axes = plt.subplots(2, 1, figsize=(COLUMN_INCHES, 10), sharex=True, sharey=True)
    groups = (("sc-dl-ef", "peer-hgb-pa", "tl-finetune", "tl-freeze"),
              ("tl-finetune", "rl-dl-relu", "rl-dl-dense", "tlrl-dl-relu", "tlrl-dl-dense"))
    references = {"mean": ":", "zero-shot": "--", "offset": "-."}
    palette = sns.color_palette("tab10", 10)
    slugs = dict.fromkeys(m for g in groups for m in g)
    colors = dict(zip(slugs, [palette[i] for i in (0, 1, 2, 3, 4, 5, 6, 9)], strict=True))
    ticks = [t for t in (0.1, 0.15, 0.2, 0.3, 0.5, 0.8) if summary["test_mae"].min() * 0.7 <= t]
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
        ax.set(xscale="log", yscale="log", ylabel=f"test MAE ({unit})")
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.yaxis.set_minor_formatter(plt.NullFormatter())
        ax.grid(True, which="both", lw=0.4)
        ax.set_xlabel("training rows (a fifth of them validate)")
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    return fig

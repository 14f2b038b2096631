"""Figures: contributor grids, counterfactual plots, byte-stable saving (PNG + PDF, fixed metadata, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gmval.images import ImageSet  # noqa: E402

# No dates or software versions inside the files: the same figure gives the same bytes.
_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "ModDate": None, "Producer": None,
                                                "Creator": None}}


def save_figure(fig: Figure, stem: str | Path, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` and ``<stem>.pdf`` with fixed metadata; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA.get(fmt), bbox_inches="tight")
        tmp.replace(path)
        out.append(path)
    return out


def _show(ax: plt.Axes, img: np.ndarray) -> None:
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(np.transpose(img, (1, 2, 0)))
    ax.set_xticks([])
    ax.set_yticks([])


def contributor_grid(topk: np.ndarray, train: ImageSet, generated: ImageSet, rows: list[int],
                     n_contributors: int = 5, contributions: np.ndarray | None = None,
                     title: str | None = None) -> Figure:
    """One row per generated image: the image, then its top contributors (paper Figs. 3, 4).

    Args:
        topk: (m, k) contributor indices, nearest first.
        train: training images.
        generated: generated images.
        rows: which generated images to show.
        n_contributors: contributors per row.
        contributions: optional (m, k) Eq. 6 contributions, written under each contributor.
        title: optional figure title.
    """
    n_contributors = min(n_contributors, topk.shape[1])
    fig, axes = plt.subplots(len(rows), n_contributors + 1, squeeze=False,
                             figsize=(1.2 * (n_contributors + 1), 1.3 * len(rows)))
    for r, j in enumerate(rows):
        _show(axes[r, 0], generated.images[j].numpy())
        axes[r, 0].set_ylabel(str(generated.ids[j]), fontsize=7)
        for c in range(n_contributors):
            i = int(topk[j, c])
            ax = axes[r, c + 1]
            _show(ax, train.images[i].numpy())
            if contributions is not None:
                ax.set_xlabel(f"{contributions[j, c]:.3f}", fontsize=7)
    axes[0, 0].set_title("generated", fontsize=8)
    for c in range(n_contributors):
        axes[0, c + 1].set_title(f"top {c + 1}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def image_rows(sets: dict[str, ImageSet], per_row: int = 10, title: str | None = None) -> Figure:
    """One row of ``per_row`` images for each named image set (sample grids of generators)."""
    fig, axes = plt.subplots(len(sets), per_row, squeeze=False, figsize=(0.9 * per_row, 1.0 * len(sets)))
    for r, (name, images) in enumerate(sets.items()):
        for c in range(per_row):
            ax = axes[r, c]
            if c < len(images):
                _show(ax, images.images[c].numpy())
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def lds_figure(table: pd.DataFrame, title: str) -> Figure:
    """Each method's LDS with its interval (columns ``method``, ``lds``, ``low``, ``high``), lowest first."""
    order = table.sort_values("lds")
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(order) + 1.2))
    y = np.arange(len(order))
    ax.errorbar(order["lds"], y, xerr=[order["lds"] - order["low"], order["high"] - order["lds"]], fmt="o", ms=4,
                capsize=3, color="C0")
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_yticks(y)
    ax.set_yticklabels(order["method"], fontsize=8)
    ax.set_xlabel("LDS (Spearman; 95% bootstrap interval over subsets and samples)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def removal_figure(removal: pd.DataFrame, title: str) -> Figure:
    """Loss change after removing each sample's top-k images, one panel per k, one column per method.

    Args:
        removal: :func:`gmval.counterfactual.retrain_without_topk`'s table (``sample``, ``k``,
            ``method``, ``delta``); every sample is a dot, the mean a bar.
        title: the figure's title.
    """
    ks = sorted(removal["k"].unique())
    methods = list(dict.fromkeys(removal["method"]))
    fig, axes = plt.subplots(1, len(ks), figsize=(2.2 + 1.1 * len(methods) * len(ks), 3.2), squeeze=False,
                             sharey=True)
    for ax, k in zip(axes[0], ks, strict=True):
        for i, method in enumerate(methods):
            delta = removal.loc[(removal["k"] == k) & (removal["method"] == method), "delta"].to_numpy()
            ax.scatter(np.full(len(delta), i), delta, s=14, color="grey" if method == "random" else "C0", zorder=3)
            ax.hlines(delta.mean(), i - 0.3, i + 0.3, color="C3", lw=2, zorder=4)
        ax.axhline(0, color="grey", lw=0.8, ls=":")
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"k = {k}", fontsize=9)
    axes[0][0].set_ylabel("loss change (removed − full)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig

"""PNG figures of a training run (matplotlib, Agg backend: no screen needed)."""
from __future__ import annotations

import os
from typing import Callable, List, Sequence

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def learning_curves(history: Sequence[dict], path: os.PathLike) -> None:
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    if any(h.get("val_loss") is not None for h in history):
        ax_loss.plot([h["epoch"] for h in history if h.get("val_loss") is not None],
                     [h["val_loss"] for h in history if h.get("val_loss") is not None], label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("TTFS cross-entropy loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], label="train")
    val = [(h["epoch"], 100 * h["val_accuracy"]) for h in history if h.get("val_accuracy") is not None]
    if val:
        ax_acc.plot(*zip(*val), label="validation")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def spike_raster(input_times: np.ndarray, layer_times: List[np.ndarray], labels: np.ndarray,
                 path: os.PathLike, time_unit: str = "tau_s", n_samples: int = 4) -> None:
    """Input, hidden and output first spikes of the first ``n_samples`` samples."""
    plt = _pyplot()
    n = min(n_samples, len(labels))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 4), squeeze=False)
    for k in range(n):
        ax = axes[0, k]
        offset = 0
        for name, times, color in [("input", input_times[k], "tab:gray")] + [
                (f"layer {i}", t[k], "tab:blue" if i < len(layer_times) - 1 else "tab:red")
                for i, t in enumerate(layer_times)]:
            idx = np.arange(len(times))
            finite = np.isfinite(times)
            ax.scatter(times[finite], idx[finite] + offset, s=4, color=color, label=name)
            offset += len(times) + 2
        out = layer_times[-1][k]
        ax.set_title(f"sample {k}: label {labels[k]}, prediction "
                     f"{int(np.argmin(out)) if np.isfinite(out).any() else 'none'}")
        ax.set_xlabel(f"time ({time_unit})")
        if k == 0:
            ax.set_ylabel("neuron (input, hidden, output stacked)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def output_time_distribution(output_times: np.ndarray, labels: np.ndarray, path: os.PathLike,
                             time_unit: str = "tau_s") -> None:
    """Per output neuron: histogram of its spike time, label samples vs the others."""
    plt = _pyplot()
    n_classes = output_times.shape[1]
    cols = min(n_classes, 5)
    rows = int(np.ceil(n_classes / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    finite = output_times[np.isfinite(output_times)]
    bins = np.linspace(finite.min(), finite.max(), 40) if finite.size else 10
    for j in range(n_classes):
        ax = axes[j // cols, j % cols]
        own = output_times[labels == j, j]
        other = output_times[labels != j, j]
        ax.hist(own[np.isfinite(own)], bins=bins, alpha=0.6, label="label = this class")
        ax.hist(other[np.isfinite(other)], bins=bins, alpha=0.6, label="other classes")
        ax.set_title(f"output neuron {j}")
        ax.set_xlabel(f"spike time ({time_unit})")
    axes[0, 0].legend(fontsize=7)
    for k in range(n_classes, rows * cols):
        axes[k // cols, k % cols].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def yinyang_map(predict_fn: Callable[[np.ndarray], np.ndarray], points: np.ndarray,
                labels: np.ndarray, path: os.PathLike, resolution: int = 60) -> None:
    """Predicted class over the unit square (inside the big circle) and the test points.

    ``predict_fn``: (N, 2) points -> (N,) predicted classes (-1 = no output spike).
    """
    plt = _pyplot()
    grid = np.linspace(0, 1, resolution)
    xx, yy = np.meshgrid(grid, grid)
    flat = np.stack([xx.ravel(), yy.ravel()], axis=1)
    inside = (flat[:, 0] - 0.5) ** 2 + (flat[:, 1] - 0.5) ** 2 <= 0.25
    prediction = np.full(len(flat), np.nan)
    prediction[inside] = predict_fn(flat[inside])
    prediction[prediction < 0] = np.nan
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(prediction.reshape(resolution, resolution), origin="lower", extent=(0, 1, 0, 1),
              cmap="viridis", vmin=0, vmax=2, alpha=0.45)
    for c, marker in zip(range(3), ("o", "s", "^")):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=6, marker=marker, label=f"class {c}")
    ax.set_title("Yin-Yang: predicted class (background) and test samples")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""The PNGs a run directory holds: confusion matrix and training curves (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402


def save_confusion_matrix(matrix: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(labels), 1.0 + 0.8 * len(labels)))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=labels).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45
    )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_training_curves(history: list[dict[str, Any]], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    if all("validation_loss" in h for h in history):
        loss_ax.plot(epochs, [h["validation_loss"] for h in history], marker="o", label="validation")
        acc_ax.plot(epochs, [h["validation_accuracy"] for h in history], marker="o", color="C1")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    loss_ax.legend()
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

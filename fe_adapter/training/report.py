"""The report folder of a run: metrics.json, config.yaml, confusion matrix and training curves as PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(confusion: Sequence[Sequence[int]], class_names: Sequence[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (rows: true class) with the counts written in each cell."""
    plt = _pyplot()
    counts = [list(row) for row in confusion]
    rates = [[value / max(1, sum(row)) for value in row] for row in counts]
    size = 1.2 + 0.55 * len(class_names)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row, values in enumerate(counts):
        for column, value in enumerate(values):
            axes.text(column, row, str(value), ha="center", va="center",
                      color="white" if rates[row][column] > 0.5 else "black", fontsize=8)
    figure.colorbar(image, ax=axes, label="recall")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_curves(history: Sequence[dict[str, Any]], path: Path) -> None:
    """Training loss and test UAR/WAR per epoch."""
    plt = _pyplot()
    epochs = [record["epoch"] for record in history]
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_axes.plot(epochs, [record["loss"] for record in history], marker="o")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("training loss")
    for key in ("uar", "war"):
        metric_axes.plot(epochs, [record[key] for record in history], marker="o", label=key.upper())
    metric_axes.set_xlabel("epoch")
    metric_axes.set_ylabel("test")
    metric_axes.set_ylim(0, 1)
    metric_axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(folder: str | Path, summary: dict[str, Any], config: dict[str, Any]) -> Path:
    """Write ``metrics.json``, ``config.yaml``, ``confusion.png`` (best epoch) and ``curves.png``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(summary, indent=2))
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    best = summary.get("best") or {}
    metrics = best.get("metrics") or summary.get("final")
    if metrics:
        title = f"epoch {best['epoch']}: " if best else ""
        plot_confusion(metrics["confusion"], metrics["class_names"], folder / "confusion.png",
                       f"{title}UAR {metrics['uar']:.1%}, WAR {metrics['war']:.1%}")
    if summary.get("history"):
        plot_curves(summary["history"], folder / "curves.png")
    return folder

"""The report folder of a run: metrics.json, config.yaml, confusion matrix and training curves as PNG, and
per-clip predictions as CSV."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from fe_adapter._json import write_json
from fe_adapter.training.evaluation import Evaluation


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
    """Training loss and test (and val, when the run had a val split) UAR/WAR per epoch."""
    figure = curves_figure(history)
    figure.savefig(path, dpi=120)
    _pyplot().close(figure)


def curves_figure(history: Sequence[dict[str, Any]]) -> Any:
    """The figure ``plot_curves`` saves: epochs on whole-number ticks."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [record["epoch"] for record in history]
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_axes.plot(epochs, [record["loss"] for record in history], marker="o")
    loss_axes.set_ylabel("training loss")
    for split, prefix, style in (("test", "", "-"), ("val", "val_", "--")):
        for key in ("uar", "war"):
            if f"{prefix}{key}" in history[0]:
                metric_axes.plot(epochs, [record[f"{prefix}{key}"] for record in history], style, marker="o",
                                 label=f"{split} {key.upper()}")
    metric_axes.set_ylim(0, 1)
    metric_axes.legend()
    for axes in (loss_axes, metric_axes):
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    return figure


def plot_run_comparison(histories: Mapping[str, Sequence[dict[str, Any]]], path: Path, title: str = "") -> None:
    """Training loss and test UAR per epoch of several runs, one line per run (e.g. a model and its baseline)."""
    plt = _pyplot()
    figure, (loss_axes, uar_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, history in histories.items():
        epochs = [record["epoch"] for record in history]
        loss_axes.plot(epochs, [record["loss"] for record in history], marker="o", label=name)
        uar_axes.plot(epochs, [record["uar"] for record in history], marker="o", label=name)
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("training loss")
    uar_axes.set_xlabel("epoch")
    uar_axes.set_ylabel("test UAR")
    uar_axes.set_ylim(0, 1)
    uar_axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_predictions(path: Path, evaluation: Evaluation, class_names: Sequence[str]) -> Path:
    """One row per clip: id, true label and class, predicted class, and the probability of every class (the
    softmax of the view-averaged logits), so that a result can be re-scored without the model."""
    probabilities = torch.softmax(evaluation.logits.double(), dim=1).tolist() if evaluation.ids else []
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label", "class", "predicted", *(f"p_{name}" for name in class_names)])
        for clip_id, label, row in zip(evaluation.ids, evaluation.labels.tolist(), probabilities, strict=True):
            predicted = max(range(len(row)), key=row.__getitem__)
            writer.writerow([clip_id, label, class_names[label], class_names[predicted], *(f"{p:.6f}" for p in row)])
    return path


def write_report(folder: str | Path, summary: dict[str, Any], config: dict[str, Any],
                 predictions: dict[str, Evaluation] | None = None) -> Path:
    """Write ``metrics.json``, ``config.yaml``, ``confusion.png`` (a training run's best epoch on the test split,
    or an evaluation's split), ``curves.png`` and one CSV per entry of ``predictions`` (file name: evaluation)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "metrics.json", summary)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    best = summary.get("best") or {}
    metrics = best.get("metrics") or summary.get("metrics")
    if metrics:
        if best:
            selection = summary.get("selection") or {"split": "test", "metric": "uar"}
            title = (f"test split, epoch {best['epoch']} (best {selection['metric'].upper()} on "
                     f"{selection['split']}): ")
        else:
            title = f"{summary.get('split', 'test')} split: "
        plot_confusion(metrics["confusion"], metrics["class_names"], folder / "confusion.png",
                       f"{title}UAR {metrics['uar']:.1%}, WAR {metrics['war']:.1%}")
    if summary.get("history"):
        plot_curves(summary["history"], folder / "curves.png")
    for name, evaluation in (predictions or {}).items():
        write_predictions(folder / name, evaluation, metrics["class_names"])
    return folder

"""Writing a video's predictions: JSON, CSV (one row per window) and a PNG timeline with face thumbnails."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fe_adapter.predict.predictor import VideoPrediction


def write_prediction(prediction: VideoPrediction, out_dir: str | Path) -> dict[str, Path]:
    """Write ``<video stem>.json``, ``.csv`` and ``.png`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / Path(prediction.path).stem
    paths = {"json": stem.with_suffix(".json"), "csv": stem.with_suffix(".csv"), "png": stem.with_suffix(".png")}
    paths["json"].write_text(json.dumps(prediction.to_dict(), indent=2))
    names = list(prediction.windows[0].probabilities)
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start_s", "end_s", "top", "faces_found", "frames", *names])
        for w in prediction.windows:
            writer.writerow([f"{w.start:.3f}", f"{w.end:.3f}", w.top, w.faces_found, w.frames,
                             *(f"{w.probabilities[n]:.5f}" for n in names)])
    plot_timeline(prediction, paths["png"])
    return paths


def plot_timeline(prediction: VideoPrediction, path: Path, max_thumbnails: int = 10) -> None:
    """Probability of each class over time (window centres), with face crops along the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = [(w.start + w.end) / 2 for w in prediction.windows]
    names = list(prediction.windows[0].probabilities)
    figure = plt.figure(figsize=(10, 5))
    curves = figure.add_axes((0.07, 0.36, 0.75, 0.56))
    for name in names:
        curves.plot(centres, [w.probabilities[name] for w in prediction.windows], marker=".", label=name)
    curves.set_xlim(0, max(prediction.duration, 1e-3))
    curves.set_ylim(0, 1)
    curves.set_ylabel("probability")
    curves.set_title(f"{Path(prediction.path).name}: {prediction.top} overall")
    curves.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    step = max(1, -(-len(prediction.thumbnails) // max_thumbnails))
    chosen = list(range(0, len(prediction.thumbnails), step))
    width = 0.75 / max(1, len(chosen))
    for slot, index in enumerate(chosen):
        axis = figure.add_axes((0.07 + slot * width, 0.04, width * 0.95, 0.24))
        axis.imshow(prediction.thumbnails[index])
        axis.set_axis_off()
        axis.set_title(f"{centres[index]:.1f}s", fontsize=7)
    figure.savefig(path, dpi=110)
    plt.close(figure)

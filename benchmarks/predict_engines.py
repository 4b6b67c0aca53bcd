"""Windows per second of prediction's two engines on this CPU: PyTorch and an exported model (ONNX, .pt2).

    python -m benchmarks.predict_engines                  # demo-size model and ViT-B; results in benchmarks/results/
    python -m benchmarks.predict_engines --models demo    # the demo-size model only (a minute)

What is timed is the engine alone (``fe_adapter.predict.engines``): a batch of windows of 0..1 pixel clips in,
class probabilities out, as ``Predictor`` calls it, after two untimed warm-up calls; the median of the timed
calls. Face finding and decoding are the same for every engine and not included (``benchmarks.predict_memory``
times whole videos). The models have random weights (time does not depend on them) and non-zero adapters.
PyTorch runs with ``impl="auto"`` (the native CPU kernel when built), in float32, with torch's thread count
(``--threads``, default all cores); onnxruntime with as many intra-op threads (``load_exported`` gives it
PyTorch's thread count).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from fe_adapter._json import write_json

ROOT = Path(__file__).resolve().parent.parent
#: name -> (timm backbone, backbone_kwargs, frames per window, adapter bottleneck, batches of windows to time)
MODELS = {
    "demo": ("vit_tiny_patch16_224", {"img_size": 40, "patch_size": 8, "depth": 4, "embed_dim": 64, "num_heads": 2,
                                      "global_pool": "avg"}, 8, 16, (1, 8)),
    "vit-b": ("vit_base_patch16_224", {}, 16, 384, (1,)),
}


def _model(name: str) -> torch.nn.Module:
    import fe_adapter
    from benchmarks.cases import with_random_adapters

    backbone, kwargs, frames, bottleneck, _ = MODELS[name]
    torch.manual_seed(0)
    model = fe_adapter.create_model(backbone, num_classes=7, num_frames=frames, bottleneck=bottleneck,
                                    backbone_kwargs=kwargs, random_backbone=True)
    return with_random_adapters(model).eval()


def _median_seconds(engine, clips: torch.Tensor, repeats: int) -> float:
    for _ in range(2):
        engine(clips)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        engine(clips)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(name: str, folder: Path, repeats: int) -> list[dict]:
    """Rows of (model, engine, windows per batch, seconds per batch, windows per second)."""
    from fe_adapter.export import export_model
    from fe_adapter.predict.engines import ExportedEngine, TorchEngine

    model = _model(name)
    engines = {"pytorch": TorchEngine(model, torch.device("cpu"))}
    for format in ("onnx", "pt2"):
        started = time.perf_counter()
        result = export_model(model, folder / f"{name}.{format}", overwrite=True)
        print(f"{name}: exported {format} in {time.perf_counter() - started:.1f} s "
              f"(largest probability difference {max(result.max_difference.values()):.1e})", flush=True)
        engines[format] = ExportedEngine(result.path)
    _, kwargs, frames, _, batches = MODELS[name]
    size = engines["pytorch"].size
    rows = []
    for batch in batches:
        clips = torch.rand(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(batch))
        for engine_name, engine in engines.items():
            seconds = _median_seconds(engine, clips, repeats)
            rows.append({"model": name, "engine": engine_name, "windows_per_batch": batch,
                         "frames_per_window": frames, "image_size": size, "seconds_per_batch": seconds,
                         "windows_per_second": batch / seconds})
            print(f"{name:6} {engine_name:8} batch {batch}: {batch / seconds:8.2f} windows/s", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | windows per call | PyTorch | ONNX Runtime | .pt2 (torch.export) |", "|---|---|---|---|---|"]
    keys = sorted({(row["model"], row["windows_per_batch"]) for row in rows}, key=lambda key: (key[0] != "demo", key))
    for model, batch in keys:
        speed = {row["engine"]: row["windows_per_second"] for row in rows
                 if (row["model"], row["windows_per_batch"]) == (model, batch)}
        frames = next(row["frames_per_window"] for row in rows if row["model"] == model)
        size = next(row["image_size"] for row in rows if row["model"] == model)
        ratio = {engine: f" ({speed[engine] / speed['pytorch']:.2f}x)" for engine in ("onnx", "pt2")}
        lines.append(f"| {model} ({frames} x {size} px) | {batch} | {speed['pytorch']:.2f} | "
                     f"{speed['onnx']:.2f}{ratio['onnx']} | {speed['pt2']:.2f}{ratio['pt2']} |")
    return "\n".join(lines)


def main() -> None:
    from benchmarks.timing import device_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            rows += measure(name, Path(folder), args.repeats)
    import onnxruntime

    cpu = device_name(torch.device("cpu"))
    record = {"machine": {"cpu": cpu, "cores": os.cpu_count(), "threads": args.threads,
                          "load_average": os.getloadavg(), "nice": os.nice(0),
                          "python": platform.python_version(),
                          "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
              "date": date.today().isoformat(),
              "command": " ".join(["python -m benchmarks.predict_engines", *sys.argv[1:]]), "rows": rows}
    stem = f"{cpu.split()[0].lower()}-{date.today().isoformat()}-predict-engines"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{stem}.json", record)
    (args.out / f"{stem}.md").write_text(f"# Prediction engines on {cpu} ({args.threads} threads)\n\n"
                                         f"Windows per second, {record['command']}, {record['date']}.\n\n"
                                         f"{table(rows)}\n")
    print(table(rows))


if __name__ == "__main__":
    main()

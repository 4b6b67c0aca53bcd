"""The demo: FE-Adapter's claim in miniature, on a CPU in a few minutes, with no downloads.

1. Pretrain a small ViT as an *image* expression classifier on single synthetic faces (``fe-adapter
   pretrain-image``'s code).
2. Freeze it and train FE-Adapters (plus a head) on synthetic *video* labels.
3. Train the frame-averaging baseline: the same frozen backbone, a head on mean frame features, no adapters.
4. Compare UAR/WAR, per-class recall and trainable parameters. Two classes (a smile's onset and its
   offset) hold the same frames in opposite order: only a model of time can tell them apart.

The image model trains with ``fe_adapter.pretrain_image`` (``fe-adapter pretrain-image``), both video models with
``fe_adapter.training.run.run_training`` (``fe-adapter train``): one Trainer for all three.
Run with ``make demo`` or ``fe-adapter demo [--seed N] [--out runs/demo]``; docs/demo.md explains the design.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import timm
import torch

from fe_adapter import data
from fe_adapter._json import write_json
from fe_adapter.training.config import config_from_dict
from fe_adapter.training.folder import DEMO_IMAGE_MODEL as IMAGE_MODEL
from fe_adapter.training.folder import DEMO_MODELS, check_demo_folder
from fe_adapter.training.report import plot_confusion, plot_run_comparison
from fe_adapter.training.run import pretrain_image, run_training, setup_logging

log = logging.getLogger("fe_adapter.demo")

BACKBONE = "vit_tiny_patch16_224"
#: A small ViT for 40 px faces: 25 patches of 8 px, 4 blocks of width 64, average-pooled tokens, taking pixels
#: scaled to [-1, 1] (mean and std 0.5, as SyntheticFaces gives them; the video stage reads them from here).
BACKBONE_KWARGS = {"img_size": 40, "patch_size": 8, "depth": 4, "embed_dim": 64, "num_heads": 2, "global_pool": "avg",
                   "pretrained_cfg_overlay": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
NUM_FRAMES = 8  # T, frames per clip
MODELS = DEMO_MODELS  # name: output folder
#: Where each model has adapters: the baseline has none, so its clip features are the mean of its frame features.
PLACEMENTS = {"FE-Adapter": "attn", "frame-averaging baseline": "none"}


@dataclass(frozen=True)
class DemoSize:
    """How much the demo trains: images and epochs of the image model, clips and epochs of the video models."""

    images: int
    image_epochs: int
    train_clips: int
    test_clips: int
    epochs: int


FULL = DemoSize(images=2400, image_epochs=8, train_clips=360, test_clips=180, epochs=10)
QUICK = DemoSize(images=2400, image_epochs=6, train_clips=360, test_clips=120, epochs=4)  # tests/test_demo.py


def _image_config(out_dir: Path, images: int, epochs: int, seed: int) -> dict:
    """The image pretraining config (``fe-adapter pretrain-image``) of the demo's image model: single synthetic faces,
    no augmentation (the faces are new identities already), batches of whole identities (each face in all four
    expressions: within a batch faces differ only in expression; at the demo's 8 epochs shuffled batches do as
    well, docs/demo.md), from scratch, the last epoch kept (no epoch is picked by its test score)."""
    return {
        "data": {"dataset": "synthetic_faces", "options": {"count": images, "size": BACKBONE_KWARGS["img_size"],
                                                           "seed": seed},
                 "batch_size": 64, "group_size": len(data.FRAME_CLASSES), "augment": False, "cache": True,
                 "num_workers": 0},
        "model": {"backbone": BACKBONE, "backbone_kwargs": BACKBONE_KWARGS, "drop_path": 0.0},
        "optim": {"epochs": epochs, "lr": 2e-3, "weight_decay": 0.05, "layer_decay": None,
                  "warmup_epochs": 0.15 * epochs, "label_smoothing": 0.0},
        "run": {"out_dir": str(out_dir), "progress": False, "tensorboard": False, "seed": seed},
    }


def pretrain_image_classifier(out: Path, images: int, epochs: int, seed: int = 0) -> tuple[Path, float]:
    """Train the ViT on single synthetic faces (4 static expressions) with ``fe-adapter pretrain-image``'s code into
    ``out/image_model``; return (the last epoch's image model, its accuracy on the held-out faces)."""
    summary = pretrain_image(_image_config(out / IMAGE_MODEL, images, epochs, seed))
    setup_logging(out, True)
    return out / IMAGE_MODEL / "last.safetensors", summary["last"]["metrics"]["war"]


def _video_config(out_dir: Path, backbone: Path, placement: str, size: DemoSize, seed: int) -> dict:
    """The training config of one video model: identical for both but for the adapters' placement."""
    return {
        "data": {"dataset": "synthetic", "num_frames": NUM_FRAMES, "img_size": BACKBONE_KWARGS["img_size"],
                 "batch_size": 8, "num_workers": 0, "synthetic_train_clips": size.train_clips,
                 "synthetic_test_clips": size.test_clips, "synthetic_seed": seed},
        "model": {"backbone": BACKBONE, "backbone_kwargs": BACKBONE_KWARGS, "checkpoint": str(backbone),
                  "bottleneck": 32, "kernel_size": 3, "placement": placement, "dropout": 0.0},
        "optim": {"epochs": size.epochs, "lr": 1e-2, "warmup_epochs": 0.5, "label_smoothing": 0.0,
                  "weight_decay": 0.01},
        "run": {"out_dir": str(out_dir), "progress": False, "seed": seed},
    }


def _fresh_output_folder(out: Path) -> None:
    """Create ``out``, or empty it: it may hold only a previous demo's output (``check_demo_folder``)."""
    check_demo_folder(out)
    if out.is_dir():
        for entry in out.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _order_only(metrics: dict) -> dict:
    """Recall of each order-only class and the correct count over all clips of the pair (the claim's number)."""
    names = metrics["class_names"]
    pair = [names.index(name) for name in data.ORDER_ONLY_PAIRS[0]]
    correct = sum(metrics["confusion"][index][index] for index in pair)
    clips = sum(sum(metrics["confusion"][index]) for index in pair)
    return {"classes": list(data.ORDER_ONLY_PAIRS[0]), "correct": correct, "clips": clips,
            "accuracy": correct / max(1, clips)}


#: Environment variables that change how fast the demo runs on a shared CPU (see the Makefile).
_OPENMP_SETTINGS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def machine() -> dict:
    """The CPU, its cores, torch's threads, the OpenMP settings and versions: what the demo's numbers and time
    depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "timm": timm.__version__, "python": platform.python_version(),
            "openmp": {name: os.environ[name] for name in _OPENMP_SETTINGS if name in os.environ}}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_demo(out: Path = Path("runs/demo"), quick: bool = False, seed: int = 0) -> dict:
    """Run the four steps; write ``demo.json``, ``summary.md``, ``curves.png``, ``confusion_*.png`` and one
    report folder per model into ``out``; return the results (as in demo.json).

    Metrics are the last epoch's (no epoch is picked by its test score)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    _fresh_output_folder(out)
    setup_logging(out, True)
    size = QUICK if quick else FULL
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    backbone, accuracy = pretrain_image_classifier(out, size.images, size.image_epochs, seed)
    log.info(f"image classifier: {accuracy:.1%} accuracy on {size.images // 4} held-out single faces")

    models = {}
    for name, folder in MODELS.items():
        summary = run_training(config_from_dict(_video_config(out / folder, backbone, PLACEMENTS[name], size, seed)))
        setup_logging(out, True)
        final = summary["last"]["metrics"]
        models[name] = {**{key: final[key] for key in ("uar", "war", "per_class_recall", "confusion", "class_names")},
                        "order_only": _order_only(final), "trainable_parameters": summary["parameters"]["trainable"],
                        "total_parameters": summary["parameters"]["total"],
                        "history": [{key: record[key] for key in ("epoch", "loss", "uar", "war")}
                                    for record in summary["history"]]}

    results = {"seed": seed, "size": asdict(size), "image_accuracy": accuracy, "models": models,
               "seconds": time.perf_counter() - start, "cpu_seconds": _cpu_seconds() - cpu_start,
               "machine": machine()}
    plot_run_comparison({name: model["history"] for name, model in models.items()}, out / "curves.png",
                        f"synthetic demo, seed {seed}")
    for name, model in models.items():
        plot_confusion(model["confusion"], model["class_names"], out / f"confusion_{MODELS[name]}.png",
                       f"{name}: UAR {model['uar']:.1%}")
    table = summary_table(results)
    print(table)
    (out / "summary.md").write_text(table + "\n")
    write_json(out / "demo.json", results)
    return results


def summary_table(results: dict) -> str:
    """The demo's result as a markdown table, with the image model's accuracy, the time and the machine."""
    models = results["models"]
    names = list(models)
    lines = [f"Seed {results['seed']}. Frozen image model: {results['image_accuracy']:.1%} on held-out single faces. "
             f"{results['seconds']:.0f} s ({results['cpu_seconds']:.0f} s of CPU time) on {results['machine']['cpu']}"
             f" ({results['machine']['torch_threads']} threads).",
             "", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label: str, cell) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(models[name]) for name in names) + " |")

    row("UAR", lambda m: f"{m['uar']:.1%}")
    row("WAR", lambda m: f"{m['war']:.1%}")
    row("trainable parameters", lambda m: f"{m['trainable_parameters']:,} "
                                          f"({m['trainable_parameters'] / m['total_parameters']:.1%})")
    pair = data.ORDER_ONLY_PAIRS[0]
    row(f"correct on the order-only pair ({' + '.join(pair)})",
        lambda m: f"{m['order_only']['correct']} / {m['order_only']['clips']}")
    for label in models[names[0]]["per_class_recall"]:
        row(f"recall {label}" + (" (order only)" if label in pair else ""),
            lambda m, label=label: "no clips" if m["per_class_recall"][label] is None else
            f"{m['per_class_recall'][label]:.1%}")
    return "\n".join(lines)


def main() -> None:
    run_demo()


if __name__ == "__main__":
    main()

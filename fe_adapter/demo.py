"""The demo: FE-Adapter's claim in miniature, on a CPU in a few minutes, with no downloads.

1. Pretrain a small ViT as an *image* expression classifier on single synthetic faces.
2. Freeze it and train FE-Adapters (plus a head) on synthetic *video* labels.
3. Train the frame-averaging baseline: the same frozen backbone, a head on mean frame features, no adapters.
4. Compare UAR/WAR, per-class recall and trainable parameters. Two classes (a smile's onset and its
   offset) hold the same frames in opposite order: only a model of time can tell them apart.

Run with ``make demo`` or ``fe-adapter demo [--out runs/demo]``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader, TensorDataset

from fe_adapter import data
from fe_adapter.training.config import config_from_dict
from fe_adapter.training.run import run_training, setup_logging

log = logging.getLogger("fe_adapter.demo")

BACKBONE = "vit_tiny_patch16_224"
#: A small ViT for 48 px faces: 36 patches of 8 px, 4 blocks of width 96, average-pooled tokens, taking pixels
#: scaled to [-1, 1] (mean and std 0.5, as SyntheticFaces gives them; the video stage reads them from here).
BACKBONE_KWARGS = {"img_size": 48, "patch_size": 8, "depth": 4, "embed_dim": 96, "num_heads": 3, "global_pool": "avg",
                   "pretrained_cfg_overlay": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}


NUM_FRAMES = 8  # T, frames per clip


def pretrain_image_classifier(out: Path, images: int, epochs: int, seed: int = 0) -> tuple[Path, float]:
    """Train the ViT on single synthetic faces (4 static expressions); save its weights; return (path, accuracy)."""
    torch.manual_seed(seed)
    size = BACKBONE_KWARGS["img_size"]
    model = timm.create_model(BACKBONE, pretrained=False, num_classes=len(data.FRAME_CLASSES), **BACKBONE_KWARGS)

    def rendered(split: str, count: int) -> TensorDataset:  # render once, reuse every epoch
        faces = data.SyntheticFaces(count, split, seed, size)
        samples = [faces[index] for index in range(count)]
        return TensorDataset(torch.stack([s[0] for s in samples]), torch.tensor([s[1] for s in samples]))

    train = DataLoader(rendered("train", images), batch_size=64, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    test = DataLoader(rendered("test", images // 4), batch_size=256)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=epochs * len(train),
                                                   pct_start=0.15)
    for epoch in range(epochs):
        model.train()
        for images_batch, labels in train:
            loss = torch.nn.functional.cross_entropy(model(images_batch), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        log.info(f"image classifier epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}")
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test)
    accuracy = correct / len(test.dataset)
    path = out / "image_classifier.safetensors"
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path, accuracy


def _video_config(out: Path, backbone: Path, placement: str, quick: bool) -> dict:
    return {
        "data": {"dataset": "synthetic", "num_frames": NUM_FRAMES, "img_size": BACKBONE_KWARGS["img_size"],
                 "batch_size": 8, "num_workers": 0, "synthetic_train_clips": 120 if quick else 360,
                 "synthetic_test_clips": 60 if quick else 180},
        "model": {"backbone": BACKBONE, "backbone_kwargs": BACKBONE_KWARGS, "checkpoint": str(backbone),
                  "bottleneck": 32, "kernel_size": 3, "placement": placement, "dropout": 0.0},
        "optim": {"epochs": 2 if quick else 10, "lr": 3e-3, "warmup_epochs": 0.5, "label_smoothing": 0.0,
                  "weight_decay": 0.01},
        "run": {"out_dir": str(out / ("fe_adapter" if placement != "none" else "baseline")), "progress": False},
    }


def run_demo(out: Path = Path("runs/demo"), quick: bool = False) -> dict:
    """Run the four steps and write ``out/demo.json``, ``out/summary.md`` and one report folder per model."""
    setup_logging(out, True)
    start = time.perf_counter()
    backbone, accuracy = pretrain_image_classifier(out, images=400 if quick else 2400, epochs=2 if quick else 12)
    log.info(f"image classifier: {accuracy:.1%} accuracy on held-out single faces")

    results = {}
    for name, placement in (("FE-Adapter", "attn"), ("frame-averaging baseline", "none")):
        config = config_from_dict(_video_config(out, backbone, placement, quick))
        summary = run_training(config, overwrite=True)  # the demo's own folders: a rerun replaces them
        setup_logging(out, True)
        best = summary["best"]["metrics"]
        results[name] = {"uar": best["uar"], "war": best["war"], "per_class_recall": best["per_class_recall"],
                         "trainable_parameters": summary["parameters"]["trainable"]}

    table = _table(results, accuracy, time.perf_counter() - start)
    print(table)
    (out / "summary.md").write_text(table + "\n")
    (out / "demo.json").write_text(json.dumps({"image_accuracy": accuracy, "results": results}, indent=2))
    return results


def _table(results: dict, image_accuracy: float, seconds: float) -> str:
    names = list(results)
    classes = list(next(iter(results.values()))["per_class_recall"])
    lines = [f"Image classifier (frozen backbone): {image_accuracy:.1%} on single faces. Total time {seconds:.0f} s.",
             "", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines.append("| UAR | " + " | ".join(f"{results[n]['uar']:.1%}" for n in names) + " |")
    lines.append("| WAR | " + " | ".join(f"{results[n]['war']:.1%}" for n in names) + " |")
    lines.append("| trainable parameters | " + " | ".join(f"{results[n]['trainable_parameters']:,}"
                                                           for n in names) + " |")
    for label in classes:
        order_only = " (order only)" if label in data.ORDER_ONLY_PAIRS[0] else ""
        lines.append(f"| recall {label}{order_only} | "
                     + " | ".join(f"{results[n]['per_class_recall'][label]:.1%}" for n in names) + " |")
    return "\n".join(lines)


def main() -> None:
    run_demo()


if __name__ == "__main__":
    main()

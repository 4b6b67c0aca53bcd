"""Device operations per training batch of ``fe-adapter pretrain-image``'s augmentation, by batch size.

    python -m benchmarks.augment_ops                 # results in benchmarks/results/augment-ops-<date>-<commit>.*

On a GPU every ATen operation the augmentation dispatches is at most one kernel launch (views and tensor
creations launch none, so the counts are upper bounds), and a launch costs a few microseconds of the training
process's own CPU time whatever its size: an augmentation whose operations grow with the batch (a loop over its
images) can cost more than the frozen ViT step it feeds. This counts them on the CPU (a ``TorchDispatchMode`` sees
every ATen call), which needs no GPU. The draws are made first and counted apart: they come from Python's,
numpy's and torch's CPU generators (timm's own code), host work that launches nothing on a GPU and that the
loader processes do in training. Counted: ``ImageBatchAugment.apply`` of the default recipe
(``image_train_transforms``: the random resized crop and flip, RandAugment ``rand-m9-mstd0.5``, the
normalisation; with and without random erasing) on batches of 8 to 256 synthetic 224 px faces, seeded, the mean
of 5 batches each, as it runs on a GPU (batched) and on the CPU (image by image).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from fe_adapter import data
from fe_adapter._json import write_json

ROOT = Path(__file__).resolve().parent.parent
SIZE = 224
BATCHES = (8, 32, 64, 256)


class _Counter(TorchDispatchMode):
    """Counts the ATen operations dispatched inside it, and apart the views among them (and ``lift_fresh``, which
    wraps a new tensor): operations that launch no kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.count = self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        self.views += bool(func.is_view or func.overloadpacket is torch.ops.aten.lift_fresh)
        return func(*args, **(kwargs or {}))


def _faces(count: int) -> torch.Tensor:
    frames = [data.render_clip(seed, data.SYNTHETIC_CLASSES[seed % 4], size=SIZE)[0] for seed in range(count)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def operations(on_batch, images: torch.Tensor, repeats: int = 5) -> tuple[float, float, float]:
    """The mean numbers of ATen operations ``on_batch`` dispatches to draw for ``images`` (CPU generators: host
    work) and to apply the draws, and of the views among the latter, over ``repeats`` seeded batches."""
    drawing, applying, views = [], [], []
    for seed in range(repeats):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        with _Counter() as counter:
            draws = [on_batch.draw(*images.shape[-2:]) for _ in range(len(images))]
        drawing.append(counter.count)
        with _Counter() as counter:
            on_batch.apply(images, draws)
        applying.append(counter.count)
        views.append(counter.views)
    return statistics.mean(drawing), statistics.mean(applying), statistics.mean(views)


def measure(batches: tuple[int, ...] = BATCHES) -> list[dict]:
    from fe_adapter.data.image_augment import image_train_transforms

    norm = data.Normalization(size=SIZE)
    faces = _faces(max(batches))
    rows = []
    for batched in (True, False):
        for re_prob in (0.0, 0.25):
            _, on_batch = image_train_transforms(norm, re_prob=re_prob)
            on_batch.batched = batched
            for batch in batches:
                drawing, count, views = operations(on_batch, faces[:batch])
                rows.append({"path": "batched (GPU)" if batched else "image by image (CPU)",
                             "random_erasing": re_prob, "batch": batch, "operations": count,
                             "per_image": count / batch, "views": views, "drawing_operations": drawing})
                print(f"{rows[-1]['path']:20} random erasing {re_prob:4}: batch {batch:4}: {count:8.1f} operations "
                      f"({count / batch:.1f} an image), drawing {drawing:.0f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = measure()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    record = {"commit": commit.strip(), "date": date.today().isoformat(), "command": "python -m benchmarks.augment_ops",
              "torch": torch.__version__, "rows": rows}
    stem = f"augment-ops-{date.today()}-{record['commit']}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{stem}.json", record)
    lines = ["| path | random erasing | batch | ATen operations applying the draws | of which views | per image | "
             "drawing (host) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {row['path']} | {row['random_erasing']:g} | {row['batch']} | {row['operations']:.0f} | "
              f"{row['views']:.0f} | {row['per_image']:.1f} | {row['drawing_operations']:.0f} |" for row in rows]
    (args.out / f"{stem}.md").write_text(
        f"# Operations per batch of pretrain-image's augmentation, {record['date']}\n\n`{record['command']}` at commit "
        f"{record['commit']} (torch {torch.__version__}): ATen operations dispatched by the augmentation of one "
        f"batch of {SIZE} px images (the mean of 5 seeded batches); each is at most one kernel launch on a "
        "GPU (views, counted apart, launch none). The draws' operations (torch's CPU generator, host work on any "
        "device) are counted apart too.\n\n"
        + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Clips and images per second per CPU core through the loaders: JPEG decoding, sampling, transform, collate.

    python -m benchmarks.loading                       # results in benchmarks/results/loading-<cpu>-<date>.*
    python -m benchmarks.loading --clips 12 --rounds 1 # a quick look

One core: torch runs one thread and the DataLoader loads in the main process (``num_workers=0``). Rates are items
per CPU second of this process (``time.process_time``), what one core delivers when it is not shared, and so
comparable on a loaded machine, where wall-clock rates (also written) fall with the load; a loader with N workers
on N free cores delivers about N times as much. The data are generated in a
temporary folder: a DFEW-format tree (``EmoLabel_DataSplit`` split file, ``Clip/clip_224x224/<id>/`` frame
folders of 16 to 48 synthetic faces, 224 px JPEG at quality 90) and an image folder of 224 px face JPEGs
(``root/train/<class>/*.jpg``). Each case reads every clip (16 frames sampled) or image once per round in batches
of 8; the median round is reported, with the fastest and slowest. Cases:

* clips, evaluation (``ClipDataset(train=False)``) with ``eval_transform`` as it was before (torchvision v2
  ``ToDtype`` + ``Normalize``): the cost a training clip must not exceed; and with today's ``eval_transform``;
* clips, training sampling without augmentation (``eval_transform``);
* clips, training with augmentation (``train_transform``, fe_adapter's ``ClipAugment``);
* clips, training with the torchvision v2 pipeline ``train_transform`` used before (RandomResizedCrop,
  RandomHorizontalFlip, ColorJitter, ToDtype, Normalize on the (T, 3, H, W) clip), for comparison;
* clips, training with augmentation on the batch as ``fe-adapter train`` runs it: the loader alone (decoded uint8
  frames, ``prepare_transform``; what the loader's core does when ``BatchAugment`` runs on a GPU), and the loader
  plus ``BatchAugment`` run on the CPU inside the timing (clip by clip, its CPU path, and its batched GPU path):
  augmentation counted wherever it runs;
* images: the same evaluation and augmentation on one frame (``load_image``, then the transform), and timm's
  ImageNet training transform (RandAugment rand-m9-mstd0.5, random erasing 0.25, on the PIL image) that
  image-classifier recipes use, for reference (not the ``-inc1`` variant: with Pillow 13 its posterize can ask for
  0 bits, which Pillow refuses);
* images, ``fe-adapter pretrain-image``'s default recipe: all in the loader (``image_transform``, before); the
  loader with the crop and flip in it (as it was before they moved to the device); and split as the trainer runs
  it now (``image_train_transforms``): the loader alone (decoding to uint8 and drawing the augmentation's random
  parameters, ``ImageDataset``), and the loader plus the crop, flip,
  RandAugment, normalisation and random erasing on the batch on the CPU (image by image, its CPU path, and its
  batched GPU path).

For scale, ``--steps`` (default 2) times that many training steps of ViT-B/16 on the same core, on random data
after one untimed step: pretrain-image's (the whole ViT trained, fp32, AdamW, batches of 8 images) and
``fe-adapter train``'s (the backbone frozen, FE-Adapters and head trained, one clip of 16 frames a step), in items
per CPU second like the loaders: what a run without a GPU spends on the model for each image or clip the loader
delivers.

The machine, library versions, commit and the load average before and after are written with the numbers: on a
shared machine, caches and memory bandwidth are shared too, so even CPU-second rates are lower than on an idle
one; comparisons hold best within one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fe_adapter import data
from fe_adapter._json import write_json

ROOT = Path(__file__).resolve().parent.parent
SIZE = 224
FRAMES = 16
BATCH = 8
QUALITY = 90
#: The cases every other is compared with: evaluation as it cost before this benchmark's changes.
BASELINE = {unit: f"{unit}: evaluation (torchvision v2 ToDtype + Normalize, before)" for unit in ("clips", "images")}
#: Evaluation as it is now: what a training clip or image, augmentation counted, should not cost more than.
EVALUATION = {unit: f"{unit}: evaluation" for unit in ("clips", "images")}


def _write_trees(folder: Path, clips: int, images: int, seed: int = 0) -> tuple[Path, Path]:
    """A DFEW-format tree of ``clips`` frame folders (16 to 48 frames) and an image folder of ``images`` faces."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    dfew = folder / "DFEW"
    split = dfew / "EmoLabel_DataSplit" / "train(single-labeled)"
    split.mkdir(parents=True)
    rows = ["video_name,label"]
    faces = []
    for index in range(1, clips + 1):
        label = index % 7
        length = int(rng.integers(16, 49))
        kind = data.SYNTHETIC_CLASSES[index % 4]  # neutral, happy, sad, surprise faces
        frames = data.render_clip(int(rng.integers(2**31)), kind, size=SIZE)
        frames = frames[np.linspace(0, len(frames) - 1, length).round().astype(int)]
        clip_folder = dfew / "Clip" / "clip_224x224" / f"{index:05d}"
        clip_folder.mkdir(parents=True)
        for number, frame in enumerate(frames, start=1):
            Image.fromarray(frame).save(clip_folder / f"{number:05d}.jpg", quality=QUALITY)
        faces += [(label, clip_folder / f"{number:05d}.jpg") for number in range(1, length + 1, 4)]
        rows.append(f"{index},{label + 1}")
    (split / "set_1.csv").write_text("\n".join(rows) + "\n")
    image_root = folder / "faces"
    for number, (label, frame) in enumerate(faces[:images]):
        target = image_root / "train" / data.DFEW_CLASSES[label] / f"{number:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(frame.read_bytes())
    return dfew, image_root


def _torchvision_train_transform(normalization: data.Normalization) -> Callable[[torch.Tensor], torch.Tensor]:
    """The v2 pipeline ``train_transform`` was before ``ClipAugment`` (the baseline this benchmark compares)."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop(normalization.size, scale=(0.7, 1.0), antialias=True),
                       v2.RandomHorizontalFlip(0.5), v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(normalization.mean, normalization.std)])


def _torchvision_eval_transform(normalization: data.Normalization) -> Callable[[torch.Tensor], torch.Tensor]:
    """``eval_transform`` as it was before (resize, centre crop, v2 ToDtype + Normalize): the cost to match."""
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(normalization.size, antialias=True), v2.CenterCrop(normalization.size),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(normalization.mean, normalization.std)])


def _crop_in_loader(normalization: data.Normalization) -> Callable:
    """pretrain-image's loader before the random resized crop and flip moved to the device: decoding, then timm's
    default crop (scale 0.6 to 1, bicubic, torchvision's v2 resize on the uint8 tensor) and flip."""
    from torchvision.transforms import InterpolationMode, v2

    return v2.Compose([v2.PILToTensor(), v2.RandomResizedCrop(normalization.size, scale=(0.6, 1.0), antialias=True,
                                                              interpolation=InterpolationMode.BICUBIC),
                       v2.RandomHorizontalFlip(0.5)])


def _pretrain_images(images: data.ImageList, transforms: tuple) -> Dataset:
    """pretrain-image's training set: each image decoded and drawn for by the loader (``ImageDataset``)."""
    from fe_adapter.data.image_dataset import ImageDataset

    return ImageDataset(images, transforms[0], train=True, draw=transforms[1].draw)


class _Images(Dataset):
    """Face images through ``load_image`` and a transform: of uint8 (1, 3, H, W) tensors, or of PIL images."""

    def __init__(self, images: data.ImageList, transform: Callable, pil: bool = False) -> None:
        self.items, self.transform, self.pil = images.items, transform, pil

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = data.load_image(self.items[index])
        if self.pil:
            return self.transform(image), self.items[index].label
        pixels = torch.from_numpy(np.asarray(image)).permute(2, 0, 1)[None]
        return self.transform(pixels)[0], self.items[index].label


def _timed_rounds(loader: DataLoader, rounds: int, on_batch: Callable | None = None) -> tuple[list[float], list[float]]:
    """Items per CPU second (this process's CPU time) and per wall-clock second of each pass over ``loader``,
    with ``on_batch`` (augmentation on the batch) applied to each ``ClipBatch`` inside the timing, after one
    untimed batch to warm up."""
    first = next(iter(loader))
    if on_batch is not None:
        on_batch(first)
    per_cpu_second, per_second = [], []
    for _ in range(rounds):
        count, cpu_started, started = 0, time.process_time(), time.perf_counter()
        for batch in loader:
            if on_batch is not None:
                on_batch(batch)
            count += len(batch.labels)
        per_cpu_second.append(count / (time.process_time() - cpu_started))
        per_second.append(count / (time.perf_counter() - started))
    return per_cpu_second, per_second


def cases(dfew: Path, faces: Path) -> dict[str, tuple[str, Callable[[], Dataset]] |
                                             tuple[str, Callable[[], Dataset], Callable]]:
    """name -> (unit, a function building the dataset[, augmentation applied to each batch, timed with it])."""
    import timm.data

    from fe_adapter.data.image_augment import image_train_transforms
    from fe_adapter.data.image_dataset import image_transform

    norm = data.Normalization(size=SIZE)
    clips = data.dfew(dfew, fold=1, split="train")
    images = data.image_folder(faces, "train")
    image_train = image_train_transforms(norm)  # pretrain-image's default recipe, split as the trainer runs it
    image_train_batched = image_train_transforms(norm)
    image_train_batched[1].batched = True
    timm_train = timm.data.create_transform(SIZE, is_training=True, auto_augment="rand-m9-mstd0.5",
                                            re_prob=0.25, interpolation="bicubic", mean=norm.mean, std=norm.std)
    return {
        BASELINE["clips"]: (
            "clips", lambda: data.ClipDataset(clips, FRAMES, transform=_torchvision_eval_transform(norm))),
        "clips: evaluation": ("clips", lambda: data.ClipDataset(clips, FRAMES, transform=data.eval_transform(norm))),
        "clips: training sampling, no augmentation": (
            "clips", lambda: data.ClipDataset(clips, FRAMES, train=True, transform=data.eval_transform(norm))),
        "clips: training, augmentation (ClipAugment)": (
            "clips", lambda: data.ClipDataset(clips, FRAMES, train=True, transform=data.train_transform(norm))),
        "clips: training, augmentation (torchvision v2, before)": (
            "clips", lambda: data.ClipDataset(clips, FRAMES, train=True, transform=_torchvision_train_transform(norm))),
        "clips: training, loader only (uint8 frames for BatchAugment; the augmentation on a GPU)": (
            "clips", lambda: data.ClipDataset(clips, FRAMES, train=True, transform=data.prepare_transform(norm))),
        "clips: training, loader + BatchAugment on the CPU (clip by clip)": (
            "clips", lambda: data.ClipDataset(clips, FRAMES, train=True, transform=data.prepare_transform(norm)),
            _on_clips(data.BatchAugment(norm))),
        "clips: training, loader + BatchAugment's batched (GPU) path run on the CPU": (
            "clips", lambda: data.ClipDataset(clips, FRAMES, train=True, transform=data.prepare_transform(norm)),
            _on_clips(data.BatchAugment(norm, batched=True))),
        BASELINE["images"]: ("images", lambda: _Images(images, _torchvision_eval_transform(norm))),
        "images: evaluation": ("images", lambda: _Images(images, data.eval_transform(norm))),
        "images: training, augmentation (ClipAugment)": ("images", lambda: _Images(images, data.train_transform(norm))),
        "images: training, loader only (uint8 for BatchAugment; the augmentation on a GPU)": (
            "images", lambda: _Images(images, data.prepare_transform(norm))),
        "images: training, loader + BatchAugment on the CPU (image by image)": (
            "images", lambda: _Images(images, data.prepare_transform(norm)), _on_clips(data.BatchAugment(norm))),
        "images: training, timm RandAugment + random erasing (reference)": (
            "images", lambda: _Images(images, timm_train, pil=True)),
        "images: pretrain-image's timm recipe, all in the loader (before)": (
            "images", lambda: _Images(images, image_transform(norm, train=True), pil=True)),
        "images: pretrain-image's timm recipe, loader only, crop and flip in it (before; the rest on a GPU)": (
            "images", lambda: _Images(images, _crop_in_loader(norm), pil=True)),
        "images: pretrain-image's timm recipe, loader only (decoding to uint8 and drawing; the augmentation on a "
        "GPU)": (
            "images", lambda: _pretrain_images(images, image_train)),
        "images: pretrain-image's timm recipe, loader + crop, flip, RandAugment, normalisation and erasing on the "
        "batch on the CPU": (
            "images", lambda: _pretrain_images(images, image_train), _with_draws(image_train[1])),
        "images: pretrain-image's timm recipe, loader + the batch's augmentation's batched (GPU) path run on the CPU": (
            "images", lambda: _pretrain_images(images, image_train_batched), _with_draws(image_train_batched[1])),
    }


def _step_rate(model: torch.nn.Module, inputs: torch.Tensor, steps: int) -> float:
    """Items of ``inputs`` per CPU second through ``steps`` training steps (forward, cross-entropy, backward, AdamW
    on the trainable parameters) after one untimed step."""
    labels = torch.arange(len(inputs)) % 7
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    started = time.process_time()
    for _ in range(steps):
        step()
    return steps * len(inputs) / (time.process_time() - started)


def measure_steps(steps: int) -> list[dict]:
    """Training steps of ViT-B/16 for scale: pretrain-image's (whole model) and FE-Adapter's (frozen backbone)."""
    import timm

    from fe_adapter import create_model

    torch.manual_seed(0)
    cases = {
        "images: a pretrain-image training step, ViT-B/16 (fp32, batch of 8; for scale)": (
            "images", lambda: timm.create_model("vit_base_patch16_224", num_classes=7),
            torch.randn(BATCH, 3, SIZE, SIZE)),
        "clips: an FE-Adapter training step, frozen ViT-B/16 (fp32, one clip of 16 frames; for scale)": (
            "clips", lambda: create_model("vit_base_patch16_224", num_frames=FRAMES, random_backbone=True),
            torch.randn(1, FRAMES, 3, SIZE, SIZE)),
    }
    rows = []
    for name, (unit, build, inputs) in cases.items():
        rate = _step_rate(build().train(), inputs, steps)
        rows.append({"case": name, "unit": unit, "items": steps * len(inputs), "rounds": 1, "per_cpu_second": rate,
                     "fastest": rate, "slowest": rate, "per_wall_second": None})
        print(f"{name:66} {rate:7.2f} {unit} per CPU second", flush=True)
    return rows


def _collate(samples: list) -> data.ClipBatch:
    if isinstance(samples[0], data.ClipSample):
        return data.collate_clips(samples)
    return data.ClipBatch(torch.stack([sample[0] for sample in samples]),
                          torch.tensor([sample[1] for sample in samples]), [""] * len(samples))


def _on_clips(augment: Callable) -> Callable:
    """``augment`` of a batch's pixels, drawing as it goes (``BatchAugment``)."""
    return lambda batch: augment(batch.clips)


def _with_draws(augment: Any) -> Callable:
    """``augment`` applying the draws the loader made (``ImageBatchAugment``, as pretrain-image runs it)."""
    return lambda batch: augment.apply(batch.clips, batch.draws)


def measure(dfew: Path, faces: Path, rounds: int) -> list[dict]:
    rows = []
    for name, (unit, build, *on_batch) in cases(dfew, faces).items():
        torch.manual_seed(0)
        dataset = build()
        loader = DataLoader(dataset, batch_size=BATCH, shuffle=False, num_workers=0, collate_fn=_collate)
        rates, wall_rates = _timed_rounds(loader, rounds, *on_batch)
        rows.append({"case": name, "unit": unit, "items": len(dataset), "rounds": rounds,
                     "per_cpu_second": statistics.median(rates), "fastest": max(rates), "slowest": min(rates),
                     "per_wall_second": statistics.median(wall_rates)})
        print(f"{name:66} {statistics.median(rates):7.1f} {unit} per CPU second", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    baseline = {row["unit"]: row["per_cpu_second"] for row in rows if row["case"] == BASELINE[row["unit"]]}
    now = {row["unit"]: row["per_cpu_second"] for row in rows if row["case"] == EVALUATION[row["unit"]]}
    lines = ["| case | per CPU second (median round) | fastest to slowest round | vs evaluation before | "
             "vs evaluation now | per wall-clock second |", "|---|---|---|---|---|---|"]
    for row in rows:
        ratio, ratio_now = row["per_cpu_second"] / baseline[row["unit"]], row["per_cpu_second"] / now[row["unit"]]
        if row["per_wall_second"] is None:  # a training step, timed once
            lines.append(f"| {row['case']} | {row['per_cpu_second']:.2f} {row['unit']} | - | {ratio:.4f}x | "
                         f"{ratio_now:.4f}x | - |")
            continue
        lines.append(f"| {row['case']} | {row['per_cpu_second']:.1f} {row['unit']} | {row['fastest']:.1f} to "
                     f"{row['slowest']:.1f} | {ratio:.2f}x | {ratio_now:.2f}x | {row['per_wall_second']:.1f} |")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    import PIL
    import timm
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "pillow": PIL.__version__, "numpy": np.__version__, "timm": timm.__version__}


def main() -> None:
    from benchmarks.timing import device_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32, help="clips in the DFEW-format tree (16 to 48 frames each)")
    parser.add_argument("--images", type=int, default=256, help="images in the image folder")
    parser.add_argument("--rounds", type=int, default=3, help="passes over each dataset; the median is reported")
    parser.add_argument("--steps", type=int, default=2, help="timed ViT-B/16 training steps of each kind, for scale "
                        "(0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        dfew, faces = _write_trees(Path(folder), args.clips, args.images)
        rows = measure(dfew, faces, args.rounds)
    if args.steps:
        rows += measure_steps(args.steps)
    cpu = device_name(torch.device("cpu"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    command = "python -m benchmarks.loading" + (f" --clips {args.clips}" if args.clips != 32 else "") + (
        f" --images {args.images}" if args.images != 256 else "") + (
        f" --rounds {args.rounds}" if args.rounds != 3 else "") + (f" --steps {args.steps}" if args.steps != 2 else "")
    record = {"machine": {"cpu": cpu, "cores": os.cpu_count(), "threads": 1, "niceness": os.nice(0),
                          "load_average_before": load_before,
                          "load_average_after": os.getloadavg(), **_versions()},
              "commit": commit.strip(), "date": date.today().isoformat(), "command": command,
              "settings": {"frames_per_clip": FRAMES, "frames_on_disk": "16 to 48", "size": SIZE, "batch": BATCH,
                           "jpeg_quality": QUALITY, "clips": args.clips, "images": args.images,
                           "training_steps": args.steps},
              "rows": rows}
    maker = re.sub(r"\(.*?\)", "", cpu).split()  # "Intel(R) Xeon(R) ..." -> intel-xeon, "AMD EPYC ..." -> amd
    stem = f"loading-{'-'.join(maker[:2] if maker[0].lower() == 'intel' else maker[:1]).lower()}-{date.today()}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{stem}.json", record)
    machine = record["machine"]
    (args.out / f"{stem}.md").write_text(
        f"# Loading speed on {cpu}, one core, {record['date']}\n\n"
        f"`{command}` at commit {record['commit']}: {args.clips} clips of 16 to 48 frames ({FRAMES} sampled) and "
        f"{args.images} images, {SIZE} px JPEG (quality {QUALITY}), batches of {BATCH}, loaded in the main process "
        f"with one torch thread; rates per CPU second of the process (per wall-clock second in the last "
        f"column); niceness {machine['niceness']}. Python {machine['python']}, torch {machine['torch']}, torchvision "
        f"{machine['torchvision']}, Pillow {machine['pillow']}, timm {machine['timm']}; {machine['cores']} cores, "
        f"load average (1, 5, 15 min) {', '.join(f'{v:.2f}' for v in load_before)} before and "
        f"{', '.join(f'{v:.2f}' for v in machine['load_average_after'])} after."
        + (f" The training-step rows time {args.steps} steps after an untimed one, on random data, for scale: what the "
           "model costs per item on the same core." if args.steps else "") + f"\n\n{table(rows)}\n")
    print(table(rows))


if __name__ == "__main__":
    main()

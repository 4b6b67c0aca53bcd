"""``fe-adapter predict-image``: the emotion in single face images, with an image model of ``pretrain-image``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fe_adapter._io import check_writable, require_file
from fe_adapter.commands._options import device
from fe_adapter.commands._start_up import imports
from fe_adapter.data.formats import IMAGE_SUFFIXES

HELP = "classify face images with an image model written by pretrain-image"
EXAMPLE = "fe-adapter predict-image face.jpg faces/ --model runs/image/best.safetensors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit status: 0 every image classified; 1 some could not be read (one line each on stderr); 2 "
                     "none was, or nothing ran (a bad option, a missing or unusable model)")
    parser.add_argument("images", nargs="+", type=Path, help="face images (tight crops), or folders: their images "
                        f"({', '.join(IMAGE_SUFFIXES)}), also in sub-folders")
    parser.add_argument("--model", type=Path, required=True, help="an image model (.safetensors) written by "
                        "fe-adapter pretrain-image")
    parser.add_argument("--top", type=int, default=3, help="classes printed per image (default 3)")
    parser.add_argument("--csv", type=Path, help="also write one row per image (path, predicted class, one "
                        "probability per class) to this file")
    parser.add_argument("--device", type=device, default="auto", help="auto (CUDA when available), cpu, cuda, "
                        "cuda:N or mps (default auto)")


def _images(inputs: list[Path]) -> tuple[list[Path], list[str]]:
    """The image files the arguments name (folders expanded, sorted) and a line for each that does not exist."""
    found, failed = [], []
    for path in inputs:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            found.append(path)
        else:
            failed.append(f"{path}: image not found")
    return found, failed


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    images, failed = _images(args.images)
    for line in failed:
        print(f"fe-adapter predict-image: error: {line}", file=sys.stderr)
    require_file(args.model, "image model")
    if args.csv is not None:
        check_writable(args.csv.parent, f"--csv {args.csv}")
    if not images:
        return 2

    with imports():  # frozen in the program (fe_adapter.commands._start_up)
        import csv

        from PIL import Image, UnidentifiedImageError

        from fe_adapter.device import resolve_device
        from fe_adapter.image_model import classify_images, load_image_model

    model = load_image_model(args.model)
    target = resolve_device(args.device, "--device")
    readable, pictures = [], []
    for path in images:
        try:
            with Image.open(path) as image:
                pictures.append(image.convert("RGB"))
            readable.append(path)
        except (OSError, UnidentifiedImageError) as error:
            failed.append(f"{path}: cannot read the image ({error})")
            print(f"fe-adapter predict-image: error: {failed[-1]}", file=sys.stderr)
    if not readable:
        return 2
    probabilities = classify_images(model, pictures, device=target)
    names = model.class_names
    for path, row in zip(readable, probabilities.tolist(), strict=True):
        ranked = sorted(range(len(names)), key=lambda index: -row[index])[:args.top]
        print(f"{path}: " + ", ".join(f"{names[index]} {row[index]:.1%}" for index in ranked))
    if args.csv is not None:
        with args.csv.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "predicted", *(f"p_{name}" for name in names)])
            for path, row in zip(readable, probabilities.tolist(), strict=True):
                writer.writerow([str(path), names[max(range(len(row)), key=row.__getitem__)],
                                 *(f"{p:.6f}" for p in row)])
        print(f"wrote {args.csv}")
    return 1 if failed else 0

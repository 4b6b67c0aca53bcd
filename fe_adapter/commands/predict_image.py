"""``fe-adapter predict-image``: the emotion in single face images, with an image model of ``pretrain-image``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fe_adapter._io import atomic_write, check_writable, require_file
from fe_adapter.commands._options import device
from fe_adapter.commands._start_up import imports
from fe_adapter.data.formats import IMAGE_SUFFIXES

HELP = "classify face images with an image model written by pretrain-image"
EXAMPLE = "fe-adapter predict-image face.jpg faces/ --model runs/image/best.safetensors"
#: Images read and classified at a time (one batch of the model): a folder of any size holds only these in memory.
BATCH = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit status: 0 every image classified; 1 some could not be read, or (--faces detect) had no "
                     "face (one line each on stderr); 2 none was, or nothing ran (a bad option, a missing or unusable "
                     "model)")
    parser.add_argument("images", nargs="+", type=Path, help="face images (tight crops, or photos with --faces "
                        f"detect), or folders: their images ({', '.join(IMAGE_SUFFIXES)}), also in sub-folders")
    parser.add_argument("--model", type=Path, required=True, help="an image model (.safetensors) written by "
                        "fe-adapter pretrain-image")
    parser.add_argument("--top", type=int, default=3, help="classes printed per image (default 3)")
    parser.add_argument("--csv", type=Path, help="also write one row per image (path, predicted class, one "
                        "probability per class) to this file")
    parser.add_argument("--faces", choices=("none", "detect"), default="none", help="none: the images are face "
                        "crops already (default); detect: photos, whose largest face is found (MTCNN) and aligned as "
                        "crop-faces and predict align faces; an image without a face is one line on stderr")
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
        from tqdm import tqdm

        from fe_adapter.data.transforms import normalization_for
        from fe_adapter.device import resolve_device
        from fe_adapter.image_model import load_image_model

    model = load_image_model(args.model)
    target = resolve_device(args.device, "--device")
    names = model.class_names
    faces = None if args.faces == "none" else _FaceAligner(normalization_for(model).size)
    rows: list[tuple[Path, list[float]]] = []
    with tqdm(total=len(images), unit="image", disable=not sys.stderr.isatty(), leave=False, file=sys.stderr,
              dynamic_ncols=True) as bar:
        for start in range(0, len(images), BATCH):
            for path, row in _classified(model, images[start:start + BATCH], target, failed, faces):
                ranked = sorted(range(len(names)), key=lambda index: -row[index])[:args.top]
                tqdm.write(f"{path}: " + ", ".join(f"{names[index]} {row[index]:.1%}" for index in ranked),
                           file=sys.stdout)
                rows.append((path, row))
            bar.update(len(images[start:start + BATCH]))
    if not rows:
        return 2
    if args.csv is not None:
        atomic_write(args.csv, lambda temporary: _write_csv(Path(temporary), rows, names))
        print(f"wrote {args.csv}")
    return 1 if failed else 0


class _FaceAligner:
    """The main face of a photo aligned at the model's input size, as ``fe-adapter crop-faces`` aligns images
    (``fe_adapter.faces.crop_images.aligned_main_face``)."""

    def __init__(self, size: int) -> None:
        from fe_adapter.faces import make_detector

        self.size, self.detector = size, make_detector()

    def __call__(self, image):
        """The aligned face as a PIL image, or None without a face."""
        from PIL import Image

        from fe_adapter.faces.crop_images import aligned_main_face

        aligned = aligned_main_face(image, self.detector, self.size)
        return None if aligned is None else Image.fromarray(aligned)


def _classified(model, paths: list[Path], device, failed: list[str],
                faces: _FaceAligner | None = None) -> list[tuple[Path, list[float]]]:
    """Each readable image of ``paths`` (with ``faces``: its aligned main face) with its class probabilities; a
    line on stderr (and in ``failed``) for each that cannot be read or has no face. Only these images are open at
    once: a folder of any size is read batch by batch."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from fe_adapter.image_model import classify_images

    readable, pictures = [], []
    for path in paths:
        try:
            with Image.open(path) as image:  # a camera's rotation applied, as the photo is shown
                picture = ImageOps.exif_transpose(image).convert("RGB") if faces is None else faces(image)
        except (OSError, UnidentifiedImageError) as error:
            failed.append(f"{path}: cannot read the image ({error})")
            print(f"fe-adapter predict-image: error: {failed[-1]}", file=sys.stderr)
            continue
        if picture is None:
            failed.append(f"{path}: no face found")
            print(f"fe-adapter predict-image: error: {failed[-1]}", file=sys.stderr)
            continue
        pictures.append(picture)
        readable.append(path)
    if not pictures:
        return []
    return list(zip(readable, classify_images(model, pictures, batch_size=BATCH, device=device).tolist(), strict=True))


def _write_csv(path: Path, rows: list[tuple[Path, list[float]]], names: list[str]) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "predicted", *(f"p_{name}" for name in names)])
        for image, row in rows:
            writer.writerow([str(image), names[max(range(len(row)), key=row.__getitem__)], *(f"{p:.6f}" for p in row)])

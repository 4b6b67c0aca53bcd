"""Why the demo failed, measured: the experiments behind docs/demo.md, runnable against any checkout.

    python scripts/demo_diagnosis.py --label after                      # this checkout
    git worktree add --detach /tmp/before 89051bd                        # the demo before issue 14,
    cp -r fekernels/_native /tmp/before/fekernels/                       # with the same native kernel
    PYTHONPATH=/tmp/before python scripts/demo_diagnosis.py --label before
    git worktree remove --force /tmp/before

It imports ``fe_adapter`` from PYTHONPATH (the checkout under test, recorded by its git commit) and runs,
single-threaded (but for the last part), with seed 0:

1. image: the demo's image-model pretraining (``demo.pretrain_image_classifier``): held-out accuracy and
   confusion matrix over the four static expressions;
2. probes: linear probes on the frozen image features of the synthetic clips: the mean over frames (all the
   frame-averaging baseline sees) against the frames in order (what a model of time could use), and the image
   model's p(happy) over the frames of held-out onset clips (is the smile's onset visible at all?);
3. video: FE-Adapter trained with the project's Trainer on the demo's clips (360 train, 180 test, 8 frames,
   10 epochs) at two learning rates, with and without clip augmentation (random resized crop, flip, colour
   jitter 0.2: the old default); per-epoch loss and test UAR, per-class recall, and how far each adapter
   moved the residual stream (||adapter(x) - x|| / ||x|| on test clips); then the frame-averaging baseline
   (no adapters) at the higher learning rate, with and without augmentation;
4. cnn: a 3-layer CNN trained on the same faces (do they carry their expression at this size?);
5. sampling: for each clip length, whether evaluation sampling shows a clip and its reversal mirror frames,
   and how many of the demo's order-only test clips have a length where it does not;
6. batches (checkouts with identity batches): the image model with batches of whole identities against plain
   shuffled batches, seeds 0 to 2;
7. backbones: the checkout's image-model pretraining (its faces) with the backbone and epochs of the demo
   before and after issue 14: is the image model's accuracy the faces' doing or the backbone's?
8. contention: the image model's pretraining (3 epochs, torch's default threads) alone and as two processes at
   once, with libgomp's default spinning and with GOMP_SPINCOUNT=1000 (as ``make demo`` sets it): wall seconds.

Writes ``benchmarks/results/demo-diagnosis-<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("image", "probes", "video", "cnn", "sampling", "batches", "backbones", "contention")
#: The image models of the demo before (89051bd) and after issue 14: backbone and pretraining epochs.
BACKBONES = {
    "before": ({"img_size": 48, "patch_size": 8, "depth": 4, "embed_dim": 96, "num_heads": 3}, 12),
    "after": ({"img_size": 40, "patch_size": 8, "depth": 4, "embed_dim": 64, "num_heads": 2}, 8),
}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def image_model(folder: Path, images: int, epochs: int) -> tuple[Path, dict]:
    """The demo's image model: its weights (for the parts below) and its accuracy and confusion matrix."""
    import timm
    from safetensors.torch import load_file

    from fe_adapter import data, demo

    start = _cpu_seconds()
    path, accuracy = demo.pretrain_image_classifier(folder, images, epochs, 0)
    model = timm.create_model(demo.BACKBONE, num_classes=len(data.FRAME_CLASSES), **demo.BACKBONE_KWARGS).eval()
    model.load_state_dict(load_file(path))  # (timm drops a head whose size differs from its default config's)
    faces = data.SyntheticFaces(images // 4, "test", 0, demo.BACKBONE_KWARGS["img_size"])
    confusion = torch.zeros(4, 4, dtype=torch.long)
    with torch.no_grad():
        for index in range(len(faces)):
            image, label = faces[index]
            confusion[label, model(image[None]).argmax()] += 1
    return path, {"epochs": epochs, "images": images, "accuracy": accuracy, "confusion": confusion.tolist(),
                  "class_names": list(data.FRAME_CLASSES), "cpu_seconds": _cpu_seconds() - start}


def cnn_reference(images: int, epochs: int = 6) -> dict:
    """A 3-layer CNN on the same faces: do single faces carry their expression at this size?"""
    from torch import nn

    from fe_adapter import data, demo

    torch.manual_seed(0)
    size = demo.BACKBONE_KWARGS["img_size"]
    train = [data.SyntheticFaces(images, "train", 0, size)[index] for index in range(images)]
    test = [data.SyntheticFaces(images // 4, "test", 0, size)[index] for index in range(images // 4)]
    x_train, y_train = torch.stack([x for x, _ in train]), torch.tensor([y for _, y in train])
    x_test, y_test = torch.stack([x for x, _ in test]), torch.tensor([y for _, y in test])
    model = nn.Sequential(*[layer for width_in, width in ((3, 32), (32, 64), (64, 64)) for layer in
                            (nn.Conv2d(width_in, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))],
                          nn.Flatten(), nn.LazyLinear(len(data.FRAME_CLASSES)))
    model(x_train[:1])
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    start, generator = _cpu_seconds(), torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for batch in torch.randperm(images, generator=generator).split(64):
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return {"epochs": epochs, "accuracy": accuracy, "cpu_seconds": _cpu_seconds() - start}


def backbones(folder: Path, images: int) -> dict:
    """The checkout's image-model pretraining (its faces, its batches) with each demo's backbone and epochs: does
    the image model's accuracy come from the faces or from the backbone?"""
    from fe_adapter import demo

    original = demo.BACKBONE_KWARGS
    results = {}
    try:
        for name, (kwargs, epochs) in BACKBONES.items():
            demo.BACKBONE_KWARGS = {**original, **kwargs}
            results[f"{name}: {kwargs['img_size']} px, width {kwargs['embed_dim']}, {epochs} epochs"] = \
                demo.pretrain_image_classifier(folder / name, images, epochs, 0)[1]
    finally:
        demo.BACKBONE_KWARGS = original
    return results


def image_batches_ablation(folder: Path, images: int, epochs: int, seeds: list[int]) -> dict:
    """The image model with the demo's batches of whole identities against plain shuffled batches, per seed."""
    from fe_adapter import demo

    identity_batches = demo._image_config

    def shuffled_batches(*args, **kwargs):  # the same config, images drawn one by one
        config = identity_batches(*args, **kwargs)
        config["data"]["group_size"] = 1
        return config

    results: dict[str, list[float]] = {"identity batches": [], "shuffled batches": []}
    try:
        for name, batches in (("identity batches", identity_batches), ("shuffled batches", shuffled_batches)):
            demo._image_config = batches
            for seed in seeds:
                results[name].append(demo.pretrain_image_classifier(folder / f"{name}_{seed}", images, epochs,
                                                                    seed)[1])
    finally:
        demo._image_config = identity_batches
    return {"seeds": seeds, "epochs": epochs, "accuracy": results}


def _frame_features(model, split: str, clips: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from fe_adapter import data, demo

    dataset = data.SyntheticClips(clips, split, 0, demo.BACKBONE_KWARGS["img_size"], num_frames=8, train=False)
    features, probabilities, labels = [], [], []
    with torch.no_grad():
        for index in range(clips):
            sample = dataset[index]
            pooled = model.forward_head(model.forward_features(sample.clip), pre_logits=True)  # (T, D)
            features.append(pooled)
            probabilities.append(model.head(pooled).softmax(-1))
            labels.append(sample.label)
    return torch.stack(features), torch.stack(probabilities), torch.tensor(labels)


def _linear_probe(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]) -> list[float]:
    """Per-class test recall of an L2-regularised softmax regression on standardised features."""
    (x_train, y_train), (x_test, y_test) = train, test
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    torch.manual_seed(0)
    linear = torch.nn.Linear(x_train.shape[1], int(y_train.max()) + 1)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=500)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(x_train), y_train) + 1e-3 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predicted = linear(x_test).argmax(1)
    return [((predicted == c) & (y_test == c)).sum().item() / (y_test == c).sum().item()
            for c in range(linear.out_features)]


def probes(image_path: Path) -> dict:
    import timm
    from safetensors.torch import load_file

    from fe_adapter import data, demo

    model = timm.create_model(demo.BACKBONE, num_classes=len(data.FRAME_CLASSES), **demo.BACKBONE_KWARGS).eval()
    model.load_state_dict(load_file(image_path))
    train_features, _, train_labels = _frame_features(model, "train", 360)
    test_features, test_probabilities, test_labels = _frame_features(model, "test", 180)
    names = list(data.SYNTHETIC_CLASSES)
    results = {}
    for name, pool in (("mean over frames", lambda f: f.mean(1)), ("frames in order", lambda f: f.flatten(1))):
        recall = _linear_probe((pool(train_features), train_labels), (pool(test_features), test_labels))
        results[name] = dict(zip(names, recall, strict=True))
    onset = test_probabilities[test_labels == names.index("happy_onset")][:, :, data.FRAME_CLASSES.index("happy")]
    results["onset clips: mean p(happy) per frame"] = onset.mean(0).tolist()
    results["onset clips ending happier than they start"] = (onset[:, -1] > onset[:, 0]).float().mean().item()
    return results


def _synthetic_clips_augmented(augment: bool):
    """``data.SyntheticClips`` with the training transform forced on (crop, flip, jitter 0.2) or off."""
    from fe_adapter import data

    original = data.SyntheticClips

    def clips(count, split, seed, size, train=None, normalization=None, **options):
        norm = data.Normalization(size, normalization.mean, normalization.std)
        transform = data.train_transform(norm, jitter=0.2) if augment and train else data.eval_transform(norm)
        return original(count, split, seed, size, train=train, normalization=normalization, transform=transform,
                        **options)

    return clips


def video(image_path: Path, folder: Path, lr: float, augment: bool, placement: str = "attn") -> dict:
    """One video model (FE-Adapter, or with placement "none" the frame-averaging baseline) on the demo's clips."""
    from fe_adapter import data, demo
    from fe_adapter.adapter import FEAdapter
    from fe_adapter.training.config import config_from_dict
    from fe_adapter.training.trainer import Trainer

    config = config_from_dict({
        "data": {"dataset": "synthetic", "num_frames": 8, "img_size": demo.BACKBONE_KWARGS["img_size"],
                 "batch_size": 8, "num_workers": 0, "synthetic_train_clips": 360, "synthetic_test_clips": 180},
        "model": {"backbone": demo.BACKBONE, "backbone_kwargs": demo.BACKBONE_KWARGS, "checkpoint": str(image_path),
                  "bottleneck": 32, "kernel_size": 3, "placement": placement, "dropout": 0.0},
        "optim": {"epochs": 10, "lr": lr, "warmup_epochs": 0.5, "label_smoothing": 0.0, "weight_decay": 0.01},
        "run": {"out_dir": str(folder), "progress": False, "tensorboard": False},
    })
    original = data.SyntheticClips
    data.SyntheticClips = _synthetic_clips_augmented(augment)
    try:
        start = _cpu_seconds()
        trainer = Trainer(config)
        summary = trainer.fit()
    finally:
        data.SyntheticClips = original
    moved: dict[str, list[float]] = {}
    adapters = [(name, module) for name, module in trainer.model.named_modules() if isinstance(module, FEAdapter)]

    def measure(name):
        return lambda module, inputs, output: moved.setdefault(name, []).append(
            ((output - inputs[0]).norm() / inputs[0].norm()).item())

    hooks = [module.register_forward_hook(measure(name)) for name, module in adapters]
    trainer.evaluate()
    for hook in hooks:
        hook.remove()
    final = summary["final"] if "final" in summary else summary["last"]["metrics"]  # the old summary, the new
    return {"model": "FE-Adapter" if adapters else "frame-averaging baseline", "lr": lr, "augment": augment,
            "history": [{key: record[key] for key in ("epoch", "loss", "uar")} for record in summary["history"]],
            "uar": final["uar"], "per_class_recall": final["per_class_recall"],
            "adapter_change": {name: sum(values) / len(values) for name, values in moved.items()},
            "cpu_seconds": _cpu_seconds() - start}


def mirror_sampling(num_frames: int = 8) -> dict:
    """Does evaluation sampling show a clip and its reversal mirror frames (the offset clip's frames are then the
    onset clip's in reverse order)? Per clip length, and over the order-only test clips of the demo (seed 0)."""
    from fe_adapter import data, demo
    from fe_adapter.data.sampling import sample_indices
    from fe_adapter.data.synthetic import _clip_plan, _clip_seed

    lengths = range(16, 33)  # the synthetic clips' lengths, in both checkouts
    not_mirrored = [length for length in lengths
                    if sample_indices(length, num_frames)[::-1] != [length - 1 - index
                                                                     for index in sample_indices(length, num_frames)]]
    test_clips = getattr(getattr(demo, "FULL", None), "test_clips", 180)
    pair = [data.SYNTHETIC_CLASSES.index(name) for name in data.ORDER_ONLY_PAIRS[0]]
    classes, size = data.SYNTHETIC_CLASSES, demo.BACKBONE_KWARGS["img_size"]
    pair_lengths = [_clip_plan(_clip_seed(0, "test", index), classes[index % len(classes)], size)[1]
                    for index in range(test_clips) if index % len(classes) in pair]
    return {"num_frames": num_frames, "lengths": [lengths.start, lengths.stop - 1],
            "lengths not mirrored": not_mirrored, "order-only test clips": len(pair_lengths),
            "order-only test clips not mirrored": sum(length in not_mirrored for length in pair_lengths)}


_PRETRAIN = """
import sys, tempfile, time
from pathlib import Path
from fe_adapter import demo
with tempfile.TemporaryDirectory() as folder:
    start = time.perf_counter()
    demo.pretrain_image_classifier(Path(folder), {images}, {epochs}, 0)
    print(time.perf_counter() - start)
"""


def contention(images: int, epochs: int = 3) -> dict:
    """Wall seconds of the image model's pretraining (torch's default threads), alone and as two processes at
    once, with libgomp's default spinning and with GOMP_SPINCOUNT=1000: how a second job on the CPU slows it."""
    code = _PRETRAIN.format(images=images, epochs=epochs)
    results, load = {}, os.getloadavg()[0]
    for spin in ("default", "1000"):
        env = {key: value for key, value in os.environ.items() if key != "GOMP_SPINCOUNT"}
        if spin != "default":
            env["GOMP_SPINCOUNT"] = spin
        for processes in (1, 2):
            started = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True) for _ in range(processes)]
            seconds = [float(process.communicate()[0]) for process in started]
            results[f"GOMP_SPINCOUNT {spin}, {processes} process{'es' if processes > 1 else ''}"] = seconds
    return {"images": images, "epochs": epochs, "wall seconds": results,
            "load average": [load, os.getloadavg()[0]]}  # 1-minute load before and after: was the CPU shared?


def _checkout(package: Path) -> dict:
    """The git commit of the checkout under test, and whether its fe_adapter differs from that commit."""
    def git(*arguments: str) -> str:
        return subprocess.run(["git", "-C", str(package), *arguments], capture_output=True, text=True,
                              check=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "fe_adapter modified": bool(git("status", "--porcelain", "."))}


def _machine() -> dict:
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "load average": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="names the results file, e.g. before or after")
    parser.add_argument("--images", type=int, default=2400, help="image-model training faces (demo: 2400)")
    parser.add_argument("--image-epochs", type=int, help="image-model epochs (default: the checkout demo's)")
    parser.add_argument("--lr", type=float, nargs="+", default=[3e-3, 1e-2], help="video-stage learning rates")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="which experiments to run (a results file of the same label is updated)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import fe_adapter
    from fe_adapter import demo

    epochs = args.image_epochs or getattr(getattr(demo, "FULL", None), "image_epochs", 12)  # 12: the old demo's
    path = args.out / f"demo-diagnosis-{args.label}.json"
    results: dict = json.loads(path.read_text()) if path.is_file() else {}
    results.update({"command": "python scripts/demo_diagnosis.py " + " ".join(argv if argv is not None
                                                                              else sys.argv[1:]),
                    "checkout": _checkout(Path(fe_adapter.__file__).parent), "backbone": demo.BACKBONE_KWARGS,
                    "machine": _machine()})

    def report(part: str, value) -> None:
        results[part] = value
        print(part, json.dumps(value, allow_nan=False), file=sys.stderr)

    with tempfile.TemporaryDirectory() as folder:
        if {"image", "probes", "video"} & set(args.parts):
            image_path, image = image_model(Path(folder), args.images, epochs)
            report("image", image)
        if "probes" in args.parts:
            report("probes", probes(image_path))
        if "video" in args.parts:
            runs = [(lr, augment, "attn") for augment in (True, False) for lr in args.lr]
            runs += [(max(args.lr), augment, "none") for augment in (True, False)]
            report("video", [video(image_path, Path(folder) / f"video_{index}", lr, augment, placement)
                             for index, (lr, augment, placement) in enumerate(runs)])
        if "cnn" in args.parts:
            report("cnn", cnn_reference(args.images))
        if "sampling" in args.parts:
            report("sampling", mirror_sampling())
        if "batches" in args.parts and hasattr(demo, "_image_config"):
            report("image batches", image_batches_ablation(Path(folder), args.images, epochs, [0, 1, 2]))
        if "backbones" in args.parts:
            report("backbones", backbones(Path(folder), args.images))
        if "contention" in args.parts:
            report("contention", contention(args.images))
    args.out.mkdir(parents=True, exist_ok=True)
    # json itself, not fe_adapter's helper: the fe_adapter imported may be an old checkout's (see the docstring)
    path.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    return path


if __name__ == "__main__":
    print(main())

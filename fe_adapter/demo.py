"""A two-minute tour on the CPU with no downloads: adapt a small timm ViT and train it on random clips.

Run with ``make demo`` or ``python -m fe_adapter.demo``.
"""

from __future__ import annotations

import argparse
import time

import torch

import fe_adapter
import fekernels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default="vit_tiny_patch16_224", help="timm ViT name")
    parser.add_argument("--img-size", type=int, default=112, help="frame size in pixels")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (T)")
    parser.add_argument("--clips", type=int, default=2, help="clips per batch (B)")
    parser.add_argument("--steps", type=int, default=3, help="training steps to run")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    model = fe_adapter.create_model(
        args.backbone, num_classes=7, num_frames=args.frames, bottleneck=64,
        backbone_kwargs=dict(img_size=args.img_size),
        class_names=["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"],
    )
    impl = fekernels.resolve_impl("auto", next(model.parameters()))
    print(f"backbone {args.backbone} at {args.img_size}px, {args.clips} clips x {args.frames} frames, "
          f"adapter op implementation: {impl}")
    print(fe_adapter.parameter_report(model))

    clips = torch.randn(args.clips, args.frames, 3, args.img_size, args.img_size)
    labels = torch.randint(0, 7, (args.clips,))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        elapsed = time.perf_counter() - start
        print(f"step {step}: loss {loss.item():.4f}, {args.clips / elapsed:.2f} clips/s")

    conv_norm = sum(a.conv_weight.norm().item() for a in fe_adapter.adapters(model))
    print(f"temporal conv weights moved from zero: total norm {conv_norm:.4f}")


if __name__ == "__main__":
    main()

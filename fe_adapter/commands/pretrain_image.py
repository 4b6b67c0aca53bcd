"""``fe-adapter pretrain-image``: train the image emotion classifier that FE-Adapter starts from (docs/pretrain.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fe_adapter.commands._config import add_config_arguments, add_run_folder_arguments, read_checked, resume_line
from fe_adapter.commands._start_up import imports
from fe_adapter.training.folder import check_run_folder
from fe_adapter.training.image_config import ImageTrainConfig

HELP = "train an image emotion classifier (a timm ViT) on face images, for train's model.checkpoint"
EXAMPLE = ("fe-adapter pretrain-image --config configs/pretrain_folder.yaml data.root=/data/faces "
           "model.checkpoint=vit_base_imagenet.safetensors")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    add_run_folder_arguments(parser, "the run")


def run(args: argparse.Namespace) -> int:
    values, run_config = read_checked(args.config, args.overrides, ImageTrainConfig)
    check_run_folder(Path(run_config.out_dir), args.resume, args.overwrite)

    with imports():  # frozen in the program (fe_adapter.commands._start_up)
        from fe_adapter.training.run import pretrain_image

    pretrain_image(values, resume=args.resume, overwrite=args.overwrite)
    return 0


def interrupted(args: argparse.Namespace, argv: list[str]) -> str:
    out_dir = Path(read_checked(args.config, args.overrides, ImageTrainConfig)[1].out_dir)
    return resume_line("pretrain-image", argv, out_dir, (out_dir / "last.pt").is_file())

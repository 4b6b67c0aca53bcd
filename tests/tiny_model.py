"""A tiny adapted ViT (3 classes, 4 frames, 32 px) saved as files, for the prediction and checkpoint tests."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

import fe_adapter

TINY_VIT = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 48, "num_heads": 2}
TINY_CLASSES = ["happy", "sad", "neutral"]


def write_tiny_model_files(folder: Path) -> tuple[Path, Path]:
    """(adapter checkpoint, backbone weights file), seeded, with random adapters (not the identity they start
    as) so that they change the outputs."""
    torch.manual_seed(0)
    backbone = timm.create_model("vit_tiny_patch16_224", pretrained=False, **TINY_VIT)
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(folder / "backbone.safetensors"))
    model = fe_adapter.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=4, class_names=TINY_CLASSES,
                                    checkpoint=folder / "backbone.safetensors", backbone_kwargs=TINY_VIT,
                                    bottleneck=8)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.normal_(0.0, 0.2)
    return fe_adapter.save_adapters(model, folder / "adapters.safetensors"), folder / "backbone.safetensors"

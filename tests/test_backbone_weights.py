"""Backbone weights from a local file load strictly: every tensor from the file or a CheckpointError naming some.

Wrapper prefixes are stripped when that makes the names match exactly, and the image model's head is dropped;
both are logged. timm alone would leave mismatched tensors at their random initialisation without an error.
"""

from __future__ import annotations

import logging

import pytest
import timm
import torch
from safetensors.torch import save_file

import fe_adapter

TINY = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 48, "num_heads": 2}


def _image_model(num_classes: int = 7) -> dict[str, torch.Tensor]:
    """A trained image classifier's weights (random here, seeded), with its 7-class head."""
    torch.manual_seed(3)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=num_classes, **TINY)
    return {name: tensor.contiguous() for name, tensor in model.state_dict().items()}


def _build(path):
    return fe_adapter.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=2, backbone_kwargs=TINY,
                                   checkpoint=path, bottleneck=4)


def _assert_loaded(model: fe_adapter.VideoClassifier, weights: dict[str, torch.Tensor]) -> None:
    backbone = {name: value for name, value in model.backbone.state_dict().items() if "adapter" not in name}
    assert set(backbone) == {name for name in weights if not name.startswith("head.")}
    assert all(torch.equal(value, weights[name]) for name, value in backbone.items())


@pytest.mark.parametrize("prefix", ["", "model.", "module.", "backbone.", "module.model."])
def test_wrapper_prefixes_are_stripped_and_every_tensor_is_loaded(tmp_path, caplog, prefix):
    weights = _image_model()
    path = tmp_path / "image_model.safetensors"
    save_file({prefix + name: value for name, value in weights.items()}, str(path))
    with caplog.at_level(logging.INFO, logger="fe_adapter"):
        model = _build(path)
    _assert_loaded(model, weights)
    assert ("stripped the prefix" in caplog.text) == bool(prefix)
    assert f"stripped the prefix {prefix!r}" in caplog.text or not prefix
    head_lines = [line for line in caplog.text.splitlines() if "classification head" in line]
    assert len(head_lines) == 1 and "head.weight" in head_lines[0]


def test_a_trainers_nested_torch_checkpoint_loads(tmp_path):
    weights = _image_model()
    torch.save({"epoch": 3, "state_dict": {f"module.{name}": value for name, value in weights.items()}},
               tmp_path / "checkpoint.pth")
    _assert_loaded(_build(tmp_path / "checkpoint.pth"), weights)


@pytest.mark.parametrize("change, fragments", [
    ("shallower", ["12 of the backbone's 30 tensors are not in the file", "blocks.1.attn.proj.bias"]),
    ("deeper", ["12 tensors in the file are not in the backbone", "blocks.2."]),
    ("unknown prefix", ["30 of the backbone's 30 tensors are not in the file", "encoder.blocks.0"]),
    ("partial prefix", ["1 of the backbone's 30 tensors are not in the file (e.g. cls_token)",
                        "model.cls_token"]),
    ("wider", ["tensors differ in shape", "file (64,"]),
])
def test_mismatched_backbone_weights_are_an_error_listing_some(tmp_path, change, fragments):
    weights = _image_model()
    if change == "shallower":
        weights = {name: value for name, value in weights.items() if not name.startswith("blocks.1.")}
    elif change == "deeper":
        weights.update({name.replace("blocks.1.", "blocks.2."): value.clone() for name, value in weights.items()
                        if name.startswith("blocks.1.")})
    elif change == "unknown prefix":
        weights = {f"encoder.{name}": value for name, value in weights.items()}
    elif change == "partial prefix":  # one tensor under a prefix: stripping it would not match exactly
        weights["model.cls_token"] = weights.pop("cls_token")
    elif change == "wider":
        torch.manual_seed(0)
        wide = timm.create_model("vit_tiny_patch16_224", pretrained=False, **{**TINY, "embed_dim": 64})
        weights = {name: tensor.contiguous() for name, tensor in wide.state_dict().items()}
    path = tmp_path / "image_model.safetensors"
    save_file(weights, str(path))
    with pytest.raises(fe_adapter.CheckpointError) as raised:
        _build(path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    assert all(fragment in message for fragment in fragments), message


def test_a_wrapper_with_its_own_head_loads_its_backbone(tmp_path):
    """An image classifier written as ``backbone`` + ``head`` modules: the backbone's tensors, the head dropped."""
    weights = _image_model(num_classes=0)
    wrapped = {f"backbone.{name}": value for name, value in weights.items()}
    wrapped.update({"head.weight": torch.zeros(7, 48), "head.bias": torch.zeros(7)})
    save_file(wrapped, str(tmp_path / "classifier.safetensors"))
    _assert_loaded(_build(tmp_path / "classifier.safetensors"), weights)

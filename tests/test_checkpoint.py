"""Adapter-only checkpoints: exact round trip, small files, clear errors on mismatch."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

import fe_adapter

FRAMES = 3


def _model(**kwargs) -> fe_adapter.VideoClassifier:
    settings = dict(num_classes=4, num_frames=FRAMES, bottleneck=8, backbone_kwargs=dict(img_size=32),
                    class_names=["happy", "sad", "neutral", "angry"], activation="gelu")
    settings.update(kwargs)
    return fe_adapter.create_model("vit_tiny_patch16_224", **settings).eval()


def _randomise_trainable(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.normal_(0.0, 0.1)


def test_round_trip_reproduces_outputs_exactly(tmp_path):
    torch.manual_seed(1)
    trained = _model()
    _randomise_trainable(trained)
    path = fe_adapter.save_adapters(trained, tmp_path / "adapters.safetensors")

    torch.manual_seed(1)  # same backbone weights, fresh adapters and head
    fresh = _model()
    clips = torch.randn(2, FRAMES, 3, 32, 32)
    assert not torch.allclose(fresh(clips), trained(clips))
    fe_adapter.load_adapters(fresh, path)
    torch.testing.assert_close(fresh(clips), trained(clips), rtol=0, atol=0)


def test_checkpoint_holds_only_trainable_tensors_and_config(tmp_path):
    model = _model()
    path = fe_adapter.save_adapters(model, tmp_path / "adapters.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        names = set(handle.keys())
    assert names == {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(".adapter_attn." in n or n.startswith("head.") for n in names)
    config = fe_adapter.read_adapter_config(path)
    assert config["backbone"].split(".")[0] == "vit_tiny_patch16_224"
    assert config["class_names"] == ["happy", "sad", "neutral", "angry"]
    assert config["adapter"]["bottleneck"] == 8 and config["adapter"]["activation"] == "gelu"
    saved = sum(p.numel() for p in model.parameters() if p.requires_grad) * 4
    assert path.stat().st_size < saved + 64 * 1024


def test_checkpoint_loads_into_a_model_with_another_clip_length(tmp_path):
    path = fe_adapter.save_adapters(_model(), tmp_path / "adapters.safetensors")
    fe_adapter.load_adapters(_model(num_frames=8), path)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(bottleneck=16), "adapter.bottleneck: checkpoint has 8, model has 16"),
        (dict(activation=None), "adapter.activation: checkpoint has 'gelu', model has None"),
        (dict(placement="both"), "adapter.placement"),
        (dict(class_names=["a", "b", "c", "d"]), "class_names"),
    ],
)
def test_mismatched_model_is_a_clear_error(tmp_path, kwargs, fragment):
    path = fe_adapter.save_adapters(_model(), tmp_path / "adapters.safetensors")
    with pytest.raises(ValueError, match="saved from a different model") as raised:
        fe_adapter.load_adapters(_model(**kwargs), path)
    assert fragment in str(raised.value)


def test_mismatched_tensors_are_a_clear_error(tmp_path):
    """Same config, but tensors missing, extra or of another shape: refused, nothing half-loaded."""
    from safetensors.torch import save_file

    model = _model()
    path = fe_adapter.save_adapters(model, tmp_path / "adapters.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    tensors.pop("backbone.blocks.0.adapter_attn.up_bias")
    tensors["head.weight"] = torch.zeros(5, 192)
    tensors["extra"] = torch.zeros(1)
    save_file(tensors, str(tmp_path / "broken.safetensors"), metadata=metadata)
    before = {n: p.clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match="does not match the model") as raised:
        fe_adapter.load_adapters(model, tmp_path / "broken.safetensors")
    message = str(raised.value)
    assert "missing adapter tensor backbone.blocks.0.adapter_attn.up_bias" in message
    assert "head.weight: checkpoint shape (5, 192), model shape (4, 192)" in message
    assert "unexpected tensor extra" in message
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_missing_and_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        fe_adapter.load_adapters(_model(), tmp_path / "nope.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an fe-adapter checkpoint"):
        fe_adapter.load_adapters(_model(), tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="has no FE-Adapters"):
        fe_adapter.save_adapters(torch.nn.Linear(2, 2), tmp_path / "linear.safetensors")

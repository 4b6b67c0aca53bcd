"""Adapter-only checkpoints: exact round trip, small files, clear errors on mismatch."""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors import safe_open

import fe_adapter
import fe_adapter.data

FRAMES = 3


def _model(**kwargs) -> fe_adapter.VideoClassifier:
    settings = dict(num_classes=4, num_frames=FRAMES, bottleneck=8, backbone_kwargs=dict(img_size=32),
                    class_names=["happy", "sad", "neutral", "angry"], activation="gelu")
    settings.update(kwargs)
    return fe_adapter.create_model("vit_tiny_patch16_224", random_backbone="checkpoint" not in settings,
                                   **settings).eval()


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
    torch.manual_seed(1)
    trained = _model()
    _randomise_trainable(trained)
    path = fe_adapter.save_adapters(trained, tmp_path / "adapters.safetensors")
    torch.manual_seed(1)
    longer = _model(num_frames=8)
    fe_adapter.load_adapters(longer, path)
    assert longer.num_frames == 8
    assert all(torch.equal(param, trained.get_parameter(name))
               for name, param in longer.named_parameters() if param.requires_grad)
    clip = torch.randn(1, FRAMES, 3, 32, 32)
    longer.num_frames = FRAMES  # the same clip length again: the same outputs
    torch.testing.assert_close(longer(clip), trained(clip), rtol=0, atol=0)


def test_a_checkpoint_without_the_head_is_refused(tmp_path):
    from safetensors.torch import save_file

    model = _model()
    path = fe_adapter.save_adapters(model, tmp_path / "adapters.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys() if not name.startswith("head.")}
    save_file(tensors, str(tmp_path / "headless.safetensors"), metadata=metadata)
    with pytest.raises(fe_adapter.CheckpointError, match="missing head tensor head.bias") as raised:
        fe_adapter.load_adapters(model, tmp_path / "headless.safetensors")
    assert "missing head tensor head.weight" in str(raised.value)


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


def _backbone_file(path, seed: int = 0):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    backbone = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32)
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(path))
    return path


def test_checkpoint_records_where_local_backbone_weights_came_from_and_the_statistics_used(tmp_path):
    import hashlib

    weights = _backbone_file(tmp_path / "my_fer_vit.safetensors")
    model = _model(checkpoint=weights)
    config = fe_adapter.read_adapter_config(fe_adapter.save_adapters(model, tmp_path / "adapters.safetensors"))
    assert config["backbone_weights"] == {"file": "my_fer_vit.safetensors",
                                          "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    assert config["backbone"] == "vit_tiny_patch16_224"  # no timm weights tag: the weights are the file's
    assert config["input"] == {"size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}  # the tag's defaults


def test_user_statistics_are_used_recorded_and_required_when_loading(tmp_path):
    from fe_adapter.data import normalization_for

    weights = _backbone_file(tmp_path / "backbone.safetensors")
    mean, std = (0.52, 0.41, 0.37), (0.25, 0.22, 0.21)
    model = _model(checkpoint=weights, mean=mean, std=std)
    assert normalization_for(model).mean == mean and normalization_for(model).std == std
    path = fe_adapter.save_adapters(model, tmp_path / "adapters.safetensors")
    assert fe_adapter.read_adapter_config(path)["input"]["mean"] == list(mean)

    predictor = fe_adapter.Predictor.from_checkpoint(path, device="cpu", backbone_checkpoint=weights)
    assert normalization_for(predictor.model).mean == mean and normalization_for(predictor.model).std == std
    with pytest.raises(fe_adapter.CheckpointError, match=r"input.mean: checkpoint has \[0.52"):
        fe_adapter.load_adapters(_model(checkpoint=weights), path)  # timm's default statistics
    with pytest.raises(ValueError, match=r"mean must be 3 per-channel values in \[0, 1\]"):
        _model(mean=(124, 116, 104))  # 0..255 scale


def test_other_backbone_weights_than_the_adapters_were_trained_on_give_a_warning(tmp_path):
    trained_on = _backbone_file(tmp_path / "a.safetensors", seed=0)
    path = fe_adapter.save_adapters(_model(checkpoint=trained_on), tmp_path / "adapters.safetensors")
    renamed = tmp_path / "copy.safetensors"
    renamed.write_bytes(trained_on.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fe_adapter.load_adapters(_model(checkpoint=renamed), path)  # the same weights under another name
    with pytest.warns(UserWarning, match=r"trained on the backbone weights from the file a.safetensors"):
        fe_adapter.load_adapters(_model(checkpoint=_backbone_file(tmp_path / "b.safetensors", seed=1)), path)
    with pytest.raises(ValueError, match="trained on the backbone weights in the file a.safetensors"):
        fe_adapter.Predictor.from_checkpoint(path, pretrained=True)


def test_eval_normalises_with_the_statistics_recorded_in_the_checkpoint(tmp_path):
    from fe_adapter.training import Trainer, config_from_dict
    from fe_adapter.training.run import run_evaluation

    weights = _backbone_file(tmp_path / "backbone.safetensors")

    def config(**model):
        return config_from_dict({
            "data": {"dataset": "synthetic", "num_frames": FRAMES, "img_size": 32, "batch_size": 4, "num_workers": 0,
                     "synthetic_train_clips": 8, "synthetic_test_clips": 4},
            "model": {"backbone": "vit_tiny_patch16_224", "backbone_kwargs": {"img_size": 32}, "bottleneck": 8,
                      "checkpoint": str(weights), **model},
            "optim": {"epochs": 1}, "run": {"out_dir": str(tmp_path / "run"), "progress": False,
                                            "tensorboard": False}})

    trainer = Trainer(config(mean=[0.6, 0.5, 0.4], std=[0.2, 0.2, 0.2]))
    trainer.fit()
    assert fe_adapter.data.normalization_for(trainer.model).mean == (0.6, 0.5, 0.4)
    summary = run_evaluation(config(), tmp_path / "run" / "last.safetensors", None)  # no mean/std given
    assert summary["metrics"]["confusion"] == trainer.evaluate().metrics.to_dict()["confusion"]

"""adapt() and create_model() on timm ViT variants (plain, distilled, register tokens, CLIP-style)."""

from __future__ import annotations

import copy

import pytest
import timm
import torch

import fe_adapter
from fe_adapter import FEAdapter
from tests.conftest import train_steps

FRAMES = 3
SMALL = dict(embed_dim=64, depth=2, num_heads=2)
VARIANTS = {
    # name: (timm overrides, expected prefix tokens)
    "vit_tiny_patch16_224": (dict(img_size=32), 1),
    "deit_tiny_distilled_patch16_224": (dict(img_size=32, **SMALL), 2),
    "vit_small_patch14_reg4_dinov2": (dict(img_size=28, **SMALL), 5),
    "vit_base_patch16_clip_224": (dict(img_size=32, **SMALL), 1),
}


def _backbone(name: str) -> torch.nn.Module:
    overrides, _ = VARIANTS[name]
    return timm.create_model(name, pretrained=False, num_classes=5, **overrides).eval()


def _frames(model: torch.nn.Module, clips: int = 2) -> torch.Tensor:
    size = model.patch_embed.img_size
    return torch.randn(clips * FRAMES, 3, *size)


def _randomise_adapters(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for adapter in fe_adapter.adapters(model):
            for param in adapter.parameters():
                param.normal_(0.0, 0.1)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_adapted_model_starts_as_the_image_model(name):
    original = _backbone(name)
    adapted = fe_adapter.adapt(copy.deepcopy(original), FRAMES, bottleneck=16)
    frames = _frames(original)
    torch.testing.assert_close(adapted(frames), original(frames), rtol=0, atol=0)


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("placement, per_block", [("attn", 1), ("mlp", 1), ("both", 2)])
def test_only_adapters_and_head_train_and_counts_match(name, placement, per_block):
    model = fe_adapter.adapt(_backbone(name), FRAMES, bottleneck=16, kernel_size=5, placement=placement)
    depth = len(model.blocks)
    report = fe_adapter.parameter_report(model)

    expected_adapters = depth * per_block * FEAdapter.num_parameters_for(model.embed_dim, 16, 5)
    expected_head = sum(p.numel() for head in fe_adapter.classifier_heads(model) for p in head.parameters())
    assert report.parts["adapters"].trainable == report.parts["adapters"].total == expected_adapters
    assert report.parts["head"].trainable == expected_head
    assert report.parts["backbone"].trainable == 0
    assert report.trainable == expected_adapters + expected_head
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(".adapter_" in n or n.startswith(("head.", "head_dist.")) for n in trainable)
    assert len(fe_adapter.adapters(model)) == depth * per_block


@pytest.mark.parametrize("name", list(VARIANTS))
def test_prefix_tokens_pass_through_every_adapter(name):
    _, prefix = VARIANTS[name]
    model = fe_adapter.adapt(_backbone(name), FRAMES, bottleneck=16, placement="both", activation="gelu")
    assert model.num_prefix_tokens == prefix
    _randomise_adapters(model)
    seen = []

    def check(module, inputs, output):
        (x,) = inputs
        assert torch.equal(output[:, :prefix], x[:, :prefix])
        assert not torch.allclose(output[:, prefix:], x[:, prefix:])
        seen.append(module)

    for adapter in fe_adapter.adapters(model):
        adapter.register_forward_hook(check)
    output = model(_frames(model))
    assert output.shape == (2 * FRAMES, 5)
    assert len(seen) == 2 * len(model.blocks)


@pytest.mark.parametrize("placement", ["attn", "mlp", "both"])
def test_adapters_feed_the_norm_of_their_branch(placement):
    """"attn": the adapter's output is what ``norm1`` (the attention branch) reads, "mlp": what ``norm2`` reads;
    each block's output, rebuilt by hand from its parts, shows the adapted stream also carries the residual."""
    model = fe_adapter.adapt(_backbone("vit_tiny_patch16_224"), FRAMES, bottleneck=8, placement=placement)
    _randomise_adapters(model)
    seen: dict[tuple[int, str], torch.Tensor] = {}

    def keep(key, inputs=True):
        return lambda module, args, output=None: seen.__setitem__(key, (args[0] if inputs else output).detach())

    for index, block in enumerate(model.blocks):
        block.register_forward_pre_hook(keep((index, "block in")))
        block.register_forward_hook(lambda module, args, output, i=index: seen.__setitem__((i, "block out"), output))
        block.norm1.register_forward_pre_hook(keep((index, "norm1 in")))
        block.norm2.register_forward_pre_hook(keep((index, "norm2 in")))
    with torch.no_grad():
        model(_frames(model))
        for index, block in enumerate(model.blocks):
            adapters = fe_adapter.adapters(block)
            before_attn = adapters.pop(0) if placement in ("attn", "both") else None
            before_mlp = adapters.pop(0) if placement in ("mlp", "both") else None
            assert not adapters
            x = seen[index, "block in"]
            if before_attn is not None:
                x = before_attn(x)
            assert torch.equal(seen[index, "norm1 in"], x)
            x = x + block.ls1(block.attn(block.norm1(x)))
            if before_mlp is not None:
                x = before_mlp(x)
            assert torch.equal(seen[index, "norm2 in"], x)
            assert torch.equal(seen[index, "block out"], x + block.ls2(block.mlp(block.norm2(x))))


def test_per_block_dilation_and_settings_are_recorded():
    model = fe_adapter.adapt(_backbone("vit_tiny_patch16_224"), FRAMES, bottleneck=8, dilation=[1, 2] * 6,
                             activation="silu")
    assert [a.dilation for a in fe_adapter.adapters(model)] == [1, 2] * 6
    config = model.fe_adapter_config
    assert config.dilation == (1, 2) * 6 and config.activation == "silu" and config.num_prefix_tokens == 1


def test_adapters_learn_temporal_mixing():
    """With random adapters, a clip's frames influence each other; without adapters they do not."""
    model = fe_adapter.adapt(_backbone("vit_tiny_patch16_224"), FRAMES, bottleneck=8)
    frames = _frames(model, clips=1)
    shuffled = frames.clone()
    shuffled[2] = torch.randn_like(shuffled[2])
    torch.testing.assert_close(model(shuffled)[0], model(frames)[0], rtol=0, atol=0)
    _randomise_adapters(model)
    assert not torch.allclose(model(shuffled)[0], model(frames)[0])


def test_adapt_errors():
    with pytest.raises(TypeError, match="timm VisionTransformer"):
        fe_adapter.adapt(torch.nn.Linear(4, 4), FRAMES)
    model = fe_adapter.adapt(_backbone("vit_tiny_patch16_224"), FRAMES, bottleneck=8)
    with pytest.raises(ValueError, match="already adapted"):
        fe_adapter.adapt(model, FRAMES)
    with pytest.raises(ValueError, match="placement must be one of"):
        fe_adapter.adapt(_backbone("vit_tiny_patch16_224"), FRAMES, placement="before")
    with pytest.raises(ValueError, match=r"one value per block \(12 blocks\), got 2"):
        fe_adapter.adapt(_backbone("vit_tiny_patch16_224"), FRAMES, dilation=[1, 2])
    resnet = timm.create_model("resnet18", pretrained=False)
    with pytest.raises(TypeError, match="ResNet"):
        fe_adapter.adapt(resnet, FRAMES)


def _video_model(**kwargs) -> fe_adapter.VideoClassifier:
    return fe_adapter.create_model("vit_tiny_patch16_224", num_classes=4, num_frames=FRAMES, bottleneck=8,
                                   backbone_kwargs=dict(img_size=32), random_backbone="checkpoint" not in kwargs,
                                   **kwargs)


def test_create_model_classifies_clips_and_learns():
    model = _video_model(class_names=["a", "b", "c", "d"], dropout=0.0)
    clips = torch.randn(4, FRAMES, 3, 32, 32)
    losses = train_steps(model, clips, torch.tensor([0, 1, 2, 3]), steps=15)
    assert losses[-1] < 0.5 * losses[0]
    for adapter in fe_adapter.adapters(model):
        assert adapter.conv_weight.abs().sum() > 0  # the temporal conv moved away from its zero init


def test_create_model_checks_clip_shape_and_frames():
    model = _video_model()
    assert model.class_names == ["class_0", "class_1", "class_2", "class_3"]
    with pytest.raises(ValueError, match=r"5-D \(B, T, 3, H, W\)"):
        model(torch.randn(FRAMES, 3, 32, 32))
    with pytest.raises(ValueError, match="num_frames = 3"):
        model(torch.randn(1, 5, 3, 32, 32))
    model.num_frames = 5
    assert model(torch.randn(1, 5, 3, 32, 32)).shape == (1, 4)
    assert all(a.num_frames == 5 for a in fe_adapter.adapters(model))
    with pytest.raises(ValueError, match="class_names must have num_classes = 4"):
        _video_model(class_names=["a"])


def test_create_model_loads_local_backbone_weights(tmp_path):
    from safetensors.torch import save_file

    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32)
    torch.save(source.state_dict(), tmp_path / "backbone.pth")
    save_file(source.state_dict(), str(tmp_path / "backbone.safetensors"))
    for file in ("backbone.pth", "backbone.safetensors"):
        model = _video_model(checkpoint=tmp_path / file)
        torch.testing.assert_close(model.backbone.patch_embed.proj.weight, source.patch_embed.proj.weight)
        torch.testing.assert_close(model.backbone.blocks[3].mlp.fc1.bias, source.blocks[3].mlp.fc1.bias)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        _video_model(checkpoint=tmp_path / "missing.pth")


def test_create_model_without_weights_warns_unless_a_random_backbone_is_asked_for(tmp_path, recwarn):
    """The CLI refuses a backbone without weights; the Python API builds one, but says so."""
    with pytest.warns(UserWarning, match="the backbone vit_tiny_patch16_224 is randomly initialised \\(neither "
                                         "checkpoint= nor pretrained=True given\\)"):
        fe_adapter.create_model("vit_tiny_patch16_224", num_classes=2, num_frames=FRAMES,
                                backbone_kwargs=dict(img_size=32, depth=1))
    recwarn.clear()
    fe_adapter.create_model("vit_tiny_patch16_224", num_classes=2, num_frames=FRAMES, random_backbone=True,
                            backbone_kwargs=dict(img_size=32, depth=1))
    assert not [warning for warning in recwarn if "randomly initialised" in str(warning.message)]
    with pytest.raises(ValueError, match="random_backbone=True asks for random backbone weights"):
        fe_adapter.create_model("vit_tiny_patch16_224", checkpoint=tmp_path / "w.pth", random_backbone=True,
                                backbone_kwargs=dict(img_size=32, depth=1))

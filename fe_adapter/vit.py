"""``adapt``: insert FE-Adapters into the blocks of a timm Vision Transformer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from fe_adapter.adapter import FEAdapter
from fe_adapter.config import PLACEMENTS, AdapterConfig
from fekernels._checks import check_choice, check_int

_BLOCK_PARTS = ("norm1", "attn", "ls1", "drop_path1", "norm2", "mlp", "ls2", "drop_path2")


class AdaptedBlock(nn.Module):
    """A timm ViT ``Block`` with FE-Adapters on its residual stream.

    It holds the original block's sub-modules under their own names (so backbone state-dict keys are
    unchanged) and runs timm's pre-norm block with the adapters applied to the residual stream
    before the attention branch and/or before the MLP branch::

        x = adapter_attn(x); x = x + drop_path1(ls1(attn(norm1(x))))
        x = adapter_mlp(x);  x = x + drop_path2(ls2(mlp(norm2(x))))
    """

    def __init__(self, block: Block, adapter_attn: FEAdapter | None, adapter_mlp: FEAdapter | None) -> None:
        super().__init__()
        for name in _BLOCK_PARTS:
            setattr(self, name, getattr(block, name))
        self.adapter_attn = adapter_attn
        self.adapter_mlp = adapter_mlp

    def forward(self, x: torch.Tensor, **attn_kwargs) -> torch.Tensor:
        if self.adapter_attn is not None:
            x = self.adapter_attn(x)
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x), **attn_kwargs)))
        if self.adapter_mlp is not None:
            x = self.adapter_mlp(x)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


def classifier_heads(model: nn.Module) -> list[nn.Module]:
    """The classifier head modules of ``model`` and its sub-modules, by timm's ``get_classifier()``.

    Distilled DeiT returns a (head, head_dist) pair; a VideoClassifier follows the same convention.
    """
    heads: list[nn.Module] = []
    for module in model.modules():
        if hasattr(module, "get_classifier"):
            found = module.get_classifier()
            heads += [head for head in (found if isinstance(found, tuple) else (found,)) if isinstance(head, nn.Module)]
    return heads


def _check_supported(model: nn.Module) -> None:
    if not isinstance(model, VisionTransformer):
        raise TypeError(
            f"adapt() supports timm VisionTransformer models (vit_*, deit_*, vit_*_reg*, vit_*_clip_*), "
            f"got {type(model).__name__}"
        )
    for index, block in enumerate(model.blocks):
        if isinstance(block, AdaptedBlock):
            raise ValueError("model is already adapted: call adapt() once per model")
        if type(block).forward is not Block.forward:
            raise TypeError(
                f"adapt() supports timm's pre-norm ViT Block; block {index} is {type(block).__name__}, "
                "whose forward differs"
            )


def _per_block_dilation(dilation: int | Sequence[int], depth: int) -> tuple[int, ...]:
    if isinstance(dilation, int) and not isinstance(dilation, bool):
        return (dilation,) * depth
    dilations = tuple(dilation)
    if len(dilations) != depth:
        raise ValueError(
            f"dilation must be an int or one value per block ({depth} blocks), got {len(dilations)} values"
        )
    return dilations


def adapt(
    model: VisionTransformer,
    num_frames: int,
    bottleneck: int = 384,
    kernel_size: int = 3,
    dilation: int | Sequence[int] = 1,
    placement: str = "attn",
    activation: str | None = None,
    freeze: bool = True,
    impl: str = "auto",
) -> VisionTransformer:
    """Turn a timm image ViT into a video model by inserting one FE-Adapter per block (in place).

    The adapted model takes (B*T, 3, H, W) frames, the T frames of each clip consecutive. Prefix tokens
    (cls, distillation and register tokens: ``model.num_prefix_tokens``) pass through the adapters
    unchanged. New adapters are the identity, so the adapted model starts out computing exactly what
    the image model computed.

    Args:
        model: a timm ``VisionTransformer`` (vit_*, deit_*, vit_*_reg*, vit_*_clip_* and relatives).
        num_frames: T, the frames per clip.
        bottleneck: R, the adapter width (384 on ViT-B gives ~7.1 M adapter parameters).
        kernel_size: K, the odd temporal kernel size.
        dilation: one temporal dilation for all blocks, or a sequence with one value per block.
        placement: "attn" (before the attention branch, the paper's placement), "mlp", "both", or "none"
            (no adapters: the frame-averaging baseline with the same frozen backbone).
        activation: None, "gelu", "silu" or "relu" after the temporal convolution.
        freeze: if True, only the adapters and the classifier head keep ``requires_grad``.
        impl: op implementation, see ``fekernels.IMPLS``.

    Returns:
        ``model`` itself, with an ``fe_adapter_config`` attribute recording the settings.
    """
    _check_supported(model)
    check_choice("placement", placement, PLACEMENTS)
    dilations = _per_block_dilation(dilation, len(model.blocks))
    config = AdapterConfig(
        num_frames=num_frames,
        bottleneck=bottleneck,
        kernel_size=kernel_size,
        dilation=dilations,
        placement=placement,
        activation=activation,
        num_prefix_tokens=model.num_prefix_tokens,
    )

    if freeze:
        model.requires_grad_(False)
        for head in classifier_heads(model):
            head.requires_grad_(True)

    like = next(model.parameters())

    def new_adapter(block_dilation: int) -> FEAdapter:
        adapter = FEAdapter(
            model.embed_dim, bottleneck, num_frames, kernel_size=kernel_size, dilation=block_dilation,
            activation=activation, num_prefix_tokens=model.num_prefix_tokens, impl=impl,
        )
        return adapter.to(device=like.device, dtype=like.dtype)

    before_attn, before_mlp = placement in ("attn", "both"), placement in ("mlp", "both")
    if before_attn or before_mlp:
        for index, block in enumerate(model.blocks):
            adapter_attn = new_adapter(dilations[index]) if before_attn else None
            adapter_mlp = new_adapter(dilations[index]) if before_mlp else None
            model.blocks[index] = AdaptedBlock(block, adapter_attn, adapter_mlp)
    model.fe_adapter_config = config
    return model


def adapters(model: nn.Module) -> list[FEAdapter]:
    """Every FEAdapter inside ``model``, in module order."""
    return [module for module in model.modules() if isinstance(module, FEAdapter)]


def set_num_frames(model: nn.Module, num_frames: int) -> None:
    """Set T for every adapter in ``model`` (e.g. to predict on clips of another length)."""
    check_int("num_frames", num_frames, 1)
    for module in model.modules():
        if isinstance(module, FEAdapter):
            module.num_frames = num_frames
        config = getattr(module, "fe_adapter_config", None)
        if isinstance(config, AdapterConfig):
            module.fe_adapter_config = dataclasses.replace(config, num_frames=num_frames)

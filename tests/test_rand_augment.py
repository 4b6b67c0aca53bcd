"""timm's RandAugment on tensors (``fe_adapter.data.rand_augment``): each operation against timm's PIL one on a
rendered face, and the whole policy drawing what timm's draws from the same seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from fe_adapter import data
from fe_adapter.data.rand_augment import _tensor_functions, tensorize

FILL = {"fillcolor": (124, 116, 104), "resample": Image.BICUBIC}


def _face(size: int = 64) -> tuple[Image.Image, torch.Tensor]:
    frame = np.ascontiguousarray(data.render_clip(0, "happy", size=size)[0])
    return Image.fromarray(frame), torch.from_numpy(frame.copy()).permute(2, 0, 1).contiguous()


def _operations():
    from timm.data import auto_augment as aa

    exact = [(aa.auto_contrast, ()), (aa.equalize, ()), (aa.invert, ()), (aa.posterize, (2,)), (aa.posterize, (8,)),
             (aa.solarize, (100,)), (aa.solarize, (256,)), (aa.solarize_add, (90,)), (aa.color, (1.7,)),
             (aa.color, (0.2,)), (aa.contrast, (1.7,)), (aa.contrast, (0.3,)), (aa.brightness, (1.5,)),
             (aa.sharpness, (1.8,)), (aa.sharpness, (0.2,))]
    geometric = [(aa.rotate, (25.0,)), (aa.rotate, (-12.0,)), (aa.shear_x, (0.25,)), (aa.shear_y, (-0.25,)),
                 (aa.translate_x_rel, (0.3,)), (aa.translate_y_rel, (-0.3,)), (aa.translate_x_abs, (7,)),
                 (aa.translate_y_abs, (-5,))]
    return [(fn, args, False) for fn, args in exact] + [(fn, args, True) for fn, args in geometric]


@pytest.mark.parametrize("fn, args, geometric", _operations(), ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_operation_matches_timms_pil_operation(fn, args, geometric):
    pil, tensor = _face()
    expected = torch.from_numpy(np.array(fn(pil, *args, **dict(FILL)))).permute(2, 0, 1).float()
    got = _tensor_functions()[fn](tensor, *args, **dict(FILL))
    assert got.dtype == torch.uint8 and got.shape == tensor.shape
    difference = (got.float() - expected).abs()
    if geometric:  # bicubic kernels (PIL's a = -0.5, torch's -0.75) and the fill's edge: a level on average
        assert difference.mean() < 1.0 and difference.flatten().quantile(0.99) <= 8, difference.mean()
    else:  # rounding, PIL's integer grey level
        assert difference.max() <= 1


def test_the_tensor_policy_draws_what_timms_draws_from_the_same_seeds():
    from timm.data.auto_augment import rand_augment_transform

    policy = rand_augment_transform("rand-m9-mstd0.5", {"img_mean": FILL["fillcolor"],
                                                        "interpolation": Image.BICUBIC})
    on_tensors = tensorize(policy)
    pil, tensor = _face()
    for seed in range(20):
        random.seed(seed)
        np.random.seed(seed)
        expected = torch.from_numpy(np.array(policy(pil))).permute(2, 0, 1).float()
        random.seed(seed)
        np.random.seed(seed)
        got = on_tensors(tensor).float()
        assert (got - expected).abs().mean() < 1.5, seed  # another draw would differ by tens of levels


def test_an_operation_without_a_tensor_version_is_refused():
    from timm.data.auto_augment import rand_augment_transform

    policy = rand_augment_transform("rand-m9-mstd0.5", {})
    policy.ops[0].aug_fn = lambda image, **_: image
    with pytest.raises(ValueError, match="RandAugment operation AutoContrast has no tensor version"):
        tensorize(policy)

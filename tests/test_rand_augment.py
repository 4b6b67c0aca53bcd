"""timm's RandAugment on batches of tensors (``fe_adapter.data.rand_augment``): each operation against timm's PIL
one on a rendered face, a batch against its images one by one, and the whole policy (and torchvision's colour
jitter) drawing what they draw from the same seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from fe_adapter import data
from fe_adapter.data.rand_augment import (
    Step,
    _Drawing,
    _kinds,
    _Recorder,
    apply_steps,
    draw_colour_jitter,
    draw_rand_augment,
    drawing_policy,
)

FILL = {"fillcolor": (124, 116, 104), "resample": Image.BICUBIC}


def _face(size: int = 64, seed: int = 0) -> tuple[Image.Image, torch.Tensor]:
    frame = np.ascontiguousarray(data.render_clip(seed, data.SYNTHETIC_CLASSES[seed % 4], size=size)[0])
    return Image.fromarray(frame), torch.from_numpy(frame.copy()).permute(2, 0, 1).contiguous()


def _step(fn, args, height: int = 64, width: int = 64) -> Step:
    """The step timm's operation ``fn`` with ``args`` (and timm's fill) writes down for one image."""
    return _Recorder(fn, _kinds()[fn])(_Drawing(height, width), *args, **dict(FILL)).steps[0]


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
    got = apply_steps(tensor[None], [[_step(fn, args)]])[0]
    assert got.dtype == torch.uint8 and got.shape == tensor.shape
    difference = (got.float() - expected).abs()
    if geometric:  # bicubic kernels (PIL's a = -0.5, torch's -0.75) and the fill's edge: a level on average
        assert difference.mean() < 1.0 and difference.flatten().quantile(0.99) <= 8, difference.mean()
    else:  # rounding, PIL's integer grey level
        assert difference.max() <= 1


def test_a_batch_gets_what_each_of_its_images_gets_alone():
    """Steps of several kinds over a batch of different faces, some images with fewer steps: each image as it comes
    out alone (each kind runs once per layer on the images that drew it, and goes back to their places), the
    batch given left unchanged."""
    from timm.data import auto_augment as aa

    faces = torch.stack([_face(seed=seed)[1] for seed in range(6)])
    steps = [[_step(aa.rotate, (20.0,)), _step(aa.posterize, (3,))], [_step(aa.solarize, (90,))],
             [_step(aa.rotate, (-7.0,)), _step(aa.contrast, (1.6,))], [],
             [_step(aa.color, (0.3,)), _step(aa.posterize, (5,))], [_step(aa.shear_x, (0.2,)), _step(aa.invert, ())]]
    batch = apply_steps(faces, steps)
    assert torch.equal(faces, torch.stack([_face(seed=seed)[1] for seed in range(6)]))  # the input left as it was
    for face, alone, out in zip(faces, steps, batch, strict=True):
        assert torch.equal(out, apply_steps(face[None].clone(), [alone])[0])
    assert torch.equal(batch[3], faces[3])
    with pytest.raises(ValueError, match="5 lists of steps for a batch of 6 images"):
        apply_steps(faces, steps[:5])


def test_the_tensor_policy_draws_what_timms_draws_from_the_same_seeds():
    from timm.data.auto_augment import rand_augment_transform

    policy = rand_augment_transform("rand-m9-mstd0.5", {"img_mean": FILL["fillcolor"],
                                                        "interpolation": Image.BICUBIC})
    drawing = drawing_policy(policy)
    pil, tensor = _face()
    for seed in range(20):
        random.seed(seed)
        np.random.seed(seed)
        expected = torch.from_numpy(np.array(policy(pil))).permute(2, 0, 1).float()
        random.seed(seed)
        np.random.seed(seed)
        got = apply_steps(tensor[None], [draw_rand_augment(drawing, 64, 64)])[0].float()
        assert (got - expected).abs().mean() < 1.5, seed  # another draw would differ by tens of levels


def test_the_colour_jitter_draws_what_torchvisions_draws_from_the_same_seeds():
    from torchvision import transforms

    jitter = transforms.ColorJitter(0.4, 0.4, 0.4)
    _, tensor = _face()
    for seed in range(10):
        torch.manual_seed(seed)
        expected = jitter(tensor).float()
        torch.manual_seed(seed)
        got = apply_steps(tensor[None], [draw_colour_jitter(jitter)])[0].float()
        assert (got - expected).abs().max() <= 1, seed
    with pytest.raises(ValueError, match="colour jitter of the hue has no tensor version"):
        draw_colour_jitter(transforms.ColorJitter(0.4, 0.4, 0.4, 0.1))


def test_an_operation_without_a_tensor_version_is_refused():
    from timm.data.auto_augment import rand_augment_transform

    policy = rand_augment_transform("rand-m9-mstd0.5", {})
    policy.ops[0].aug_fn = lambda image, **_: image
    with pytest.raises(ValueError, match="RandAugment operation AutoContrast has no tensor version"):
        drawing_policy(policy)

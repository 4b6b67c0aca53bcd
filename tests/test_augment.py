"""``ClipAugment``: one draw of crop, flip and colour jitter per clip, the same for all its frames, and equal to
the operations it folds into one colour matrix, computed step by step in float64."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from fe_adapter import data
from fe_adapter.data.transforms import AugmentParameters, ClipAugment

NORM = data.Normalization(size=32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def _clip(frames: int = 5, seed: int = 0, height: int = 40, width: int = 52) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (frames, 3, height, width), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("seed", range(6))
def test_augmentation_is_identical_across_the_frames_of_a_clip(seed):
    frame = _clip(1, seed)[0]
    clip = frame.expand(8, 3, 40, 52).contiguous()
    torch.manual_seed(seed)
    out = data.train_transform(NORM)(clip)
    assert out.shape == (8, 3, 32, 32) and out.dtype == torch.float32
    assert all(torch.equal(out[0], out[index]) for index in range(1, 8))


def test_the_same_parameters_give_each_frame_what_it_would_get_alone():
    augment = ClipAugment(NORM)
    clip = _clip(4, seed=3)
    parameters = AugmentParameters((3, 5, 30, 36), True, brightness=1.2, contrast=1.0, saturation=0.75)
    whole = augment.apply(clip, parameters)
    for index in range(4):  # contrast 1: the clip-level mean grey plays no part
        torch.testing.assert_close(whole[index], augment.apply(clip[index], parameters), rtol=0, atol=1e-5)


def _reference(clip: torch.Tensor, parameters: AugmentParameters, normalization: data.Normalization) -> torch.Tensor:
    """Crop, flip, saturation, contrast (against the mean grey of every 4th row and column), brightness, clamp
    and normalisation, one step at a time in float64."""
    top, left, height, width = parameters.crop
    size = normalization.size
    pixels = TF.resized_crop(clip, top, left, height, width, [size, size], antialias=True)
    if parameters.flip:
        pixels = pixels.flip(-1)
    x = pixels.double() / 255
    weights = torch.tensor([0.2989, 0.587, 0.114], dtype=torch.float64).view(3, 1, 1)
    grey = (x * weights).sum(dim=-3, keepdim=True)
    x = parameters.saturation * x + (1 - parameters.saturation) * grey
    mean_grey = ((x[..., ::4, ::4] * weights).sum(dim=-3)).mean()
    x = parameters.contrast * x + (1 - parameters.contrast) * mean_grey
    x = (parameters.brightness * x).clamp(0, 1)
    mean = torch.tensor(normalization.mean, dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(normalization.std, dtype=torch.float64).view(3, 1, 1)
    return (x - mean) / std


@pytest.mark.parametrize("parameters", [
    AugmentParameters((0, 0, 40, 52), False),
    AugmentParameters((4, 7, 28, 33), True, brightness=1.3, contrast=0.7, saturation=1.25),
    AugmentParameters((10, 2, 30, 45), False, brightness=0.75, contrast=1.28, saturation=0.71),
])
def test_augmentation_matches_the_step_by_step_float64_operations(parameters):
    clip = _clip(3, seed=11)
    out = ClipAugment(NORM).apply(clip, parameters)
    expected = _reference(clip, parameters, NORM)
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=2e-6)


def test_jittered_pixels_are_clamped_to_the_normalised_range():
    bright = torch.full((2, 3, 32, 32), 250, dtype=torch.uint8)
    out = ClipAugment(NORM).apply(bright, AugmentParameters((0, 0, 32, 32), False, brightness=1.3))
    ceiling = (1 - torch.tensor(NORM.mean)) / torch.tensor(NORM.std)
    torch.testing.assert_close(out, ceiling.view(3, 1, 1).expand_as(out), rtol=0, atol=1e-6)


def test_parameters_are_drawn_per_clip_within_their_ranges():
    augment = ClipAugment(NORM, scale=(0.5, 1.0), flip=0.5, jitter=0.3)
    torch.manual_seed(0)
    draws = [augment.sample(40, 52) for _ in range(200)]
    assert 60 < sum(draw.flip for draw in draws) < 140
    for draw in draws:
        top, left, height, width = draw.crop
        assert 0 <= top <= 40 - height and 0 <= left <= 52 - width
        assert 0.5 * 40 * 52 * 0.9 <= height * width <= 40 * 52
        assert all(0.7 <= factor <= 1.3 for factor in (draw.brightness, draw.contrast, draw.saturation))
    assert len({draw.crop for draw in draws}) > 100 and len({draw.brightness for draw in draws}) == 200
    still = ClipAugment(NORM, scale=(1.0, 1.0), ratio=(52 / 40, 52 / 40), flip=0.0, jitter=0.0).sample(40, 52)
    assert still == AugmentParameters((0, 0, 40, 52), False, 1.0, 1.0, 1.0)


def test_without_jitter_the_normalisation_is_torchvisions():
    clip = _clip(2, seed=5, height=32, width=32)
    identity = AugmentParameters((0, 0, 32, 32), False)
    expected = v2.Normalize(NORM.mean, NORM.std)(v2.ToDtype(torch.float32, scale=True)(clip))
    torch.testing.assert_close(ClipAugment(NORM).apply(clip, identity), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(data.eval_transform(NORM)(clip), expected, rtol=0, atol=1e-5)


def test_transforms_refuse_float_pixels():
    with pytest.raises(TypeError, match="clip transforms take uint8 pixels"):
        data.eval_transform(NORM)(torch.rand(2, 3, 32, 32))

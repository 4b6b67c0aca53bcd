"""``BatchAugment``: the training augmentation of ``ClipAugment`` applied to a whole batch on the training device.

The loader then only decodes (and brings frames to the input size where they are not already): the training
samples are uint8 clips, a quarter of the bytes of float ones to pass between processes and to the GPU, and the
random resized crop, flip, colour jitter and normalisation run on the batch where the model runs
(``python -m benchmarks.loading`` counts what they cost there, per clip). Each clip of the batch gets its own draw
(``ClipAugment.sample``), applied to all its frames alike; the crop and resize are torchvision's
(``resized_crop`` on uint8, one call per clip), the colour jitter and normalisation are the same folded scale,
offset and grey blend as ``ClipAugment``'s, computed for the whole batch at once with per-clip factors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms.v2 import functional as TF

from fe_adapter.data.parameters import on_device
from fe_adapter.data.transforms import _GREY, AugmentParameters, ClipAugment, Normalization

_IMAGENET_224 = Normalization()


def prepare_transform(normalization: Normalization = _IMAGENET_224) -> Callable[[torch.Tensor], torch.Tensor]:
    """The per-sample part of batch augmentation: a (..., 3, H, W) uint8 clip brought to ``size`` x ``size``
    (the shorter side resized to ``size`` and the centre crop, as ``eval_transform`` does; nothing at all for
    frames already of that size), still uint8, for ``BatchAugment`` to crop, flip and colour on the batch."""
    return _Square(normalization.size)


class _Square:
    """``prepare_transform``'s transform (an object, not a closure, so that datasets holding it can be sent to
    loader processes started by spawn or forkserver)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.dtype != torch.uint8:
            raise TypeError(f"clip transforms take uint8 pixels (0..255), got {clip.dtype}")
        if tuple(clip.shape[-2:]) == (self.size, self.size):
            return clip
        clip = TF.resize(clip, self.size, antialias=True)
        return TF.center_crop(clip, [self.size, self.size])


class BatchAugment:
    """Random resized crop, horizontal flip and colour jitter drawn once per clip, then the normalisation, on a
    batch: (B, T, 3, H, W) or (B, 3, H, W) uint8 in (on any device), (B, T, 3, size, size) or (B, 3, size, size)
    float32 out on the same device. The arguments and the distribution of the draws are ``ClipAugment``'s
    (``sample``, from torch's global generator, which the trainer seeds at each epoch), and so is the result of a
    given draw (``apply``, to float32 rounding).

    On a GPU (``batched``, by default on any device but the CPU) the colour jitter and normalisation are a few
    operations over the whole batch with a factor per clip; on the CPU the batch is augmented clip by clip with
    ``ClipAugment.apply``, whose in-place steps with scalar factors cost a core less than the batched ones (the
    temporaries of broadcasting per-clip factors), so augmenting there costs what it did in the loader."""

    def __init__(self, normalization: Normalization = _IMAGENET_224, scale: tuple[float, float] = (0.7, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: float = 0.5, jitter: float = 0.3,
                 batched: bool | None = None) -> None:
        self.clip_augment = ClipAugment(normalization, scale=scale, ratio=ratio, flip=flip, jitter=jitter)
        self.normalization = normalization
        self.batched = batched

    def sample(self, batch: int, height: int, width: int) -> list[AugmentParameters]:
        """One draw per clip of a batch of ``batch`` clips with frames of ``height`` x ``width``."""
        return [self.clip_augment.sample(height, width) for _ in range(batch)]

    def apply(self, clips: torch.Tensor, parameters: list[AugmentParameters]) -> torch.Tensor:
        """``clips[i]`` cropped, resized, flipped, colour-jittered and normalised with ``parameters[i]``."""
        if clips.dtype != torch.uint8:
            raise TypeError(f"BatchAugment takes uint8 pixels (0..255), got {clips.dtype}")
        if clips.ndim not in (4, 5) or clips.shape[-3] != 3:
            raise ValueError(f"BatchAugment takes (B, T, 3, H, W) or (B, 3, H, W) clips, got {tuple(clips.shape)}")
        if len(parameters) != len(clips):
            raise ValueError(f"{len(parameters)} draws for a batch of {len(clips)} clips")
        batched = clips.device.type != "cpu" if self.batched is None else self.batched
        if not batched:  # on the CPU, clip by clip: scalar factors in place on a clip's channels are faster there
            return torch.stack([self.clip_augment.apply(clip, draw) for clip, draw in zip(clips, parameters,
                                                                                             strict=True)])
        size = self.normalization.size
        cropped = torch.empty((*clips.shape[:-2], size, size), dtype=torch.uint8, device=clips.device)
        for index, draw in enumerate(parameters):
            cropped[index] = TF.resized_crop(clips[index], *draw.crop, [size, size], antialias=True)
        flips = [index for index, draw in enumerate(parameters) if draw.flip]
        if flips:
            chosen = on_device(flips, clips.device, torch.int64)
            cropped[chosen] = cropped[chosen].flip(-1)
        return self._colour(cropped, parameters)

    def _colour(self, clips: torch.Tensor, parameters: list[AugmentParameters]) -> torch.Tensor:
        """``ClipAugment``'s folded colour jitter and normalisation with a factor per clip: per channel,
        ``x * scale * s + grey * scale * (1 - s) + (offset - mean) / std``, clamped to the normalised 0..1 range
        (with no jitter, the plain normalisation)."""
        mean, std = self.normalization.mean, self.normalization.std
        pixels = clips.movedim(-3, 1).to(torch.float32, memory_format=torch.contiguous_format)  # (B, 3, [T,] H, W)
        if self.clip_augment.jitter == 0:
            for channel in range(3):
                pixels[:, channel].mul_(1 / (255 * std[channel])).add_(-mean[channel] / std[channel])
            return pixels.movedim(1, -3)
        # per-clip factors on the clips' device (float32: MPS has no float64), never copied back to the host
        factors = on_device([[d.saturation, d.contrast, d.brightness] for d in parameters], clips.device)
        s, c, b = factors.unbind(1)
        # the mean grey level after the saturation blend, from every 4th row and column, as ClipAugment takes it
        sample = clips[..., ::4, ::4].movedim(-3, 1).reshape(len(clips), 3, -1).float()
        channel_means = sample.mean(dim=2) / 255  # (B, 3)
        grey_weights = on_device(_GREY, clips.device)
        saturated = s[:, None] * channel_means + (1 - s[:, None]) * (channel_means @ grey_weights)[:, None]
        offset, gain = b * (1 - c) * (saturated @ grey_weights), b * c
        shape = (len(clips),) + (1,) * (pixels.ndim - 2)  # per clip, broadcast over ([T,] H, W)
        grey = torch.mul(pixels[:, 0], _GREY[0]).add_(pixels[:, 1], alpha=_GREY[1]).add_(pixels[:, 2], alpha=_GREY[2])

        def per_clip(values: torch.Tensor) -> torch.Tensor:
            return values.view(shape)

        for channel in range(3):
            scale = gain / (255 * std[channel])
            values = pixels[:, channel].mul_(per_clip(scale * s))
            values.add_(grey * per_clip(scale * (1 - s)))
            values.add_(per_clip((offset - mean[channel]) / std[channel]))
            values.clamp_(-mean[channel] / std[channel], (1 - mean[channel]) / std[channel])
        return pixels.movedim(1, -3)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        return self.apply(clips, self.sample(len(clips), *clips.shape[-2:]))

"""Which frames of a clip to read: segment, uniform and consecutive-with-stride sampling, and views.

All functions return frame indices into a clip of ``available`` frames. Clips shorter than the number
of frames asked for repeat frames in temporal order (each frame used about equally often).
"""

from __future__ import annotations

import torch

SAMPLINGS: tuple[str, ...] = ("segment", "uniform", "consecutive")


def _segment(available: int, count: int, offset: torch.Tensor) -> list[int]:
    """One frame per equal segment of the clip; ``offset`` in [0, 1) is the position inside each segment."""
    edges = torch.linspace(0, available, count + 1, dtype=torch.float64)
    positions = edges[:-1] + offset * (edges[1:] - edges[:-1])
    return positions.floor().long().clamp_(0, available - 1).tolist()


def sample_indices(
    available: int,
    count: int,
    mode: str = "segment",
    train: bool = False,
    stride: int = 1,
    view: int = 0,
    num_views: int = 1,
    generator: torch.Generator | None = None,
) -> list[int]:
    """``count`` frame indices from a clip of ``available`` frames.

    Args:
        available: frames in the clip (>= 1).
        count: frames to return (T).
        mode: "segment" (TSN-style: one frame per equal segment; training picks a random frame in each
            segment, evaluation the middle one), "uniform" (evenly spaced over the whole clip) or
            "consecutive" (``count`` frames ``stride`` apart: a random window when training, the centred
            one for evaluation).
        train: random sampling (training) or deterministic (evaluation).
        stride: step between frames in "consecutive" mode.
        view, num_views: for multi-view evaluation, which of ``num_views`` evenly spread temporal views.
        generator: random source for training (default: torch's global generator, seeded per worker).
    """
    if available < 1:
        raise ValueError(f"available must be >= 1 frame, got {available}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if mode not in SAMPLINGS:
        raise ValueError(f"sampling mode must be one of {SAMPLINGS}, got {mode!r}")
    if not 0 <= view < num_views:
        raise ValueError(f"view must be in 0..{num_views - 1}, got {view}")

    if mode == "segment":
        if train:
            offset = torch.rand(count, generator=generator, dtype=torch.float64)
        else:
            offset = torch.full((count,), (view + 0.5) / num_views, dtype=torch.float64)
        return _segment(available, count, offset)
    if mode == "uniform":
        if num_views > 1:  # views shift the evenly spaced frames, like segment views
            return _segment(available, count, torch.full((count,), (view + 0.5) / num_views, dtype=torch.float64))
        return torch.linspace(0, available - 1, count).round().long().tolist()

    window = (count - 1) * stride + 1
    room = max(available - window, 0)
    if train:
        start = int(torch.randint(0, room + 1, (1,), generator=generator))
    elif num_views == 1:
        start = room // 2
    else:
        start = round(room * view / (num_views - 1))
    indices = torch.arange(count) * stride + start
    if window > available:  # too short for the window: spread the clip's frames over it in order
        indices = torch.arange(count) * available // count
    return indices.tolist()

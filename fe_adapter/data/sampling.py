"""Which frames of a clip to read: segment, uniform and consecutive-with-stride sampling, and views.

All functions return frame indices into a clip of ``available`` frames. Clips shorter than the number
of frames asked for repeat frames in temporal order (each frame used about equally often).

Segment and uniform sampling are mirror-symmetric: a clip played backwards gets its frames in reverse
order (evaluation), or with the same probabilities (training). Positions are exact fractions, and a
position on the boundary of two frames takes the one nearer the clip's middle; otherwise a clip and its
reversal would be shown different frames, a cue that has nothing to do with their order. (The one
exception: an odd number of frames from an even-length clip, whose middle position has no middle frame.)
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

SAMPLINGS: tuple[str, ...] = ("segment", "uniform", "consecutive")


def _frames_at(times: list[Fraction], available: int) -> list[int]:
    """The frame shown at each time (frame p spans [p, p + 1)); a time on the boundary between two frames
    takes the one nearer the middle of the clip, so that time ``available - x`` gets the mirror frame of x."""
    frames = []
    for time in times:
        frame = math.floor(time)
        if frame == time and 2 * time > available:  # a boundary in the second half: the earlier frame
            frame -= 1
        frames.append(min(max(frame, 0), available - 1))
    return frames


def _segment(available: int, count: int, offsets: list[float] | list[Fraction]) -> list[int]:
    """One frame per equal segment of the clip; ``offsets[i]`` in [0, 1) is the position inside segment i.

    Offsets ``o`` and ``[1 - x for x in reversed(o)]`` give mirror frames: with offsets drawn uniformly
    (training), a clip and its reversal are shown mirror frames with the same probability.
    """
    times = [(index + Fraction(offset)) * available / count for index, offset in enumerate(offsets)]
    return _frames_at(times, available)


def _middles(count: int, view: int, num_views: int) -> list[Fraction]:
    """Evaluation offsets inside each segment: the middle, or evenly spread views, as exact fractions."""
    return [Fraction(2 * view + 1, 2 * num_views)] * count


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
            return _segment(available, count, torch.rand(count, generator=generator, dtype=torch.float64).tolist())
        return _segment(available, count, _middles(count, view, num_views))
    if mode == "uniform":
        if num_views > 1:  # views shift the evenly spaced frames, like segment views
            return _segment(available, count, _middles(count, view, num_views))
        if count == 1:  # the middle frame
            return _frames_at([Fraction(available, 2)], available)
        # frame centres i * (available - 1) / (count - 1), rounded to the nearest frame
        return _frames_at([Fraction(index * (available - 1), count - 1) + Fraction(1, 2) for index in range(count)],
                          available)

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

"""Sliding windows over a video: where they start and which frames each one samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fe_adapter.data.sampling import sample_indices


@dataclass(frozen=True)
class WindowPlan:
    """One window: [start, end) seconds and the ascending frame indices it samples."""

    start: float
    end: float
    indices: tuple[int, ...]


def window_starts(duration: float, window: float, stride: float) -> list[float]:
    """Start times of windows of ``window`` seconds every ``stride`` seconds, the last one ending at the end
    of the video (one window if the video is shorter than a window)."""
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be > 0 seconds, got {window} and {stride}")
    count = max(1, int(np.floor((duration - window) / stride + 1e-9)) + 1)
    starts = [index * stride for index in range(count)]
    if starts[-1] + window < duration - 1e-6:  # one more window, flush with the end, so the end is seen
        starts.append(duration - window)
    return starts


def plan_windows(frame_count: int, fps: float, num_frames: int, window: float, stride: float) -> list[WindowPlan]:
    """The windows of a video of ``frame_count`` frames at ``fps``, each sampling ``num_frames`` frames (the
    middle frame of each of ``num_frames`` equal segments, as evaluation samples clips).

    Windows come in start order and both their first and last indices never decrease, so a reader going
    through the video once can run each window as soon as its last frame is in and drop frames behind the
    first frame of the next window. The window flush with the end is left out when it spans the same frames
    as the one before it (it starts less than half a frame later).
    """
    duration = frame_count / fps
    plans: list[WindowPlan] = []
    spans: list[tuple[int, int]] = []
    for start in window_starts(duration, window, stride):
        first = min(frame_count - 1, int(round(start * fps)))
        last = max(first + 1, min(frame_count, int(round((start + window) * fps))))
        if spans and spans[-1] == (first, last):
            continue
        spans.append((first, last))
        indices = tuple(first + offset for offset in sample_indices(last - first, num_frames))
        plans.append(WindowPlan(start, min(start + window, duration), indices))
    return plans

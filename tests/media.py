"""Tiny real media files for the data tests: mp4 videos (PyAV) and JPEG frame folders (Pillow).

Frame i of every clip is filled with the grey level ``10 * i + 5``, so a test can tell which frames were read
(``frame_number``) despite lossy compression.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image


def numbered_frames(count: int, size: int = 32) -> np.ndarray:
    levels = 10 * np.arange(count, dtype=np.uint8) + 5
    return np.broadcast_to(levels[:, None, None, None], (count, size, size, 3)).copy()


def frame_number(frame: np.ndarray) -> int:
    return int(round((float(np.mean(frame)) - 5) / 10))


def write_video(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frame_folder(path: Path, frames: np.ndarray) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"{index + 1:05d}.jpg", quality=95)
    return path

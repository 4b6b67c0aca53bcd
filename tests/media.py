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


def identified_frames(count: int, size: int = 32) -> np.ndarray:
    """Up to 625 frames that ``frame_id`` tells apart: red counts units of 25, green the 25s."""
    if count > 625:
        raise ValueError(f"at most 625 identified frames, got {count}")
    index = np.arange(count)
    frames = np.full((count, size, size, 3), 128, dtype=np.uint8)
    frames[..., 0] = (10 * (index % 25) + 5)[:, None, None]
    frames[..., 1] = (10 * (index // 25) + 5)[:, None, None]
    return frames


def frame_id(frame: np.ndarray) -> int:
    units, tens = (int(round((float(np.mean(frame[..., channel])) - 5) / 10)) for channel in (0, 1))
    return 25 * tens + units


def write_video(path: Path, frames: np.ndarray, fps: int = 10, gop: int | None = None) -> Path:
    """An mpeg4 video in the container its suffix names (.mp4, .mkv, ...); every frame a keyframe unless ``gop``
    sets the keyframe interval."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 8_000_000  # near-lossless: frame levels read back exactly
        if gop is not None:
            stream.codec_context.gop_size = gop
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

"""Reading frames from video files (PyAV) and from folders of images (Pillow) as uint8 RGB arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class UnreadableClip(Exception):
    """A clip that cannot be decoded: missing, empty, truncated or corrupt. Loading skips it."""


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frame folder in temporal order (sorted by name)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def decode_video(path: Path) -> tuple[list[np.ndarray], float]:
    """All frames of a video file as (H, W, 3) uint8 RGB arrays, and its frame rate.

    Raises UnreadableClip for a missing, stream-less, truncated or corrupt file.
    """
    import av  # imported here: only video sources need it

    if not path.is_file():
        raise UnreadableClip(f"{path}: video file not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnreadableClip(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 25)
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except UnreadableClip:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise UnreadableClip(f"{path}: cannot decode ({error})") from error
    if not frames:
        raise UnreadableClip(f"{path}: no decodable frames")
    return frames, fps


def read_frames(path: Path, indices_for: Callable[[int], Sequence[int]]) -> np.ndarray:
    """Read the frames ``indices_for(available)`` selects from a video file or frame folder.

    Returns (len(indices), H, W, 3) uint8. Raises UnreadableClip for a missing, empty or corrupt clip.
    """
    if is_video(path):
        frames, _ = decode_video(path)
        return np.stack([frames[i] for i in indices_for(len(frames))])

    if not path.is_dir():
        raise UnreadableClip(f"{path}: neither a video file ({', '.join(VIDEO_SUFFIXES)}) nor a frame folder")
    files = frame_files(path)
    if not files:
        raise UnreadableClip(f"{path}: frame folder holds no images")
    from PIL import Image, UnidentifiedImageError

    selected = []
    for index in indices_for(len(files)):
        try:
            with Image.open(files[index]) as image:
                selected.append(np.asarray(image.convert("RGB")))
        except (OSError, UnidentifiedImageError) as error:
            raise UnreadableClip(f"{files[index]}: cannot read image ({error})") from error
    if len({frame.shape for frame in selected}) > 1:
        raise UnreadableClip(f"{path}: frames differ in size")
    return np.stack(selected)

"""Which files hold clips (video and frame-image suffixes), and the error for one that cannot be read.

Kept free of numpy and PyAV: the command line checks its inputs with these before it loads anything.
"""

from __future__ import annotations

from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class UnreadableClip(Exception):
    """A clip that cannot be decoded: missing, empty, truncated or corrupt. Loading skips it."""


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def require_video_file(path: Path) -> None:
    """Raise UnreadableClip unless ``path`` is a file (saying whether it is missing or a folder)."""
    if path.is_dir():
        raise UnreadableClip(f"{path}: a folder, not a video file")
    if not path.is_file():
        raise UnreadableClip(f"{path}: video file not found")

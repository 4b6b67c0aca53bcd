"""The videos a ``fe-adapter predict`` command line names: files as given, folders expanded to their videos.

Light on purpose (no torch, no PyAV): the command expands and checks its inputs before it loads a model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fe_adapter.data.formats import VIDEO_SUFFIXES, UnreadableClip, is_video, require_video_file


def videos_in(folder: Path) -> list[Path]:
    """The video files in ``folder`` and its sub-folders (suffixes ``VIDEO_SUFFIXES``, any case), sorted by path;
    hidden files and folders (names starting with ".", e.g. macOS's ``._clip.mp4``) are skipped."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found += [Path(root) / name for name in files if not name.startswith(".") and is_video(Path(name))]
    return sorted(found)


def expand_inputs(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """The videos to predict, in the order given (a folder's in path order), and one error line for each input
    that gives none: a missing path, or a folder without videos. A file is taken whatever its suffix (PyAV reads
    more formats than ``VIDEO_SUFFIXES``); a folder gives the videos ``videos_in`` finds."""
    videos: list[Path] = []
    errors: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = videos_in(path)
            if not found:
                errors.append(f"{path}: a folder without video files ({', '.join(VIDEO_SUFFIXES)}, searched in its "
                              "sub-folders too)")
            videos += found
            continue
        try:
            require_video_file(path)
        except UnreadableClip as error:
            errors.append(str(error))
            continue
        videos.append(path)
    return videos, errors

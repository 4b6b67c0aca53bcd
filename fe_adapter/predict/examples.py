"""Example media made from a real photo, for docs and tests: no downloads, no personal data beyond a public photo."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np


def face_video(path: str | Path, frames: int = 40, fps: int = 10, hidden: Collection[int] = ()) -> Path:
    """Write an mp4 (320x240) of a real face (scikit-image's astronaut photo) drifting right and zooming;
    the frames numbered in ``hidden`` show the empty background (no face)."""
    import av
    from PIL import Image
    from skimage import data as skimage_data

    face = skimage_data.astronaut()[20:260, 120:330]  # head and shoulders
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for index in range(frames):
            phase = index / frames
            scale = 0.8 * (0.75 + 0.25 * np.sin(2 * np.pi * phase))
            patch = np.asarray(Image.fromarray(face).resize((round(face.shape[1] * scale),
                                                              round(face.shape[0] * scale)), Image.BILINEAR))
            canvas = np.full((240, 320, 3), 110, dtype=np.uint8)
            left, top = int(10 + 120 * phase), max(0, (240 - patch.shape[0]) // 2)
            height, width = min(patch.shape[0], 240 - top), min(patch.shape[1], 320 - left)
            if index not in hidden:
                canvas[top:top + height, left:left + width] = patch[:height, :width]
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path

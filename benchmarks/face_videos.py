"""Test videos made from a real photograph, with the true face box of every frame known from how they are made.

A head-and-shoulders cut of scikit-image's astronaut photo (a real face, public domain, shipped in the package: no
download) is pasted, with a soft oval edge, over a real photo without faces (scikit-image's coffee), moving,
zooming, rotating in the image plane, leaving the frame, or crossing a second face (the same photo mirrored).
The face's box in the photo was marked by hand (``PHOTO_FACE``: brows to chin, cheek to cheek); scaling, rotating
and moving the photo moves that box with it, so each frame's true boxes (``true_faces``) follow from the frame
number alone. Shared by ``benchmarks.predict_speed``, ``scripts/face_detection_eval.py`` and the tests.

    write_face_video("moving.mp4", "moving", seconds=4, fps=10, width=320, height=240)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from fe_adapter.faces.face import box_iou

__all__ = ["PHOTO_FACE", "SCENARIOS", "FaceVideo", "TrueFace", "box_iou", "face_video", "render_frame", "true_faces",
           "write_face_video"]

#: The face in ``skimage.data.astronaut()`` (512 x 512), (x0, y0, x1, y1) in pixels, marked by hand: from the
#: hairline to the chin and from cheek to cheek, as WIDER FACE's boxes are drawn (MTCNN's box on the photo overlaps
#: it with IoU 0.81: it is narrower and reaches higher up the forehead).
PHOTO_FACE = (175.0, 72.0, 273.0, 172.0)
#: The part of the photo that is pasted: head and shoulders (x0, y0, x1, y1).
_PHOTO_CUT = (92, 0, 356, 300)
#: One timeline per scenario; "tour" strings the single-face ones together, 15 s each (a cut between them).
SCENARIOS = ("moving", "zooming", "rotating", "leaving", "crossing", "tour")
_TOUR = ("moving", "zooming", "rotating", "leaving")
_TOUR_PART_S = 15.0


@dataclass(frozen=True)
class TrueFace:
    """A face as generated: its box (x0, y0, x1, y1) in pixels, which face it is (0 the photo, 1 its mirror image),
    and the share of its box that shows: inside the frame and not behind the box of a face in front (a face partly
    out of the picture, or passing behind another, is less than 1)."""

    box: tuple[float, float, float, float]
    identity: int
    visible: float


@dataclass(frozen=True)
class FaceVideo:
    """A written video and the true faces of each of its frames (``faces[i]``: frame i)."""

    path: Path
    scenario: str
    fps: int
    width: int
    height: int
    faces: list[list[TrueFace]]

    @property
    def frame_count(self) -> int:
        return len(self.faces)


@dataclass(frozen=True)
class _Pose:
    """Where a face is: centre (x as a share of the width, y of the height), the face box's height as a share of the
    frame's, in-plane rotation in degrees (counter-clockwise), and which face (1: the mirror image)."""

    x: float
    y: float
    face_height: float
    angle: float = 0.0
    identity: int = 0


def _poses(scenario: str, t: float) -> list[_Pose]:
    """The faces at ``t`` seconds, back to front."""
    tau = 2 * math.pi
    if scenario == "tour":
        part = int(t // _TOUR_PART_S) % len(_TOUR)
        return _poses(_TOUR[part], t % _TOUR_PART_S)
    if scenario == "moving":  # a slow figure of eight over most of the frame
        return [_Pose(0.5 + 0.3 * math.sin(tau * t / 8), 0.5 + 0.2 * math.sin(tau * t / 5), 0.28)]
    if scenario == "zooming":  # from a small face (12% of the height) to a close-up (50%) and back, every 6 s
        return [_Pose(0.5 + 0.1 * math.sin(tau * t / 9), 0.5, 0.31 - 0.19 * math.cos(tau * t / 6))]
    if scenario == "rotating":  # the head tilts up to 25 degrees either way while drifting
        return [_Pose(0.5 + 0.15 * math.sin(tau * t / 7), 0.5, 0.3, 25 * math.sin(tau * t / 4))]
    if scenario == "leaving":  # out at the left, back, out at the right, back: every 10 s, partly and wholly out
        return [_Pose(0.5 + 0.85 * math.sin(tau * t / 10), 0.45, 0.3)]
    if scenario == "crossing":  # two faces pass each other every 8 s, the mirror image in front
        swing = math.sin(tau * t / 8)
        return [_Pose(0.5 - 0.3 * swing, 0.45, 0.26, 0.0, 0), _Pose(0.5 + 0.3 * swing, 0.55, 0.24, 0.0, 1)]
    raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")


def _visible_share(box: tuple[float, float, float, float], width: int, height: int) -> float:
    x0, y0, x1, y1 = box
    inside = max(0.0, min(x1, width) - max(x0, 0.0)) * max(0.0, min(y1, height) - max(y0, 0.0))
    return inside / ((x1 - x0) * (y1 - y0))


_ASPECT = (PHOTO_FACE[2] - PHOTO_FACE[0]) / (PHOTO_FACE[3] - PHOTO_FACE[1])  # width / height of the face box


def _box(pose: _Pose, width: int, height: int) -> tuple[float, float, float, float]:
    """The face's box: ``PHOTO_FACE`` scaled to the pose's height, around its centre. An in-plane rotation keeps
    the face's own size; detectors report an upright box of about that size, so the true box stays upright."""
    cx, cy = pose.x * width, pose.y * height
    half_height = pose.face_height * height / 2
    half_width = half_height * _ASPECT
    return (cx - half_width, cy - half_height, cx + half_width, cy + half_height)


def _covered_share(box: tuple[float, float, float, float], cover: tuple[float, float, float, float]) -> float:
    width = max(0.0, min(box[2], cover[2]) - max(box[0], cover[0]))
    height = max(0.0, min(box[3], cover[3]) - max(box[1], cover[1]))
    return width * height / ((box[2] - box[0]) * (box[3] - box[1]))


def true_faces(scenario: str, index: int, fps: float, width: int, height: int) -> list[TrueFace]:
    """The faces in frame ``index`` whose box is at least partly inside the frame, back to front."""
    boxes = [(_box(pose, width, height), pose.identity) for pose in _poses(scenario, index / fps)]
    faces = []
    for number, (box, identity) in enumerate(boxes):
        hidden = sum(_covered_share(box, cover) for cover, _ in boxes[number + 1:])  # two faces at most overlap
        visible = max(0.0, _visible_share(box, width, height) - hidden)
        if _visible_share(box, width, height) > 0:
            faces.append(TrueFace(tuple(round(value, 2) for value in box), identity, round(visible, 4)))
    return faces


@cache
def _sprite(identity: int):
    """The pasted photo cut (RGBA, soft oval edge) of face ``identity``, and its face box in the cut's pixels."""
    from PIL import Image, ImageDraw, ImageFilter
    from skimage import data as skimage_data

    x0, y0, x1, y1 = _PHOTO_CUT
    cut = Image.fromarray(skimage_data.astronaut()[y0:y1, x0:x1])
    width, height = cut.size
    mask = Image.new("L", cut.size, 0)
    ImageDraw.Draw(mask).ellipse((8, 4, width - 8, height + height // 3), fill=255)  # the oval runs off the bottom
    cut.putalpha(mask.filter(ImageFilter.GaussianBlur(6)))
    face = (PHOTO_FACE[0] - x0, PHOTO_FACE[1] - y0, PHOTO_FACE[2] - x0, PHOTO_FACE[3] - y0)
    if identity == 1:
        cut = cut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        face = (width - face[2], face[1], width - face[0], face[3])
    return cut, face


@cache
def _background(width: int, height: int):
    """A real photo without faces (scikit-image's coffee), scaled and cut to fill the frame."""
    from PIL import Image, ImageOps
    from skimage import data as skimage_data

    return ImageOps.fit(Image.fromarray(skimage_data.coffee()), (width, height), Image.BILINEAR)


def render_frame(scenario: str, index: int, fps: float, width: int, height: int) -> np.ndarray:
    """Frame ``index`` as an (height, width, 3) uint8 RGB array."""
    from PIL import Image

    canvas = _background(width, height).copy()
    for pose in _poses(scenario, index / fps):
        cut, face = _sprite(pose.identity)
        scale = pose.face_height * height / (face[3] - face[1])
        size = (max(1, round(cut.width * scale)), max(1, round(cut.height * scale)))
        sprite = cut.resize(size, Image.BILINEAR)
        centre = ((face[0] + face[2]) / 2 * scale, (face[1] + face[3]) / 2 * scale)  # the face's, in the sprite
        if pose.angle:
            sprite = sprite.rotate(pose.angle, Image.BILINEAR, expand=False, center=centre)
        left, top = round(pose.x * width - centre[0]), round(pose.y * height - centre[1])
        canvas.paste(sprite, (left, top), sprite)  # its alpha as the mask
    return np.asarray(canvas)


def write_face_video(path: str | Path, scenario: str, seconds: float, fps: int = 25, width: int = 1280,
                     height: int = 720, codec: str = "libx264") -> FaceVideo:
    """Write ``seconds`` of ``scenario`` (see ``SCENARIOS``) as a video (h264 by default, in the container the
    suffix names) and return it with its true faces. The file is written under a temporary name and renamed, so a
    killed run leaves no truncated video behind."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = round(seconds * fps)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    options = {"preset": "veryfast", "crf": "23"} if codec == "libx264" else {}
    with av.open(str(partial), mode="w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec != "libx264":
            stream.bit_rate = 4_000_000
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(render_frame(scenario, index, fps, width, height), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.replace(path)
    return face_video(path, scenario, count, fps, width, height)


def face_video(path: str | Path, scenario: str, frame_count: int, fps: int, width: int, height: int) -> FaceVideo:
    """The ``FaceVideo`` of a video written earlier by ``write_face_video`` with these settings (no decoding)."""
    faces = [true_faces(scenario, index, fps, width, height) for index in range(frame_count)]
    return FaceVideo(Path(path), scenario, fps, width, height, faces)


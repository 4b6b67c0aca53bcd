"""What finding a video's faces takes and gives (``fe_adapter.predict.face_pass``): plain data, sent from a
``FaceWorker``'s process to the one that predicts, in a module that imports nothing heavy (the command builds the
settings before it imports torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from fe_adapter.faces.face import Face


@dataclass(frozen=True)
class FaceSettings:
    """What finding a video's faces for a model depends on: the model's frames per window and input side, the
    windows' length and step (seconds), the detector (its name; None: the frames are face crops already),
    ``detect_every`` (None: ``face_tracker``'s default), the crops' margin, and whether every person is followed."""

    num_frames: int
    size: int
    window: float
    stride: float
    detector: str | None
    detect_every: int | None
    margin: float
    all_faces: bool


@dataclass(frozen=True)
class Opened:
    """The first item: the video's frame rate and frame count (from which both sides plan the same windows), and
    when it was opened (``time.time()``: the same clock in both processes)."""

    fps: float
    frame_count: int
    opened_at: float


@dataclass(frozen=True)
class FaceCrop:
    """One face of one frame, aligned to the model's input side: whose (``track_id``; None before any face is
    found), where (``face``), and whether it was seen there (else a box held from earlier, or the centre square)."""

    crop: np.ndarray
    face: Face
    seen: bool
    track_id: int | None


@dataclass(frozen=True)
class FrameFaces:
    """The crops of one sampled frame: the main face's (always one), or with ``all_faces`` each person's there."""

    index: int
    crops: tuple[FaceCrop, ...]


@dataclass(frozen=True)
class Finished:
    """The last item: frames examined, frames covered (all, or up to where an unreadable part stopped the decoder:
    ``broken`` says what), frames decoded, whether any face was seen, the main person's track (None without
    detection) and the tracker's ``detect_every`` (None without detection)."""

    examined: int
    covered: int
    decoded: int
    any_face: bool
    main_track: int | None
    detect_every: int | None
    broken: str | None = None


FaceItem = Opened | FrameFaces | Finished

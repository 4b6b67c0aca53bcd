"""The faces of a video, frame by frame: the half of prediction that needs no model.

``find_faces`` opens a video, reads the frames its windows sample (a few ahead, in a thread), follows their faces
(``fe_adapter.faces.FaceTracker``: a scan of the frame every few frames, each face followed in between) and aligns
them, and yields the crops the windows need, in frame order: the main face's (of the faces seen in a frame, the
person seen in the most frames so far), or with ``all_faces`` every person's. ``Predictor`` runs it in its own
process, or takes its items from a ``FaceWorker`` (``fe_adapter.predict.face_worker``), which runs it in a second
process started before the model is loaded: what it yields is plain data, to be sent from one process to another.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from fe_adapter.data.ahead import read_ahead
from fe_adapter.data.readers import UnreadableClip, VideoReader
from fe_adapter.faces import Detector, FaceTracker, Refiner, TrackedFace, align_face
from fe_adapter.faces.face import Face, centre_face
from fe_adapter.predict.face_items import FaceCrop, FaceItem, FaceSettings, Finished, FrameFaces, Opened
from fe_adapter.predict.windows import plan_windows

#: While no face is seen, the detector scans the frame when 0.4 s of video has passed since it last did (every 10th
#: frame at 25 fps), so a face coming into view is found within 0.4 s; a detector that cannot re-measure the faces it
#: follows (LBP: followed by templates, translation only) scans that often throughout. Seconds, not frames: at 10 fps
#: 10 frames (1 s) let a fast-shrinking face drift off its template's track (tests/test_predict.py).
SEARCH_EVERY_S = 0.4

#: A detector that re-measures the faces it follows (MTCNN, a ``Refiner``: its last stage on each face's expected
#: box, in every sampled frame) scans the whole frame every 2 s, for people coming into view beside those already
#: seen. Against detection on every frame, the main face's box keeps IoU >= 0.7 on as many of the compared frames of
#: benchmarks.predict_speed's 60-s 25 fps tour as scans every 0.4 s with templates in between did, with far fewer
#: scans (benchmarks/results/predict-speed-amd-2026-12-03.md: 399 of 400).
DETECT_EVERY_S = 2.0

#: Sampled frames decoded and converted ahead, in a thread (``fe_adapter.data.ahead``), while faces are found: the
#: decoder uses another core; 4 frames of 1280x720 RGB are 11 MB.
READ_AHEAD = 4


def detect_every_for(fps: float, detector: Detector) -> int:
    """The default ``detect_every`` for a video of ``fps`` frames a second: ``DETECT_EVERY_S`` worth of frames for a
    ``Refiner``, else ``SEARCH_EVERY_S``; at least 1."""
    return max(1, round((DETECT_EVERY_S if isinstance(detector, Refiner) else SEARCH_EVERY_S) * fps))


def face_tracker(detector: Detector, fps: float, detect_every: int | None = None, *,
                 all_faces: bool = False) -> FaceTracker:
    """The tracker predict follows a video's faces with: a scan every ``detect_every`` frames (None:
    ``detect_every_for``, or ``SEARCH_EVERY_S`` for ``all_faces``, where a person coming into view beside another
    counts as much as the first), and every ``SEARCH_EVERY_S`` while no face is seen."""
    search = max(1, round(SEARCH_EVERY_S * fps))
    every = detect_every or (search if all_faces else detect_every_for(fps, detector))
    return FaceTracker(detector, detect_every=every, search_every=search)


def find_faces(path: str | Path, settings: FaceSettings, detector: Detector | None) -> Iterator[FaceItem]:
    """``Opened``, then a ``FrameFaces`` for each frame the windows sample, in order, then ``Finished``.
    ``detector``: the one ``settings.detector`` names (or any ``Detector``), None for face crops. Raises
    UnreadableClip for a video that cannot be opened; a video that breaks off later ends early (``broken``)."""
    with VideoReader(path) as reader:
        yield Opened(reader.fps, reader.frame_count, time.time())
        plans = plan_windows(reader.frame_count, reader.fps, settings.num_frames, settings.window, settings.stride)
        finder = _FaceFinder(settings, detector, reader.fps)
        examined, last, broken = 0, -1, None
        try:
            needed = sorted({index for plan in plans for index in plan.indices})
            decoded = ((index, frame.to_ndarray(format="rgb24")) for index, frame in reader.frames(needed))
            for index, image in read_ahead(decoded, READ_AHEAD):
                with _one_thread():
                    crops = finder.crops(index, image)
                yield FrameFaces(index, crops)
                examined, last = examined + 1, index
            covered = reader.frame_count
        except UnreadableClip as error:
            broken, covered = str(error), last + 1
        tracker = finder.tracker
        yield Finished(examined, covered, reader.decoded, finder.any_face, tracker.main_track() if tracker else None,
                       tracker.detect_every if tracker else None, broken)


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one thread, for the detector's networks: they are small, and the boxes they give differ in float
    rounding with the number of threads, which the following of a face between scans carries on; so the faces are
    the same in a ``FaceWorker`` (whose process uses one thread, beside the model's) and in the predicting process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _FaceFinder:
    """The crops of each frame, from a ``FaceTracker`` (or the centre square, for face crops)."""

    def __init__(self, settings: FaceSettings, detector: Detector | None, fps: float) -> None:
        self.size, self.margin, self.all_faces = settings.size, settings.margin, settings.all_faces
        self.tracker = None if detector is None else \
            face_tracker(detector, fps, settings.detect_every, all_faces=settings.all_faces)
        self.seen_counts: dict[int, int] = {}
        self.last_face: TrackedFace | None = None
        self.any_face = False

    def crops(self, index: int, image: np.ndarray) -> tuple[FaceCrop, ...]:
        if self.tracker is None:  # face crops already
            self.any_face = True
            return (self._crop(image, centre_face(image, self.margin), True, None),)
        faces = self.tracker.update(image, index)
        for face in faces:
            self.seen_counts[face.track_id] = self.seen_counts.get(face.track_id, 0) + face.seen
            self.any_face |= face.seen
        if self.all_faces:
            return tuple(self._crop(image, face.face, face.seen, face.track_id) for face in faces)
        if faces:  # a face seen here before one held from earlier; of those, the person seen in most frames so far
            self.last_face = max(faces, key=lambda face: (face.seen, self.seen_counts[face.track_id]))
            return (self._crop(image, self.last_face.face, self.last_face.seen, self.last_face.track_id),)
        if self.last_face is not None:  # nobody here: the last box, not counted
            return (self._crop(image, self.last_face.face, False, self.last_face.track_id),)
        return (self._crop(image, centre_face(image, self.margin), False, None),)  # no face yet: not counted

    def _crop(self, image: np.ndarray, face: Face, seen: bool, track_id: int | None) -> FaceCrop:
        return FaceCrop(align_face(image, face, self.size, self.margin), face, seen, track_id)

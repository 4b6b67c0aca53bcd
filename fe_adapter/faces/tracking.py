"""Following every face of a video across frames, with an id per person.

The detector runs on every ``detect_every``-th video frame; detections are matched to the live tracks (greedy
assignment, cheapest first, on box overlap plus landmark distance, against each track's box moved on by its velocity),
and a face nobody matches starts a new track. Between detections each track is followed from where it should be:
a detector that can re-measure a face from a nearby box (a ``Refiner``: MTCNN's last stage, one 48 px crop per face)
gives the face's new box and landmarks; for others (LBP) a small grey template of the last detected face is matched
around there (a few thousand pixels per face, translation only). A track that misses a detection keeps its last box
(flagged) and its id if it is found again within ``max_missed`` detections; after that it ends. Frames are seen once
and not kept, so a video streams through in bounded memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from fe_adapter.faces.detectors import Detector, Refiner, check_frame, make_detector
from fe_adapter.faces.face import Face, box_iou

_LUMA = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
_TEMPLATE = 32  # side of a track's template, pixels: the follow step's resolution is the face's side / 32
_SEARCH = 0.5  # between detections a face is looked for up to half its side away from where it should be
_MIN_CORRELATION = 0.3  # below this the template is lost: the face keeps its box until the next detection
_BASELINE = 6  # frames: the shortest span a face's velocity and growth are measured over


@dataclass(frozen=True, eq=False)
class TrackedFace:
    """One face of one frame: its track's id, where it is, and how that was found.

    ``detected``: the detector found it in this frame. ``followed``: a frame between detections, the box followed
    from the last detection. Neither: the track missed its last detection, or its template was not found between
    detections, and keeps its last box (a gap being bridged); ``seen`` is False then.
    """

    track_id: int
    face: Face
    detected: bool
    followed: bool = False

    @property
    def seen(self) -> bool:
        """The face is in this frame (detected, or followed from a detection)."""
        return self.detected or self.followed


@dataclass(frozen=True)
class TrackStats:
    """What a track covered: its first and last frame indices, in how many frames it was ``seen``, how many
    detections it matched, and its mean box side (pixels)."""

    track_id: int
    first_index: int
    last_index: int
    frames_seen: int
    detections: int
    mean_side: float


class _Track:
    def __init__(self, track_id: int, face: Face, index: int) -> None:
        self.id, self.face, self.first_index = track_id, face, index
        self.detected_face, self.detected_index = face, index
        self.seen_index = index
        self.velocity = (0.0, 0.0)  # pixels per frame
        self.growth = 1.0  # the box's scale change per frame
        self.measured: deque[tuple[int, Face]] = deque([(index, face)], maxlen=8)  # places a detector measured
        self.missed = 0
        self.template: np.ndarray | None = None
        self.last_index = index
        self.frames_seen = self.detections = 0
        self.side_sum = 0.0

    def predicted(self, index: int) -> Face:
        """The last place the face was seen (detected or followed) moved on by the track's velocity to frame
        ``index``."""
        steps = index - self.seen_index
        return self.face.moved(self.velocity[0] * steps, self.velocity[1] * steps, self.growth**steps)

    def locate(self, face: Face, index: int, measured: bool) -> None:
        """The face seen at ``index``. ``measured`` (a detection, or a detector's re-measurement): velocity and
        growth become the move and scale change per frame since the last measured place at least ``_BASELINE``
        frames back (nearer ones are a frame or two apart: their jitter, extrapolated, would throw the next
        prediction off); otherwise (a template's match) the velocity is the move since the last detection."""
        if measured:
            since_index, since_face = next(((i, f) for i, f in reversed(self.measured) if i <= index - _BASELINE),
                                           self.measured[0])
            self.measured.append((index, face))
        else:
            since_index, since_face = self.detected_index, self.detected_face
        if index > since_index:
            (x0, y0), (x1, y1) = since_face.centre, face.centre
            steps = index - since_index
            self.velocity = ((x1 - x0) / steps, (y1 - y0) / steps)
            if measured:
                self.growth = float(np.clip(face.side / max(since_face.side, 1e-6), 0.5, 2.0)) ** (1 / steps)
        self.face, self.seen_index = face, index

    def count(self, face: TrackedFace, index: int) -> TrackedFace:
        self.last_index = index
        if face.seen:
            self.frames_seen += 1
            self.side_sum += face.face.side
        return face

    def stats(self) -> TrackStats:
        return TrackStats(self.id, self.first_index, self.last_index, self.frames_seen, self.detections,
                          self.side_sum / max(1, self.frames_seen))


class FaceTracker:
    """Every face of a video, frame by frame, with a stable id per person (see the module docstring).

    Args:
        detector: a ``Detector``, or the name of one for ``make_detector``.
        detect_every: the detector runs on a frame when at least this many video frames have passed since it last
            ran (1: on every frame given); the frames in between are followed.
        max_missed: a track that missed more than this many detections in a row ends.
        min_iou: a detection continues a track when its box overlaps the track's expected box by at least this
            much, or when its centre lies within half a face of it (a face that moved during a gap).
        search_every: while no face is seen, the detector runs when at least this many frames have passed since it
            last ran (a face coming into view is found sooner than ``detect_every`` would find it); None:
            ``detect_every``.
    """

    def __init__(self, detector: Detector | str = "mtcnn", *, detect_every: int = 1, max_missed: int = 5,
                 min_iou: float = 0.3, search_every: int | None = None) -> None:
        check_detect_every(detect_every)
        search_every = detect_every if search_every is None else search_every
        if isinstance(search_every, bool) or not isinstance(search_every, int) or not 1 <= search_every:
            raise ValueError(f"search_every must be an integer >= 1 (or None), got {search_every!r}")
        if isinstance(max_missed, bool) or not isinstance(max_missed, int) or max_missed < 0:
            raise ValueError(f"max_missed must be an integer >= 0, got {max_missed!r}")
        self.detector = make_detector(detector) if isinstance(detector, str) else detector
        self.refines = isinstance(self.detector, Refiner)  # follows faces by re-measuring them, not by templates
        self.detect_every, self.max_missed, self.min_iou = detect_every, max_missed, min_iou
        self.search_every = min(search_every, detect_every)
        self._live: list[_Track] = []
        self._ended: list[TrackStats] = []
        self._next_id = 0
        self._last_detection: int | None = None
        self._last_index = -1
        self._seen_any = False  # a face was seen in the last frame

    def update(self, frame: np.ndarray, index: int) -> list[TrackedFace]:
        """The faces of frame ``index`` (RGB uint8, (H, W, 3)), one per live track, in track-id order. Frames must
        come in increasing index order (gaps are fine: a video's sampled frames)."""
        check_frame(frame)
        if index <= self._last_index:
            raise ValueError(f"frame index {index} after {self._last_index}: frames must come in increasing order")
        self._last_index = index
        interval = self.detect_every if self._seen_any else self.search_every
        faces = None
        if self._last_detection is not None and index - self._last_detection < interval:
            followed = self._refine(frame, index) if self.refines else \
                [self._follow(frame, track, index) for track in self._live]
            if followed is not None:
                faces = [track.count(face, index) for track, face in zip(self._live, followed, strict=True)]
        if faces is None:  # a scan is due, or a face followed so far was lost in this frame
            self._last_detection = index
            faces = self._associate(frame, index, self.detector.detect(frame))
        self._seen_any = any(face.seen for face in faces)
        return sorted(faces, key=lambda face: face.track_id)

    def stats(self) -> list[TrackStats]:
        """Every track so far (ended and live), in id order."""
        return sorted(self._ended + [track.stats() for track in self._live], key=lambda stats: stats.track_id)

    def main_track(self) -> int | None:
        """The id of the video's main face: the track seen in the most frames, the larger one on a tie (the person
        of a single-person video); None before any face."""
        tracks = self.stats()
        if not tracks:
            return None
        return max(tracks, key=lambda stats: (stats.frames_seen, stats.mean_side, -stats.track_id)).track_id

    def _associate(self, frame: np.ndarray, index: int, faces: list[Face]) -> list[TrackedFace]:
        pairs: list[tuple[int, int]] = []
        if self._live and faces:
            cost = np.array([[self._cost(track.predicted(index), face) for face in faces] for track in self._live])
            pairs = _assign(cost)
        result: list[TrackedFace] = []
        matched_tracks = {row for row, _ in pairs}
        for row, column in pairs:
            track, face = self._live[row], faces[column]
            track.locate(face, index, measured=True)
            track.detected_face, track.detected_index, track.missed = face, index, 0
            track.template = _template(frame, face)
            track.detections += 1
            result.append(track.count(TrackedFace(track.id, face, detected=True), index))
        still_live = []
        for row, track in enumerate(self._live):
            if row in matched_tracks:
                still_live.append(track)
                continue
            track.missed += 1
            if track.missed > self.max_missed:
                self._ended.append(track.stats())
                continue
            still_live.append(track)
            result.append(track.count(TrackedFace(track.id, track.face, detected=False), index))
        matched_faces = {column for _, column in pairs}
        for column, face in enumerate(faces):
            if column in matched_faces:
                continue
            track = _Track(self._next_id, face, index)
            self._next_id += 1
            track.template = _template(frame, face)
            track.detections = 1
            still_live.append(track)
            result.append(track.count(TrackedFace(track.id, face, detected=True), index))
        self._live = still_live
        return result

    def _cost(self, expected: Face, face: Face) -> float:
        """How unlike a continuation of a track with ``expected`` face ``face`` is: 1 - IoU plus the landmarks' mean
        distance (or the centres' distance, without landmarks) in face sides; infinite beyond the gates."""
        side = max(expected.side, face.side)
        if not 0.5 <= face.side / max(expected.side, 1e-6) <= 2.0:
            return np.inf
        overlap = box_iou(expected.box, face.box)
        centre = np.hypot(expected.centre[0] - face.centre[0], expected.centre[1] - face.centre[1]) / side
        if overlap < self.min_iou and centre > 0.5:
            return np.inf
        if expected.landmarks is not None and face.landmarks is not None:
            distance = float(np.linalg.norm(expected.landmarks - face.landmarks, axis=1).mean()) / side
        else:
            distance = centre
        return 1.0 - overlap + distance

    def _refine(self, frame: np.ndarray, index: int) -> list[TrackedFace] | None:
        """Every live track's face in a frame between scans, re-measured by the detector from where it should be
        (one call for all; a face that moved beyond the detector's reach is looked for by its template first); a
        track that missed its last scan keeps its last box, not seen. None when a face followed so far is lost
        here: the caller scans the frame instead."""
        followed = [track for track in self._live if not track.missed]
        expected = [track.predicted(index) for track in followed]
        found: dict[int, Face] = {}
        for track, guess, face in zip(followed, expected, self.detector.refine(frame, expected) if followed else [],
                                      strict=True):
            if not self._continues(guess, face) and track.template is not None:
                guess = _match(frame, track.template, guess)
                face = None if guess is None else self.detector.refine(frame, [guess])[0]
            if not self._continues(guess, face):
                return None
            found[track.id] = face
        result = []
        for track in self._live:
            if track.id in found:
                track.locate(found[track.id], index, measured=True)
                result.append(TrackedFace(track.id, found[track.id], detected=False, followed=True))
            else:
                result.append(TrackedFace(track.id, track.face, detected=False))
        return result

    def _continues(self, expected: Face | None, face: Face | None) -> bool:
        """``face`` was found and passes the gates of a continuation of ``expected`` (``_cost``)."""
        return expected is not None and face is not None and bool(np.isfinite(self._cost(expected, face)))

    def _follow(self, frame: np.ndarray, track: _Track, index: int) -> TrackedFace:
        """The track's face in a frame between detections: its template matched around where it should be."""
        if track.missed or track.template is None:
            return TrackedFace(track.id, track.face, detected=False)
        found = _match(frame, track.template, track.predicted(index))
        if found is None:  # nothing like the face where it should be: the last box, not seen
            return TrackedFace(track.id, track.face, detected=False)
        track.locate(found, index, measured=False)
        return TrackedFace(track.id, found, detected=False, followed=True)


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """(track, face) pairs of finite cost, cheapest first, each track and face used once: greedy matching, which is
    the optimal assignment whenever each face's cheapest track is its own (faces a frame apart); scipy's Hungarian
    solver would cost the command seconds of start-up (scipy.optimize's import) for the same pairs."""
    rows, columns = np.unravel_index(np.argsort(cost, axis=None, kind="stable"), cost.shape)
    pairs: list[tuple[int, int]] = []
    used_rows, used_columns = set(), set()
    for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
        if not np.isfinite(cost[row, column]):
            break
        if row not in used_rows and column not in used_columns:
            pairs.append((row, column))
            used_rows.add(row)
            used_columns.add(column)
    return pairs


def check_detect_every(value: int) -> int:
    """``value`` if it is an integer >= 1, else ValueError naming ``detect_every``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"detect_every must be an integer >= 1, got {value!r}")
    return value


def _grey_patch(frame: np.ndarray, face: Face, extent: float, pixels: int) -> np.ndarray:
    """The square around ``face`` of side ``extent`` times its side, edges repeated beyond the frame, as a
    (pixels, pixels) float32 grey image."""
    from PIL import Image

    cx, cy = face.centre
    side = face.side * extent
    height, width = frame.shape[:2]
    rows = np.clip(np.round(np.linspace(cy - side / 2, cy + side / 2, min(round(side), 4 * pixels))), 0, height - 1)
    columns = np.clip(np.round(np.linspace(cx - side / 2, cx + side / 2, min(round(side), 4 * pixels))), 0, width - 1)
    patch = np.ascontiguousarray(frame[rows.astype(int)[:, None], columns.astype(int)[None, :]])
    small = np.asarray(Image.fromarray(patch).resize((pixels, pixels), Image.BOX), dtype=np.float32)
    return small @ _LUMA


def _template(frame: np.ndarray, face: Face) -> np.ndarray:
    return _grey_patch(frame, face, 1.0, _TEMPLATE)


def normalised_correlation(region: np.ndarray, template: np.ndarray) -> np.ndarray:
    """The normalised cross-correlation (-1..1) of ``template`` at every position where it fits inside ``region``
    (as scikit-image's ``match_template``, whose import pulls in scipy.signal and scipy.stats: seconds of start-up
    for a 33x33 result that numpy gives at once). The products come from FFTs (the template, zero-padded to the
    region's size, never wraps around for the positions where it fits), the windows' sums and sums of squares from
    summed-area tables: about 10x less than summing every window (a face followed in every sampled frame)."""
    region = region.astype(np.float64)
    centred = template.astype(np.float64) - template.mean()
    (rows, columns), (height, width) = region.shape, template.shape
    out_rows, out_columns = rows - height + 1, columns - width + 1
    spectrum = np.fft.rfft2(region) * np.conj(np.fft.rfft2(centred, s=region.shape))
    # the windows' means drop out: centred sums to 0
    products = np.fft.irfft2(spectrum, s=region.shape)[:out_rows, :out_columns]
    count = template.size

    def window_sums(values: np.ndarray) -> np.ndarray:
        table = np.zeros((rows + 1, columns + 1))
        table[1:, 1:] = values.cumsum(0).cumsum(1)
        return (table[height:, width:] - table[:out_rows, width:] - table[height:, :out_columns]
                + table[:out_rows, :out_columns])

    sums, squares = window_sums(region), window_sums(region**2)
    spread = np.sqrt(np.maximum(squares - sums**2 / count, 0.0)) * np.sqrt((centred**2).sum())
    return np.divide(products, spread, out=np.zeros_like(products), where=spread > 1e-9)


def _match(frame: np.ndarray, template: np.ndarray, expected: Face) -> Face | None:
    """``expected`` moved to where ``template`` matches best within ``_SEARCH`` of a side; None when nothing
    correlates well enough."""
    extent = 1.0 + 2 * _SEARCH
    pixels = round(_TEMPLATE * extent)
    region = _grey_patch(frame, expected, extent, pixels)
    scores = normalised_correlation(region, template)
    row, column = np.unravel_index(int(np.argmax(scores)), scores.shape)
    if scores[row, column] < _MIN_CORRELATION:
        return None
    step = expected.side * extent / pixels  # frame pixels per region pixel
    centre_offset = (scores.shape[0] - 1) / 2
    return expected.moved((column - centre_offset) * step, (row - centre_offset) * step)

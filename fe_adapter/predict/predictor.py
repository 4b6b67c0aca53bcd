"""``Predictor``: emotions over time in an ordinary video file, from an adapter checkpoint.

The video is cut into sliding windows of T sampled frames (``fe_adapter.predict.windows``). Its faces come frame
by frame from ``fe_adapter.predict.face_pass`` (the video decoded once, in order, a few frames ahead in a thread;
each sampled frame's faces followed and aligned, and the frame dropped), found in this process or by a
``FaceWorker`` in another; a window runs through the model as soon as its last frame's crops are in, and crops no
later window needs are dropped. Memory is bounded by the window, stride, batch size and number of people, not by
the length of the video.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fe_adapter.checkpoint import load_model
from fe_adapter.data.readers import UnreadableClip
from fe_adapter.data.transforms import Normalization, eval_transform
from fe_adapter.device import resolve_device
from fe_adapter.faces import Detector, make_detector
from fe_adapter.faces.align import MARGIN
from fe_adapter.faces.face import Face
from fe_adapter.faces.tracking import check_detect_every
from fe_adapter.model import VideoClassifier
from fe_adapter.predict.engines import Engine, ExportedEngine, TorchEngine
from fe_adapter.predict.face_items import FaceItem, FaceSettings, Finished, FrameFaces, Opened
from fe_adapter.predict.face_pass import DETECT_EVERY_S, SEARCH_EVERY_S, find_faces
from fe_adapter.predict.face_worker import FaceWorker
from fe_adapter.predict.results import (
    MIN_FACE_FRACTION,
    PredictionError,
    TrackPrediction,
    VideoPrediction,
    WindowPrediction,
    check_min_face_fraction,
)
from fe_adapter.predict.windows import WindowPlan, plan_windows, window_starts

__all__ = ["DETECT_EVERY_S", "SEARCH_EVERY_S", "PredictionError", "Predictor", "VideoPrediction", "WindowPrediction",
           "window_starts"]

class Predictor:
    """Predict emotions in video files with a ``VideoClassifier`` or an exported model.

    Args:
        model: the trained classifier (its ``num_frames`` is the frames per window), or an ``Engine`` that runs
            one (``ExportedEngine`` for a file written by ``fe-adapter export``; see ``from_exported``).
        device: "auto" (CUDA if available), "cpu" or "cuda", for a ``VideoClassifier``.
        detector: the face detector (``fe_adapter.faces.make_detector``'s name or a ``Detector``); None for videos
            that are face crops already (each frame's centre square is the face).
        thumbnails: how many windows (evenly spread) keep a face crop for the timeline image.
        detect_every: the detector scans the frame when this many video frames have passed since it last did; faces
            are followed in between (``FaceTracker``). None: ``face_tracker``'s default for the video's frame rate
            (2 s for MTCNN, 0.4 s for LBP or with ``all_faces``; every 0.4 s while no face is seen).
        margin: the crops' margin around the face (``fe_adapter.faces.align_face``).
    """

    def __init__(self, model: VideoClassifier | Engine, device: str = "auto", detector: Detector | str | None = "mtcnn",
                 thumbnails: int = 10, *, detect_every: int | None = None, margin: float = MARGIN) -> None:
        if isinstance(model, VideoClassifier):
            model = TorchEngine(model, resolve_device(device, "device"))
        self.engine: Engine = model
        self.detector = make_detector(detector) if isinstance(detector, str) else detector
        if detect_every is not None:
            check_detect_every(detect_every)
        self.detect_every, self.margin = detect_every, margin
        self.thumbnails = thumbnails
        self.size = self.engine.size
        self.transform = eval_transform(Normalization(self.size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)))

    @property
    def model(self) -> VideoClassifier:
        """The PyTorch model (AttributeError for an exported one)."""
        return self.engine.model

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", backbone_checkpoint: str | Path | None = None,
                        pretrained: bool = False, impl: str = "auto", **faces) -> Predictor:
        """Rebuild the model an adapter checkpoint was saved from, with the backbone's weights.

        The checkpoint holds adapters, head and config only: the backbone weights come from
        ``backbone_checkpoint`` (a local .safetensors/.pth file) or from timm (``pretrained=True``); the input
        normalisation is the one recorded in the checkpoint. ``faces``: ``detector``, ``detect_every``, ``margin``
        (as ``Predictor``). Raises FileNotFoundError for a missing file, CheckpointError for an unreadable or
        mismatched one, ValueError when no backbone weights are given.
        """
        return cls(load_model(path, backbone_checkpoint, pretrained, impl), device, **faces)

    @classmethod
    def from_exported(cls, path: str | Path, **faces) -> Predictor:
        """Predict with a model exported by ``fe-adapter export`` (.onnx on onnxruntime, or .pt2), on the CPU:
        the same windows, faces and outputs as with the PyTorch model it was exported from."""
        return cls(ExportedEngine(path), **faces)

    def face_settings(self, window: float = 2.0, stride: float = 0.5, all_faces: bool = False) -> FaceSettings:
        """What finding a video's faces takes for this predictor and these windows (for a ``FaceWorker``)."""
        detector = None if self.detector is None else self.detector.name
        return FaceSettings(self.engine.num_frames, self.size, window, stride, detector, self.detect_every,
                            self.margin, all_faces)

    @torch.no_grad()
    def predict_video(self, path: str | Path, window: float = 2.0, stride: float = 0.5, batch_size: int = 8,
                      progress: bool | None = None, min_face_fraction: float = MIN_FACE_FRACTION,
                      all_faces: bool = False, worker: FaceWorker | None = None) -> VideoPrediction:
        """Probabilities per window of ``window`` seconds every ``stride`` seconds, and for the whole video.

        The main face: in each frame, of the faces seen there, the person seen in the most frames so far. Frames
        where no face is seen reuse the last box (and are not counted in ``faces_found``); frames before the first
        face is found use the frame's centre square. With ``all_faces``, every person gets a timeline (``tracks``)
        over the windows in which they are seen, and the main face's is that of the person seen in the most frames
        of the video. A window with a face seen in fewer than ``min_face_fraction`` of its frames is marked
        ``no_face`` and left out of ``overall`` (None when every window is). ``progress``: a tqdm bar on stderr
        (default: when stderr is a terminal). ``worker``: a ``FaceWorker`` started with this predictor's
        ``face_settings`` for these windows, whose next video this is, finds the faces (else this process does).
        Raises PredictionError for an unreadable video or one without a face; a video that ends before its stream
        says keeps the windows that were complete, with a warning.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        min_face_fraction = check_min_face_fraction(min_face_fraction)
        path = Path(path)
        settings = self.face_settings(window, stride, all_faces)
        items = worker.faces(path, settings) if worker is not None else find_faces(path, settings, self.detector)
        try:
            opened = next(items)
            if not isinstance(opened, Opened):
                raise RuntimeError(f"finding faces in {path} began with {type(opened).__name__}, not Opened")
            plans = plan_windows(opened.frame_count, opened.fps, self.engine.num_frames, window, stride)
            stream = _WindowStream(self, plans, batch_size, all_faces, min_face_fraction)
            show = sys.stderr.isatty() if progress is None else progress
            with tqdm(total=opened.frame_count, unit="frame", desc=path.name, disable=not show, leave=False,
                      file=sys.stderr, dynamic_ncols=True) as bar:
                finished = stream.run(items, bar)
        except UnreadableClip as error:
            raise PredictionError(str(error)) from None
        finally:
            items.close()
        if not finished.any_face:
            raise PredictionError(f"{path}: no face found in any of the {finished.examined} frames examined")
        main, tracks = stream.results(finished.main_track)
        elapsed = time.time() - opened.opened_at  # a worker may have begun before this call
        return VideoPrediction(str(path), opened.frame_count / opened.fps, opened.fps, main.windows,
                               finished.covered / elapsed, opened.frame_count, window, stride, self.engine.num_frames,
                               main.thumbnails, stream.peak_held, finished.decoded, min_face_fraction,
                               settings.detector or "none", finished.detect_every, finished.main_track, tracks)

    def _probabilities(self, clips: list[np.ndarray]) -> torch.Tensor:
        """Class probabilities of (T, H, W, 3) uint8 face crops, one row per clip."""
        return self.engine(torch.stack([self.transform(torch.from_numpy(clip).permute(0, 3, 1, 2)) for clip in clips]))


class _Timeline:
    """The windows of one face (the main face, or one person), filled frame by frame and run in batches as they
    complete. The main face has a crop in every frame; a person's timeline leaves out the windows where the person
    was not seen, and fills the frames of a window without a crop of them with their nearest crop in it."""

    def __init__(self, stream: _WindowStream, every_window: bool) -> None:
        self.stream, self.every_window = stream, every_window
        self.crops: dict[int, np.ndarray] = {}  # frame index -> face crop
        self.seen: dict[int, bool] = {}
        self.boxes: dict[int, tuple[float, float, float, float]] = {}
        self.ids: dict[int, int | None] = {}
        self.ran = 0  # windows handled (run, or left out)
        self.windows: list[WindowPrediction] = []
        self.thumbnails: dict[int, np.ndarray] = {}
        self.frames_seen = 0

    def add(self, index: int, crop: np.ndarray, face: Face, seen: bool, track_id: int | None) -> None:
        self.crops[index], self.seen[index], self.boxes[index], self.ids[index] = crop, seen, face.box, track_id
        self.frames_seen += seen

    def run_complete(self, complete: int) -> None:
        """Run the windows before ``complete`` not yet run, then drop the crops no later window needs."""
        stream = self.stream
        plans = stream.plans[self.ran:complete]
        if not plans:
            return
        chosen = [(number, plan) for number, plan in enumerate(plans, start=self.ran)
                  if self.every_window or any(self.seen.get(index, False) for index in plan.indices)]
        clips = [np.stack([self.crops[self._nearest(index, plan.indices)] for index in plan.indices])
                 for _, plan in chosen]
        rows = stream.predictor._probabilities(clips) if clips else []
        names = stream.predictor.engine.class_names
        for (number, plan), row in zip(chosen, rows, strict=True):
            found = sum(self.seen.get(index, False) for index in plan.indices)
            ids = [self.ids[index] for index in plan.indices if self.seen.get(index, False)]
            middle = self._nearest(plan.indices[len(plan.indices) // 2], plan.indices)
            if number in stream.thumbnail_windows:
                self.thumbnails[len(self.windows)] = self.crops[middle]
            self.windows.append(WindowPrediction(
                plan.start, plan.end, {name: float(p) for name, p in zip(names, row.tolist(), strict=True)}, found,
                len(plan.indices), found / len(plan.indices) < stream.min_face_fraction,
                max(ids, key=ids.count) if ids else self.ids[middle], self.boxes[middle]))
        self.ran = complete
        keep_from = stream.keep_from[complete]
        for index in [index for index in self.crops if index < keep_from]:
            del self.crops[index], self.seen[index], self.boxes[index], self.ids[index]

    def _nearest(self, index: int, indices: tuple[int, ...]) -> int:
        """``index`` if this face has a crop there, else the window's nearest frame that has one."""
        if index in self.crops:
            return index
        return min((other for other in indices if other in self.crops), key=lambda other: abs(other - index))


class _WindowStream:
    """The windows of one video: the crops of its faces taken frame by frame (``find_faces``'s items), each face's
    windows run as they complete."""

    def __init__(self, predictor: Predictor, plans: list[WindowPlan], batch_size: int, all_faces: bool,
                 min_face_fraction: float) -> None:
        self.predictor, self.plans, self.batch_size, self.all_faces = predictor, plans, batch_size, all_faces
        self.min_face_fraction = min_face_fraction
        # the smallest first index of windows k.. : crops before it are needed by no window still to run
        self.keep_from = list(np.minimum.accumulate([plan.indices[0] for plan in plans][::-1])[::-1]) + [sys.maxsize]
        step = max(1, -(-len(plans) // max(1, predictor.thumbnails)))
        self.thumbnail_windows = set(range(0, len(plans), step)) if predictor.thumbnails > 0 else set()
        self.main = _Timeline(self, every_window=True)  # the main face (all_faces: the people's below instead)
        self.people: dict[int, _Timeline] = {}
        self.complete = 0  # windows whose frames are all in
        self.peak_held = 0

    def run(self, items: Iterator[FaceItem], bar: tqdm) -> Finished:
        """Take the frames' crops up to ``Finished``, which is returned."""
        for item in items:
            if isinstance(item, Finished):
                break
            if not isinstance(item, FrameFaces):
                raise RuntimeError(f"finding faces sent {type(item).__name__} after Opened")
            self._add(item)
            bar.update(item.index + 1 - bar.n)
            while self.complete < len(self.plans) and self.plans[self.complete].indices[-1] <= item.index:
                self.complete += 1
            for timeline in self._timelines():
                if self.complete - timeline.ran >= self.batch_size:
                    timeline.run_complete(self.complete)
        else:
            raise RuntimeError("finding faces ended without Finished")
        if item.broken is not None:
            if self.complete == 0:
                raise UnreadableClip(item.broken)
            warnings.warn(f"{item.broken}; the prediction covers the {self.complete} of {len(self.plans)} windows "
                          "that were complete", stacklevel=4)
        bar.update(item.covered - bar.n)
        for timeline in self._timelines():
            timeline.run_complete(self.complete)
        return item

    def _timelines(self) -> list[_Timeline]:
        return list(self.people.values()) if self.all_faces else [self.main]

    def _add(self, frame: FrameFaces) -> None:
        """The crops of one frame into their timelines."""
        for crop in frame.crops:
            timeline = self.people.setdefault(crop.track_id, _Timeline(self, every_window=False)) \
                if self.all_faces else self.main
            timeline.add(frame.index, crop.crop, crop.face, crop.seen, crop.track_id)
        self.peak_held = max(self.peak_held, sum(len(timeline.crops) for timeline in self._timelines()))

    def results(self, main_track: int | None) -> tuple[_Timeline, list[TrackPrediction]]:
        """The main face's timeline and, with all_faces, every person's."""
        if not self.all_faces:
            return self.main, []
        tracks = [TrackPrediction(track_id, timeline.windows, timeline.frames_seen)
                  for track_id, timeline in sorted(self.people.items()) if timeline.windows]
        return self.people.get(main_track, _Timeline(self, every_window=False)), tracks

"""``Predictor``: emotions over time in an ordinary video file, from an adapter checkpoint.

The video is decoded once, in order (``VideoReader``), and cut into sliding windows of T sampled frames
(``fe_adapter.predict.windows``). Each sampled frame is converted, its face followed (``FaceTrack``) and
cropped, and the frame dropped; a window runs through the model as soon as its last frame is in, and crops
no later window needs are dropped too. Memory is bounded by the window, stride and batch size, not by the
length of the video.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fe_adapter.checkpoint import load_model
from fe_adapter.data.readers import UnreadableClip, VideoReader
from fe_adapter.data.transforms import Normalization, eval_transform
from fe_adapter.device import resolve_device
from fe_adapter.model import VideoClassifier
from fe_adapter.predict.engines import Engine, ExportedEngine, TorchEngine
from fe_adapter.predict.faces import FaceTrack, FaceTracker, centre_box, crop_face
from fe_adapter.predict.results import (
    MIN_FACE_FRACTION,
    PredictionError,
    VideoPrediction,
    WindowPrediction,
    check_min_face_fraction,
)
from fe_adapter.predict.windows import WindowPlan, plan_windows, window_starts

__all__ = ["PredictionError", "Predictor", "VideoPrediction", "WindowPrediction", "window_starts"]


class Predictor:
    """Predict emotions in video files with a ``VideoClassifier`` or an exported model.

    Args:
        model: the trained classifier (its ``num_frames`` is the frames per window), or an ``Engine`` that runs
            one (``ExportedEngine`` for a file written by ``fe-adapter export``; see ``from_exported``).
        device: "auto" (CUDA if available), "cpu" or "cuda", for a ``VideoClassifier``.
        tracker: the face finder (default ``FaceTracker()``).
        thumbnails: how many windows (evenly spread) keep a face crop for the timeline image.
    """

    def __init__(self, model: VideoClassifier | Engine, device: str = "auto", tracker: FaceTracker | None = None,
                 thumbnails: int = 10) -> None:
        if isinstance(model, VideoClassifier):
            model = TorchEngine(model, resolve_device(device, "device"))
        self.engine: Engine = model
        self.tracker = tracker or FaceTracker()
        self.thumbnails = thumbnails
        self.size = self.engine.size
        self.transform = eval_transform(Normalization(self.size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)))

    @property
    def model(self) -> VideoClassifier:
        """The PyTorch model (AttributeError for an exported one)."""
        return self.engine.model

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", backbone_checkpoint: str | Path | None = None,
                        pretrained: bool = False, impl: str = "auto") -> Predictor:
        """Rebuild the model an adapter checkpoint was saved from, with the backbone's weights.

        The checkpoint holds adapters, head and config only: the backbone weights come from
        ``backbone_checkpoint`` (a local .safetensors/.pth file) or from timm (``pretrained=True``); the input
        normalisation is the one recorded in the checkpoint. Raises FileNotFoundError for a missing file,
        CheckpointError for an unreadable or mismatched one, ValueError when no backbone weights are given.
        """
        return cls(load_model(path, backbone_checkpoint, pretrained, impl), device)

    @classmethod
    def from_exported(cls, path: str | Path) -> Predictor:
        """Predict with a model exported by ``fe-adapter export`` (.onnx on onnxruntime, or .pt2), on the CPU:
        the same windows, faces and outputs as with the PyTorch model it was exported from."""
        return cls(ExportedEngine(path))

    @torch.no_grad()
    def predict_video(self, path: str | Path, window: float = 2.0, stride: float = 0.5, batch_size: int = 8,
                      progress: bool | None = None, min_face_fraction: float = MIN_FACE_FRACTION) -> VideoPrediction:
        """Probabilities per window of ``window`` seconds every ``stride`` seconds, and for the whole video.

        Frames without a detected face reuse the last box (and are not counted in ``faces_found``); frames
        before the first face is found use the frame's centre square. A window with a detected face in fewer
        than ``min_face_fraction`` of its frames is marked ``no_face`` and left out of ``overall`` (None when
        every window is). ``progress``: a tqdm bar on stderr (default: when stderr is a terminal). Raises
        PredictionError for an unreadable video or one without a face; a video that ends before its stream
        says keeps the windows that were complete, with a warning.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        min_face_fraction = check_min_face_fraction(min_face_fraction)
        path = Path(path)
        started = time.perf_counter()
        try:
            with VideoReader(path) as reader:
                plans = plan_windows(reader.frame_count, reader.fps, self.engine.num_frames, window, stride)
                stream = _WindowStream(self, plans, batch_size)
                show = sys.stderr.isatty() if progress is None else progress
                with tqdm(total=reader.frame_count, unit="frame", desc=path.name, disable=not show, leave=False,
                          file=sys.stderr, dynamic_ncols=True) as bar:
                    stream.run(reader, bar)
                fps, frame_count, decoded = reader.fps, reader.frame_count, reader.decoded
        except UnreadableClip as error:
            raise PredictionError(str(error)) from None
        if not stream.any_face:
            raise PredictionError(f"{path}: no face found in any of the {stream.examined} frames examined")
        windows = stream.results(min_face_fraction)
        elapsed = time.perf_counter() - started
        return VideoPrediction(str(path), frame_count / fps, fps, windows, stream.covered / elapsed, frame_count,
                               window, stride, self.engine.num_frames, stream.thumbnails, stream.peak_held, decoded,
                               min_face_fraction)

    def _probabilities(self, clips: list[np.ndarray]) -> torch.Tensor:
        """Class probabilities of (T, H, W, 3) uint8 face crops, one row per clip."""
        return self.engine(torch.stack([self.transform(torch.from_numpy(clip).permute(0, 3, 1, 2)) for clip in clips]))


class _WindowStream:
    """The windows of one video, filled frame by frame and run in batches as they complete."""

    def __init__(self, predictor: Predictor, plans: list[WindowPlan], batch_size: int) -> None:
        self.predictor, self.plans, self.batch_size = predictor, plans, batch_size
        self.needed = sorted({index for plan in plans for index in plan.indices})
        # the smallest first index of windows k.. : crops before it are needed by no window still to run
        self.keep_from = list(np.minimum.accumulate([plan.indices[0] for plan in plans][::-1])[::-1]) + [sys.maxsize]
        step = max(1, -(-len(plans) // max(1, predictor.thumbnails)))
        self.thumbnail_windows = set(range(0, len(plans), step)) if predictor.thumbnails > 0 else set()
        self.crops: dict[int, np.ndarray] = {}  # index -> face crop, in index order
        self.detected: dict[int, bool] = {}
        self.probabilities: list[torch.Tensor] = []
        self.faces_found: list[int] = []
        self.thumbnails: dict[int, np.ndarray] = {}
        self.complete = 0  # windows whose frames are all in
        self.examined = self.covered = self.peak_held = 0
        self.last_index = -1
        self.any_face = False

    def run(self, reader: VideoReader, bar: tqdm) -> None:
        track: FaceTrack = self.predictor.tracker.start()
        size = self.predictor.size
        try:
            for index, frame in reader.frames(self.needed):
                image = frame.to_ndarray(format="rgb24")
                face = track.update(image)
                self.crops[index] = crop_face(image, face.box if face is not None else centre_box(image), size)
                self.detected[index] = face is not None and face.detected
                self.any_face |= self.detected[index]
                self.examined += 1
                self.last_index = index
                self.peak_held = max(self.peak_held, len(self.crops))
                bar.update(index + 1 - bar.n)
                while self.complete < len(self.plans) and self.plans[self.complete].indices[-1] <= index:
                    self.complete += 1
                if self.complete - len(self.probabilities) >= self.batch_size:
                    self._run_complete()
            self.covered = reader.frame_count
        except UnreadableClip as error:
            if self.complete == 0:
                raise
            self.covered = self.last_index + 1
            warnings.warn(f"{error}; the prediction covers the {self.complete} of {len(self.plans)} windows "
                          "that were complete", stacklevel=4)
        bar.update(self.covered - bar.n)
        self._run_complete()

    def _run_complete(self) -> None:
        """Run the complete windows not yet run, then drop the crops no later window needs."""
        first, last = len(self.probabilities), self.complete
        if first == last:
            return
        clips = [np.stack([self.crops[i] for i in plan.indices]) for plan in self.plans[first:last]]
        self.probabilities.extend(self.predictor._probabilities(clips))
        for number, plan in enumerate(self.plans[first:last], start=first):
            self.faces_found.append(sum(self.detected[i] for i in plan.indices))
            if number in self.thumbnail_windows:
                self.thumbnails[number] = self.crops[plan.indices[len(plan.indices) // 2]]
        keep_from = self.keep_from[last]
        for index in [index for index in self.crops if index < keep_from]:
            del self.crops[index], self.detected[index]

    def results(self, min_face_fraction: float) -> list[WindowPrediction]:
        """The windows that ran; a face in fewer than ``min_face_fraction`` of a window's frames: no face."""
        names = self.predictor.engine.class_names
        return [WindowPrediction(plan.start, plan.end,
                                 {name: float(p) for name, p in zip(names, row.tolist(), strict=True)},
                                 faces_found, len(plan.indices), faces_found / len(plan.indices) < min_face_fraction)
                for plan, row, faces_found in zip(self.plans, self.probabilities, self.faces_found, strict=False)]

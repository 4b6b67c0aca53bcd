"""``Predictor``: emotions over time in an ordinary video file, from an adapter checkpoint.

The video is decoded (PyAV), cut into sliding windows, T frames are sampled from each window, the face
is found and cropped in those frames (``fe_adapter.predict.faces``), and the model gives class probabilities
per window and, averaged, for the whole video.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fe_adapter.checkpoint import load_adapters, read_adapter_config
from fe_adapter.data.readers import UnreadableClip, decode_video
from fe_adapter.data.sampling import sample_indices
from fe_adapter.data.transforms import eval_transform, normalization_for
from fe_adapter.model import VideoClassifier, create_model
from fe_adapter.predict.faces import FaceTracker, crop_face


class PredictionError(Exception):
    """A video that cannot be predicted (unreadable, no face), with a message naming the file."""


@dataclass
class WindowPrediction:
    """Class probabilities of one window [start, end) seconds; ``faces_found`` of its sampled frames."""

    start: float
    end: float
    probabilities: dict[str, float]
    faces_found: int
    frames: int

    @property
    def top(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)


@dataclass
class VideoPrediction:
    """Per-window and whole-video probabilities of one video, with what it took to compute them."""

    path: str
    duration: float
    fps: float
    windows: list[WindowPrediction]
    processing_fps: float
    thumbnails: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def overall(self) -> dict[str, float]:
        """Mean of the window probabilities."""
        names = list(self.windows[0].probabilities)
        return {name: float(np.mean([w.probabilities[name] for w in self.windows])) for name in names}

    @property
    def top(self) -> str:
        overall = self.overall
        return max(overall, key=overall.get)

    def to_dict(self) -> dict:
        return {
            "path": self.path, "duration_s": self.duration, "video_fps": self.fps,
            "processing_fps": self.processing_fps, "top": self.top, "overall": self.overall,
            "windows": [{"start_s": w.start, "end_s": w.end, "top": w.top, "faces_found": w.faces_found,
                         "frames": w.frames, "probabilities": w.probabilities} for w in self.windows],
        }


def _device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else
                        ("cpu" if name == "auto" else name))


def window_starts(duration: float, window: float, stride: float) -> list[float]:
    """Start times of windows of ``window`` seconds every ``stride`` seconds, the last one ending at the end
    of the video (one window if the video is shorter than a window)."""
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be > 0 seconds, got {window} and {stride}")
    count = max(1, int(np.floor((duration - window) / stride + 1e-9)) + 1)
    starts = [index * stride for index in range(count)]
    if starts[-1] + window < duration - 1e-6:  # one more window, flush with the end, so the end is seen
        starts.append(duration - window)
    return starts


class Predictor:
    """Predict emotions in video files with a ``VideoClassifier``.

    Args:
        model: the trained classifier (its ``num_frames`` is the frames per window).
        device: "auto" (CUDA if available), "cpu" or "cuda".
        tracker: the face finder (default ``FaceTracker()``).
    """

    def __init__(self, model: VideoClassifier, device: str = "auto", tracker: FaceTracker | None = None) -> None:
        self.device = _device(device)
        self.model = model.to(self.device).eval()
        self.tracker = tracker or FaceTracker()
        normalization = normalization_for(model)
        self.size = normalization.size
        self.transform = eval_transform(normalization)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", backbone_checkpoint: str | Path | None = None,
                        pretrained: bool = False, impl: str = "auto") -> Predictor:
        """Rebuild the model an adapter checkpoint was saved from, with the backbone's weights.

        The checkpoint holds adapters, head and config only: the backbone weights come from
        ``backbone_checkpoint`` (a local .safetensors/.pth file) or from timm (``pretrained=True``); the input
        normalisation is the one recorded in the checkpoint. Raises FileNotFoundError for a missing file,
        CheckpointError for an unreadable or mismatched one, ValueError when no backbone weights are given.
        """
        config = read_adapter_config(path)
        trained_on = config.get("backbone_weights") or {}
        if backbone_checkpoint is None and not pretrained:
            named = f", the file {trained_on['file']}" if "file" in trained_on else ""
            raise ValueError(f"{path} holds adapters and head only: give the backbone weights "
                             f"(backbone_checkpoint=FILE, --backbone-checkpoint{named}) or pretrained=True for "
                             "timm's weights")
        if backbone_checkpoint is None and "file" in trained_on:
            raise ValueError(f"{path} was trained on the backbone weights in the file {trained_on['file']}, not on "
                             "timm's: give that file as backbone_checkpoint (--backbone-checkpoint)")
        adapter, normalization = config["adapter"], config.get("input", {})
        model = create_model(
            config["backbone"], num_classes=len(config["class_names"]), num_frames=adapter["num_frames"],
            pretrained=pretrained and backbone_checkpoint is None, checkpoint=backbone_checkpoint,
            class_names=config["class_names"], backbone_kwargs=config.get("backbone_kwargs"),
            mean=normalization.get("mean"), std=normalization.get("std"),
            bottleneck=adapter["bottleneck"], kernel_size=adapter["kernel_size"], dilation=adapter["dilation"],
            placement=adapter["placement"], activation=adapter["activation"], impl=impl,
        )
        load_adapters(model, path)
        return cls(model, device)

    @torch.no_grad()
    def predict_video(self, path: str | Path, window: float = 2.0, stride: float = 0.5,
                      batch_size: int = 8) -> VideoPrediction:
        """Probabilities per window of ``window`` seconds every ``stride`` seconds, and for the whole video."""
        path = Path(path)
        started = time.perf_counter()
        try:
            frames, fps = decode_video(path)
        except UnreadableClip as error:
            raise PredictionError(str(error)) from None
        duration = len(frames) / fps
        starts = window_starts(duration, window, stride)
        per_window = []
        for start in starts:
            first = min(len(frames) - 1, int(round(start * fps)))
            last = max(first + 1, min(len(frames), int(round((start + window) * fps))))
            per_window.append([first + i for i in sample_indices(last - first, self.model.num_frames)])

        needed = sorted({index for indices in per_window for index in indices})
        tracked = dict(zip(needed, self.tracker.track([frames[i] for i in needed]), strict=True))
        if all(face is None or not face.detected for face in tracked.values()):
            raise PredictionError(f"{path}: no face found in any of the {len(needed)} frames examined")

        crops = {index: crop_face(frames[index], tracked[index].box, self.size) for index in needed}
        clips = torch.stack([self.transform(torch.from_numpy(np.stack([crops[i] for i in indices]))
                                            .permute(0, 3, 1, 2)) for indices in per_window])
        probabilities = []
        for batch in clips.split(batch_size):
            probabilities.append(self.model(batch.to(self.device)).float().softmax(-1).cpu())
        probabilities = torch.cat(probabilities)

        names = self.model.class_names
        windows = [
            WindowPrediction(start, min(start + window, duration),
                             {name: float(p) for name, p in zip(names, row.tolist(), strict=True)},
                             sum(tracked[i].detected for i in indices), len(indices))
            for start, indices, row in zip(starts, per_window, probabilities, strict=True)
        ]
        thumbnails = [crops[indices[len(indices) // 2]] for indices in per_window]
        elapsed = time.perf_counter() - started
        return VideoPrediction(str(path), duration, fps, windows, len(frames) / elapsed, thumbnails)

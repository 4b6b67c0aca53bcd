"""What runs the model in prediction: PyTorch (a ``VideoClassifier``) or an exported file (ONNX or .pt2).

Both take clips of RGB pixels scaled to 0..1, ``(B, T, 3, H, W)`` float32, and return class probabilities
``(B, classes)`` as a float32 CPU tensor; the normalisation with the model's mean and std happens inside, as in
an exported graph. So the predictor, its face crops and its outputs are the same whichever engine runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from fe_adapter.data.transforms import normalization_for
from fe_adapter.model import VideoClassifier


class Engine(Protocol):
    """Runs a classifier on 0..1 pixel clips (see the module docstring)."""

    class_names: list[str]
    num_frames: int
    size: int  # the side of the square input frames

    def __call__(self, clips: torch.Tensor) -> torch.Tensor: ...


class TorchEngine:
    """A ``VideoClassifier`` on ``device``, in eval mode, its inputs normalised with its recorded statistics."""

    def __init__(self, model: VideoClassifier, device: torch.device) -> None:
        self.model, self.device = model.to(device).eval(), device
        normalization = normalization_for(model)
        self.class_names, self.num_frames, self.size = list(model.class_names), model.num_frames, normalization.size
        self.mean = torch.tensor(normalization.mean, device=device).view(1, 1, 3, 1, 1)
        self.std = torch.tensor(normalization.std, device=device).view(1, 1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        clips = (clips.to(self.device) - self.mean) / self.std
        return self.model(clips).float().softmax(-1).cpu()


class ExportedEngine:
    """A model exported by ``fe-adapter export`` (``fe_adapter.export``): ONNX on onnxruntime, or .pt2."""

    def __init__(self, path: str | Path) -> None:
        from fe_adapter.export import load_exported, read_metadata

        self.path = Path(path)
        metadata = read_metadata(self.path)
        self.class_names, self.num_frames = list(metadata["class_names"]), int(metadata["num_frames"])
        self.size = int(metadata["input"]["shape"][-1])
        self._run = load_exported(self.path)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        _, probabilities = self._run(clips.numpy())
        return torch.from_numpy(probabilities).float()

"""MTCNN (Zhang et al. 2016) with facenet-pytorch's weights, run without facenet-pytorch's code.

facenet-pytorch's ``MTCNN.detect`` cuts and resizes every candidate box separately in a Python loop (an
``interpolate`` call per box, 70 to 100 a frame) and imports torchvision for its ``nms``; torchvision's import
pulls in ``torch._dynamo``. Here the same three networks (the weights files in facenet-pytorch's wheel, MIT) run
the same pipeline with the same thresholds, but every box of a stage is cut and area-resized at once from a
summed-area table of the frame (the same bins as torch's ``interpolate(mode="area")``), and non-maximum suppression
is numpy's: the boxes, scores and landmarks agree with facenet-pytorch's to float rounding (tests/test_faces.py).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: facenet-pytorch's defaults: the three stages' probability thresholds and the pyramid's scale step.
THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709


def weights_folder() -> Path:
    """facenet-pytorch's ``data`` folder (pnet.pt, rnet.pt, onet.pt), found without importing the package."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("No module named 'facenet_pytorch'")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class _PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class _RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class _ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


def _loaded(network: nn.Module, name: str) -> nn.Module:
    network.load_state_dict(torch.load(weights_folder() / f"{name}.pt", map_location="cpu", weights_only=True))
    return network.eval().requires_grad_(False)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, *, minimum: bool = False) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first: a box goes when it overlaps
    a kept one by more than ``threshold``. Overlap: intersection over union with torchvision's areas ((x1 - x0) *
    (y1 - y0)); ``minimum``: intersection over the smaller box with MTCNN's inclusive areas (+1 a side)."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x0, y0, x1, y1 = (boxes[:, k] for k in range(4))
    extra = 1.0 if minimum else 0.0
    area = (x1 - x0 + extra) * (y1 - y0 + extra)
    order = np.argsort(-scores, kind="stable")
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        width = np.maximum(0.0, np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]) + extra)
        height = np.maximum(0.0, np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]) + extra)
        inter = width * height
        overlap = inter / (np.minimum(area[best], area[rest]) if minimum else area[best] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(kept, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box made square around its centre (its longer side), as MTCNN's ``rerec``."""
    out = boxes.copy()
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    out[:, 0] = boxes[:, 0] + width * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + height * 0.5 - side * 0.5
    out[:, 2], out[:, 3] = out[:, 0] + side, out[:, 1] + side
    return out


def _regressed(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes moved by a stage's regression (offsets in inclusive box sides, as MTCNN's ``bbreg``)."""
    width, height = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.copy()
    out[:, :4] = boxes[:, :4] + offsets * np.stack([width, height, width, height], axis=1)
    return out


def _bins(start: np.ndarray, length: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first and one-past-last pixel of each of ``size`` bins over ``length`` pixels from ``start`` (torch's
    adaptive average pooling: floor(i L / n) to ceil((i + 1) L / n))."""
    steps = np.arange(size)
    first = start[:, None] + (steps[None, :] * length[:, None]) // size
    last = start[:, None] + ((steps[None, :] + 1) * length[:, None] + size - 1) // size
    return first, last


class Mtcnn:
    """The three MTCNN networks on the CPU; ``detect`` finds faces in one RGB uint8 frame."""

    def __init__(self) -> None:
        self.pnet, self.rnet, self.onet = _loaded(_PNet(), "pnet"), _loaded(_RNet(), "rnet"), _loaded(_ONet(), "onet")

    @torch.inference_mode()
    def detect(self, frame: np.ndarray, min_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4) as (x0, y0, x1, y1), probabilities (N,) and landmarks (N, 5, 2) of the faces of at least
        ``min_size`` pixels in ``frame`` (RGB uint8, (H, W, 3)), as facenet-pytorch's ``MTCNN.detect`` with
        ``keep_all=True`` finds them (in the order its last non-maximum suppression keeps them)."""
        table = summed_area_table(frame)
        boxes = self._proposals(table, min_size)
        if len(boxes):
            boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
            sides = boxes[:, 2:4] - boxes[:, 0:2]  # this stage's offsets are in exclusive box sides
            moved = boxes[:, :4] + boxes[:, 5:9] * np.concatenate([sides, sides], axis=1)
            boxes = _square(np.concatenate([moved, boxes[:, 4:5]], axis=1))
        if len(boxes):  # second stage: 24 px crops through RNet
            inside, crops = self._crops(table, boxes, 24)
            boxes = boxes[inside]
        if len(boxes):
            offsets, probabilities = self.rnet(crops)
            score = probabilities[:, 1].numpy()
            keep = score > THRESHOLDS[1]
            boxes = np.concatenate([boxes[keep, :4], score[keep, None]], axis=1)
            offsets = offsets.numpy()[keep]
            picked = nms(boxes[:, :4], boxes[:, 4], 0.7)
            boxes = _square(_regressed(boxes[picked], offsets[picked]))
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        _, boxes, landmarks = self._last_stage(table, boxes)
        keep = boxes[:, 4] > THRESHOLDS[2]
        boxes, landmarks = boxes[keep], landmarks[keep]
        picked = nms(boxes[:, :4], boxes[:, 4], 0.7, minimum=True)
        return boxes[picked, :4], boxes[picked, 4], landmarks[picked]

    @torch.inference_mode()
    def refine(self, frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """MTCNN's last stage alone on ``boxes`` (N, 4) of ``frame`` (RGB uint8), each made square: the face's box as
        ONet regresses it, its probability and landmarks, one row per box in the order given (no threshold, no
        suppression; NaN for a box wholly outside the frame). A face followed from a box near it costs one 48 px
        crop, not a scan of the frame: only the part of the frame under the boxes is summed."""
        boxes = _square(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        found, landmarks = np.full((len(boxes), 5), np.nan), np.full((len(boxes), 5, 2), np.nan)
        if len(boxes):
            height, width = frame.shape[:2]
            # a margin of a pixel: ``_crops`` starts a crop one pixel before a box's truncated corner
            left = int(np.clip(np.floor(boxes[:, 0].min()) - 1, 0, width - 1))
            top = int(np.clip(np.floor(boxes[:, 1].min()) - 1, 0, height - 1))
            right = int(np.clip(np.ceil(boxes[:, 2].max()) + 1, left + 1, width))
            bottom = int(np.clip(np.ceil(boxes[:, 3].max()) + 1, top + 1, height))
            shift = np.array([left, top, left, top], dtype=np.float64)
            table = summed_area_table(frame[top:bottom, left:right])
            inside, refined, points = self._last_stage(table, boxes - shift)
            found[inside] = refined + np.append(shift, 0.0)
            landmarks[inside] = points + shift[:2]
        return found[:, :4], found[:, 4], landmarks

    def _last_stage(self, table: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ONet on the boxes' 48 px crops, before any threshold: which boxes lie partly in the frame (``_crops``),
        and for those, rows of (x0, y0, x1, y1, probability) regressed and their landmarks (N, 5, 2)."""
        inside, crops = self._crops(table, boxes, 48)
        boxes = boxes[inside]
        if not len(boxes):
            return inside, np.zeros((0, 5)), np.zeros((0, 5, 2))
        offsets, points, probabilities = (output.numpy() for output in self.onet(crops))
        boxes = np.concatenate([boxes[:, :4], probabilities[:, 1:2]], axis=1)
        sides = boxes[:, 2:4] - boxes[:, 0:2] + 1
        landmarks = np.stack([sides[:, None, 0] * points[:, :5] + boxes[:, None, 0] - 1,
                              sides[:, None, 1] * points[:, 5:] + boxes[:, None, 1] - 1], axis=2)
        return inside, _regressed(boxes, offsets), landmarks

    def _proposals(self, table: np.ndarray, min_size: int) -> np.ndarray:
        """PNet's candidate boxes over the scale pyramid, each scale's suppressed apart: rows of (x0, y0, x1, y1,
        score, 4 regression offsets)."""
        height, width = table.shape[0] - 1, table.shape[1] - 1
        scale = 12.0 / min_size
        shorter = min(height, width) * scale
        found = []
        while shorter >= 12:
            level = area_resized(table, 0, 0, height, width, int(height * scale + 1), int(width * scale + 1))
            offsets, probabilities = self.pnet(_normalised(level[None]))
            score = probabilities[0, 1].numpy()
            rows, columns = np.nonzero(score >= THRESHOLDS[0])
            if len(rows):
                corner = np.stack([columns, rows], axis=1).astype(np.float32)
                boxes = np.concatenate([np.floor((2 * corner + 1) / scale), np.floor((2 * corner + 12) / scale),
                                        score[rows, columns, None], offsets[0].numpy()[:, rows, columns].T], axis=1)
                found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
            scale *= FACTOR
            shorter *= FACTOR
        return np.concatenate(found) if found else np.zeros((0, 9), dtype=np.float32)

    @staticmethod
    def _crops(table: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, torch.Tensor]:
        """Which boxes lie partly in the frame (a mask), and their parts in the frame area-resized to ``size``
        pixels, normalised as the networks expect: (N inside, 3, size, size)."""
        height, width = table.shape[0] - 1, table.shape[1] - 1
        corners = np.trunc(boxes[:, :4]).astype(np.int64)
        x0, y0 = np.maximum(corners[:, 0], 1) - 1, np.maximum(corners[:, 1], 1) - 1
        x1, y1 = np.minimum(corners[:, 2], width), np.minimum(corners[:, 3], height)
        inside = (x1 > x0) & (y1 > y0)
        x0, y0, x1, y1 = x0[inside], y0[inside], x1[inside], y1[inside]
        crops = area_resized(table, y0, x0, y1 - y0, x1 - x0, size, size)
        return inside, _normalised(crops)


def _normalised(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) float pixel values as the networks take them: (N, 3, H, W), (v - 127.5) / 128."""
    return (torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2) - 127.5) * 0.0078125


def summed_area_table(frame: np.ndarray) -> np.ndarray:
    """(H + 1, W + 1, 3) integer sums of ``frame``'s pixels above and left of each position (exact). Summed by torch,
    whose ``cumsum`` over a frame's rows is several times faster than numpy's."""
    height, width = frame.shape[:2]
    kind = torch.int32 if height * width * 255 < 2**31 else torch.int64
    table = torch.zeros((height + 1, width + 1, 3), dtype=kind)
    with warnings.catch_warnings():  # torch only reads the pixels, which may be read-only (Pillow's, a video's)
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        pixels = torch.from_numpy(frame)
    torch.cumsum(pixels, 0, dtype=kind, out=table[1:, 1:])
    table[1:, 1:].cumsum_(1)
    return table.numpy()


def area_resized(table: np.ndarray, top, left, height, width, rows: int, columns: int) -> np.ndarray:
    """The frame's region(s) from (``top``, ``left``) of ``height`` x ``width`` pixels (ints, or arrays for N
    regions), each resized to ``rows`` x ``columns`` by averaging the pixels of each output cell (torch's
    ``interpolate(mode="area")``, i.e. adaptive average pooling), from the frame's ``summed_area_table``:
    (rows, columns, 3) float64, or (N, rows, columns, 3) for arrays."""
    single = np.isscalar(top)
    top, left, height, width = (np.atleast_1d(np.asarray(v, dtype=np.int64)) for v in (top, left, height, width))
    first_row, end_row = _bins(top, height, rows)
    first_column, end_column = _bins(left, width, columns)
    if single:  # whole rows first (contiguous copies), then columns
        strips = table[end_row[0]] - table[first_row[0]]
        sums = (strips[:, end_column[0]] - strips[:, first_column[0]])[None]
    else:
        bottom, upper = end_row[:, :, None], first_row[:, :, None]
        right, left_ = end_column[:, None, :], first_column[:, None, :]
        sums = table[bottom, right] - table[upper, right] - table[bottom, left_] + table[upper, left_]
    counts = ((end_row - first_row)[:, :, None] * (end_column - first_column)[:, None, :])[..., None]
    resized = sums / counts
    return resized[0] if single else resized

"""A synthetic dynamic-expression set: procedurally drawn faces whose expression moves over time.

No downloads, deterministic per seed, small enough to train on a CPU in minutes. Two label spaces:

* clips (``SyntheticClips``, classes ``SYNTHETIC_CLASSES``): a held expression (neutral, happy, sad,
  surprise), separable from single frames, and the onset vs the offset of a smile, which differ **only in
  temporal order**: the offset clip of a seed is exactly the onset clip of that seed played backwards, so
  a model that averages per-frame features cannot tell them apart, while one that models time can;
* frames (``SyntheticFaces``, classes ``FRAME_CLASSES``): single faces with a static expression, to
  pretrain a small *image* classifier that the adapters then turn into a video model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fe_adapter.data.dataset import ClipDataset
from fe_adapter.data.images import ImageItem, ImageList
from fe_adapter.data.sources import FRAME_CLASSES, SYNTHETIC_CLASSES, ClipItem, ClipList, DatasetError
from fe_adapter.data.transforms import Normalization, eval_transform

#: Class pairs whose clips hold the same frames in opposite temporal order.
ORDER_ONLY_PAIRS = (("happy_onset", "happy_offset"),)
#: The lengths (in frames) a synthetic clip can have.
CLIP_LENGTHS = range(16, 33)
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class _Face:
    """A random identity: geometry, colours, camera noise and head motion."""

    cx: float
    cy: float
    rx: float
    ry: float
    skin: np.ndarray
    background: tuple[np.ndarray, np.ndarray]
    eye_gap: float
    mouth_width: float
    noise: float
    motion: float
    phase: float
    frequency: float


def _random_face(rng: np.random.Generator, size: int) -> _Face:
    rx = rng.uniform(0.34, 0.40) * size  # a face crop: the face fills most of the frame
    tone = rng.uniform(0.0, 1.0)  # from dark to light skin
    skin = (np.array([95, 60, 40]) + tone * np.array([140, 130, 120]) + rng.uniform(-12, 12, 3)).astype(np.float32)
    return _Face(
        cx=size / 2 + rng.uniform(-0.03, 0.03) * size, cy=size / 2 + rng.uniform(-0.02, 0.02) * size,  # aligned
        rx=rx, ry=rx * rng.uniform(1.15, 1.32), skin=skin,
        background=(rng.uniform(40, 215, 3).astype(np.float32), rng.uniform(40, 215, 3).astype(np.float32)),
        eye_gap=rng.uniform(0.36, 0.44), mouth_width=rng.uniform(0.4, 0.5), noise=rng.uniform(2.0, 6.0),
        motion=rng.uniform(0.0, 0.04) * size, phase=rng.uniform(0, 2 * np.pi), frequency=rng.uniform(0.5, 1.5),
    )


def _expression(kind: str, intensity: float) -> dict[str, float]:
    """Facial parameters: mouth curvature (+ smile), mouth opening, brow raise and tilt, eye opening."""
    params = {"smile": 0.0, "open": 0.0, "raise": 0.0, "tilt": 0.0, "eyes": 0.5}
    if kind == "happy":
        params.update(smile=1.0 * intensity, open=0.5 * intensity, eyes=0.5 - 0.3 * intensity)
    elif kind == "sad":
        params.update(smile=-1.0 * intensity, tilt=1.0 * intensity, eyes=0.5 - 0.25 * intensity)
    elif kind == "surprise":
        params.update(open=1.0 * intensity, eyes=0.5 + 0.5 * intensity)
        params["raise"] = 1.0 * intensity
    return params


def _render(face: _Face, kind: str, intensity: float, shift: tuple[float, float], size: int,
            rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 frame."""
    p = _expression(kind, intensity)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    t = (yy / size)[..., None]
    image = face.background[0] * (1 - t) + face.background[1] * t
    cx, cy = face.cx + shift[0], face.cy + shift[1]

    distance = ((xx - cx) / face.rx) ** 2 + ((yy - cy) / face.ry) ** 2
    inside = distance <= 1
    image[inside] = (face.skin * (1 - 0.18 * distance[..., None]))[inside]

    eye_w, eye_y = 0.2 * face.rx, cy - 0.2 * face.ry
    eye_h = face.ry * 0.09 * (0.4 + p["eyes"])
    for side in (-1.0, 1.0):
        ex = cx + side * face.eye_gap * face.rx
        image[((xx - ex) / eye_w) ** 2 + ((yy - eye_y) / eye_h) ** 2 <= 1] = (245, 245, 245)
        image[((xx - ex) / (0.45 * eye_w)) ** 2 + ((yy - eye_y) / min(eye_h, 0.45 * eye_w)) ** 2 <= 1] = (30, 25, 20)
        # brows: raised for surprise, inner ends up (tilt) for sadness
        u = (xx - ex) / eye_w * side  # -1 at the inner end, +1 at the outer
        brow_y = eye_y - 0.2 * face.ry - p["raise"] * 0.12 * face.ry + p["tilt"] * u * 0.2 * face.ry
        image[(np.abs(yy - brow_y) < 0.035 * face.ry + 0.6) & (np.abs(u) <= 1.1)] = (60, 40, 30)

    mouth_y, mouth_w = cy + 0.45 * face.ry, face.mouth_width * face.rx
    u = (xx - cx) / mouth_w
    lip_y = mouth_y - p["smile"] * 0.4 * face.ry * (u**2 - 0.3)
    image[(np.abs(yy - lip_y) < 0.04 * face.ry + 0.6) & (np.abs(u) <= 1)] = (150, 40, 50)
    if p["open"] > 0:
        opening = ((xx - cx) / (0.6 * mouth_w)) ** 2 + ((yy - mouth_y) / (p["open"] * 0.2 * face.ry + 1e-3)) ** 2
        image[opening <= 1] = (45, 10, 15)

    image += rng.normal(0.0, face.noise, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _clip_plan(seed: int, class_name: str, size: int) -> tuple[_Face, int, Callable[[int], float], str]:
    """Identity, length, intensity per frame and expression kind of a clip (the same draws for every class)."""
    rng = np.random.default_rng(seed)
    face = _random_face(rng, size)
    length = int(rng.integers(CLIP_LENGTHS.start, CLIP_LENGTHS.stop))
    level = rng.uniform(0.65, 1.0)
    start, end = rng.uniform(0.1, 0.35) * length, rng.uniform(0.6, 0.9) * length
    if class_name in ("happy_onset", "happy_offset"):
        def intensity(frame: int) -> float:
            source = frame if class_name == "happy_onset" else length - 1 - frame
            return float(np.clip((source - start) / (end - start), 0.0, 1.0)) * level
        return face, length, intensity, "happy"
    if class_name not in SYNTHETIC_CLASSES:
        raise ValueError(f"class_name must be one of {SYNTHETIC_CLASSES}, got {class_name!r}")
    return face, length, (lambda frame: 0.0 if class_name == "neutral" else level), class_name


def render_clip(seed: int, class_name: str, indices_for: Callable[[int], Sequence[int]] | None = None,
                size: int = 112, cache: dict | None = None) -> np.ndarray:
    """Frames (len(indices), size, size, 3) uint8 of the synthetic clip ``seed`` of class ``class_name``.

    ``indices_for(length)`` picks the frames (default: all). Head motion and camera noise are functions of
    the frame's position in the onset ordering, so an offset clip is its onset clip reversed, exactly.
    ``cache`` (a dict) keeps each rendered frame for later calls: a frame is a function of its key alone.
    """
    face, length, intensity, kind = _clip_plan(seed, class_name, size)
    reverse = class_name == "happy_offset"
    frames = []
    for frame in (indices_for(length) if indices_for else range(length)):
        key = (seed, class_name, size, frame)
        if cache is not None and key in cache:
            frames.append(cache[key])
            continue
        source = length - 1 - frame if reverse else frame
        angle = face.phase + 2 * np.pi * face.frequency * source / length
        shift = (face.motion * np.sin(angle), 0.5 * face.motion * np.cos(angle))
        noise = np.random.default_rng([seed, source])
        frames.append(_render(face, kind, intensity(frame), shift, size, noise))
        if cache is not None:
            cache[key] = frames[-1]
    return np.stack(frames)


def synthetic_clip_list(num_clips: int = 600, split: str = "train") -> ClipList:
    """The ``num_clips`` clips of a synthetic split, classes balanced (clip i has label i mod 6); no file behind
    them (``SyntheticClips`` renders them)."""
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {tuple(_SPLIT_CODES)}, got {split!r}")
    items = [ClipItem(Path(f"synthetic/{split}/{index:06d}"), index % len(SYNTHETIC_CLASSES), "synthetic")
             for index in range(num_clips)]
    return ClipList(items, SYNTHETIC_CLASSES, source=f"the synthetic {split} set of {num_clips} clips")


def _clip_seed(seed: int, split: str, index: int) -> int:
    return int(np.random.SeedSequence([seed, _SPLIT_CODES[split], index]).generate_state(1)[0])


class SyntheticClips(ClipDataset):
    """``num_clips`` synthetic clips, classes balanced (clip i has label i mod 6), rendered on the fly.

    Same interface as the real datasets (class names, sampling, transforms, views). ``split`` and
    ``seed`` pick disjoint, repeatable sets of identities; ``normalization`` gives the backbone's mean and
    std (default 0.5 and 0.5, the [-1, 1] range of ``SyntheticFaces``).

    Training clips get random frame sampling but, by default, no crop or colour jitter: every clip is a new
    identity already, and an image model pretrained on ``SyntheticFaces`` has never seen such distortions
    (they cost the demo's FE-Adapter 2 to 4 points of UAR, see docs/demo.md). Pass ``transform`` to augment.

    Rendering is most of the cost of a synthetic clip (the demo's video models spent most of their loading time
    in it), so rendered frames are kept in memory when every frame of the set fits ``CACHE_BYTES`` (the demo's
    40 px clips: ~55 MB); with loader processes each keeps its own.
    """

    #: The most memory the rendered frames of one set may take for them to be kept (see above).
    CACHE_BYTES = 256 * 2**20

    def __init__(self, num_clips: int = 600, split: str = "train", seed: int = 0, size: int = 112,
                 num_frames: int = 16, train: bool | None = None, normalization: Normalization | None = None,
                 **kwargs) -> None:
        clips = synthetic_clip_list(num_clips, split)
        train = split == "train" if train is None else train
        if normalization is None:  # pixels to [-1, 1], as SyntheticFaces gives them
            normalization = Normalization(size=size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        normalization = Normalization(size, normalization.mean, normalization.std)
        kwargs.setdefault("transform", eval_transform(normalization))
        super().__init__(clips, num_frames=num_frames, train=train, **kwargs)
        self.split, self.seed, self.size = split, seed, size
        every_frame = num_clips * (CLIP_LENGTHS.stop - 1) * size * size * 3
        self._frames: dict | None = {} if every_frame <= self.CACHE_BYTES else None

    def read(self, item: ClipItem, indices_for: Callable[[int], Sequence[int]]) -> np.ndarray:
        index = int(item.path.name)
        seed = _clip_seed(self.seed, self.split, index)
        return render_clip(seed, self.class_names[item.label], indices_for, self.size, self._frames)


class SyntheticFaces(Dataset):
    """Single synthetic faces with a static expression (``FRAME_CLASSES``): (3, size, size) float, label.

    Image ``i`` shows identity ``i // 4`` with expression ``i % 4``: every identity in all four expressions,
    as posed-expression datasets photograph each subject; batches of whole identities (see ``demo``) then
    differ only in expression.
    """

    def __init__(self, num_images: int = 2000, split: str = "train", seed: int = 0, size: int = 112) -> None:
        if split not in _SPLIT_CODES:
            raise ValueError(f"split must be one of {tuple(_SPLIT_CODES)}, got {split!r}")
        self.num_images, self.split, self.seed, self.size = num_images, split, seed, size
        self.class_names = FRAME_CLASSES

    def __len__(self) -> int:
        return self.num_images

    def render(self, index: int) -> np.ndarray:
        """Image ``index`` as (size, size, 3) uint8 pixels."""
        identity, label = divmod(index, len(FRAME_CLASSES))
        identity_seed = _clip_seed(self.seed + 7919, self.split, identity)
        face = _random_face(np.random.default_rng(identity_seed), self.size)
        rng = np.random.default_rng([identity_seed, label])  # this image's intensity and camera noise
        intensity = 0.0 if label == 0 else rng.uniform(0.6, 1.0)
        return _render(face, FRAME_CLASSES[label], intensity, (0.0, 0.0), self.size, rng)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        tensor = torch.from_numpy(self.render(index)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
        return tensor, index % len(FRAME_CLASSES)


def synthetic_faces(split: str = "train", count: int = 2400, size: int = 112, seed: int = 0,
                    class_names: Sequence[str] | None = None) -> ImageList:
    """The single synthetic faces of ``SyntheticFaces`` as an ``ImageList`` (pixels rendered once, held in memory):
    the image format "synthetic-faces" of ``fe_adapter.data.registry``, on which the demo pretrains its image model.
    Image ``i`` is identity ``i // 4`` in expression ``i % 4`` (``data.group_size=4`` keeps identities together).
    ``count`` is the training split's size; the val and test splits hold a quarter as many (other identities)."""
    if class_names is not None and tuple(class_names) != FRAME_CLASSES:
        raise DatasetError(f"the synthetic faces have the classes {', '.join(FRAME_CLASSES)} in this order, not "
                           f"{', '.join(class_names)}")
    if count < len(FRAME_CLASSES) or count % len(FRAME_CLASSES):
        raise DatasetError(f"count must be a positive multiple of {len(FRAME_CLASSES)} (whole identities), got {count}")
    if split != "train":
        count = max(len(FRAME_CLASSES), count // 4 // len(FRAME_CLASSES) * len(FRAME_CLASSES))
    faces = SyntheticFaces(count, split, seed, size)
    items = [ImageItem(None, index % len(FRAME_CLASSES), f"synthetic/{split}/{index:06d}", pixels=faces.render(index))
             for index in range(count)]
    return ImageList(items, FRAME_CLASSES, [], f"the synthetic {split} faces ({count})")

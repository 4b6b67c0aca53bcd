"""Video data for dynamic facial expression recognition: sources, sampling, transforms, loaders.

Typical use::

    from fe_adapter import data
    clips = data.dfew("/data/DFEW", fold=1, split="train")
    dataset = data.ClipDataset(clips, num_frames=16, train=True,
                               transform=data.train_transform(data.normalization_for(model)))
    for clips, labels, ids in data.make_loader(dataset, batch_size=8):
        ...
"""

from fe_adapter.data.dataset import ClipDataset, ClipSample
from fe_adapter.data.loader import ClipBatch, SkipReport, collate_clips, default_num_workers, make_loader
from fe_adapter.data.readers import UnreadableClip, read_frames
from fe_adapter.data.sampling import SAMPLINGS, sample_indices
from fe_adapter.data.sources import (
    DFEW_CLASSES,
    FERV39K_CLASSES,
    MAFW_CLASSES,
    ClipItem,
    ClipList,
    DatasetError,
    dfew,
    ferv39k,
    folder_tree,
    list_file,
    mafw,
)
from fe_adapter.data.synthetic import (
    FRAME_CLASSES,
    ORDER_ONLY_PAIRS,
    SYNTHETIC_CLASSES,
    SyntheticClips,
    SyntheticFaces,
    render_clip,
)
from fe_adapter.data.transforms import Normalization, eval_transform, normalization_for, train_transform

__all__ = [
    "DFEW_CLASSES", "FERV39K_CLASSES", "FRAME_CLASSES", "MAFW_CLASSES", "ORDER_ONLY_PAIRS", "SAMPLINGS",
    "SYNTHETIC_CLASSES", "ClipBatch", "ClipDataset", "ClipItem", "ClipList", "ClipSample", "DatasetError",
    "Normalization", "SkipReport", "SyntheticClips", "SyntheticFaces", "UnreadableClip", "collate_clips",
    "default_num_workers", "dfew", "eval_transform", "ferv39k", "folder_tree", "list_file", "mafw", "make_loader",
    "normalization_for", "read_frames", "render_clip", "sample_indices", "train_transform",
]

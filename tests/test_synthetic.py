"""The synthetic dynamic-expression set: deterministic, balanced, and order-only classes that frames can't tell."""

from __future__ import annotations

import numpy as np
import torch

from fe_adapter import data


def test_deterministic_per_seed_and_split():
    first, again = data.SyntheticClips(12, seed=3, size=48), data.SyntheticClips(12, seed=3, size=48)
    other_seed, other_split = data.SyntheticClips(12, seed=4, size=48), data.SyntheticClips(12, "test", seed=3, size=48)
    for dataset in (first, again, other_seed, other_split):
        dataset.train = False
        dataset.transform = lambda c: c.float()
    assert torch.equal(first[5].clip, again[5].clip)
    assert not torch.equal(first[5].clip, other_seed[5].clip)
    assert not torch.equal(first[5].clip, other_split[5].clip)
    assert first.class_counts() == [2] * 6 and first.class_names == data.SYNTHETIC_CLASSES


def test_clips_have_the_dataset_interface():
    dataset = data.SyntheticClips(6, split="test", size=64, num_frames=8)
    sample = dataset[4]
    assert sample.clip.shape == (8, 3, 64, 64) and sample.clip.dtype == torch.float32
    assert sample.label == 4 and data.SYNTHETIC_CLASSES[sample.label] == "happy_onset"
    batch = data.collate_clips([dataset[i] for i in range(3)])
    assert batch.clips.shape == (3, 8, 3, 64, 64)


def _frame_statistics(frames: np.ndarray) -> list[tuple[float, ...]]:
    """Per-frame pixel statistics: mean and std per channel, and the mean of the lower (mouth) half."""
    return [tuple(np.round([*f.mean((0, 1)), *f.std((0, 1)), f[f.shape[0] // 2:].mean()], 6)) for f in frames]


def test_order_only_classes_have_identical_frame_distributions():
    """An offset clip holds exactly its onset clip's frames, reversed: per-frame statistics can't separate them."""
    for seed in range(6):
        onset = data.render_clip(seed, "happy_onset", size=48)
        offset = data.render_clip(seed, "happy_offset", size=48)
        assert np.array_equal(onset[::-1], offset)
        assert sorted(_frame_statistics(onset)) == sorted(_frame_statistics(offset))
        assert not np.array_equal(onset, offset)  # ...yet the clips differ: the order carries the class


def test_held_classes_differ_frame_by_frame():
    """The other classes are visible in single frames: the smile moves the mouth region."""
    neutral = data.render_clip(0, "neutral", size=48).astype(float)
    happy = data.render_clip(0, "happy", size=48).astype(float)
    assert np.abs(neutral - happy).max() > 50


def test_synthetic_faces_for_the_image_classifier():
    faces = data.SyntheticFaces(8, size=40)
    image, label = faces[6]
    assert image.shape == (3, 40, 40) and -1.0 <= image.min() and image.max() <= 1.0
    assert label == 2 and faces.class_names[label] == "sad"
    assert torch.equal(faces[3][0], data.SyntheticFaces(8, size=40)[3][0])

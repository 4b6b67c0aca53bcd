"""The synthetic dynamic-expression set: deterministic, balanced, and order-only classes that frames can't tell."""

from __future__ import annotations

from fractions import Fraction
from functools import partial

import numpy as np
import pytest
import torch

from fe_adapter import data, demo
from fe_adapter.data import sampling
from fe_adapter.data.synthetic import CLIP_LENGTHS


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


def test_rendered_frames_are_kept_when_the_set_fits_and_read_back_as_rendered(monkeypatch):
    """A small set keeps its rendered frames: training reads over several epochs (random frames) give exactly the
    frames a fresh render gives, and a frame is rendered once; a set too large for the budget keeps none."""
    from fe_adapter.data import synthetic

    rendered = []
    render = synthetic._render
    monkeypatch.setattr(synthetic, "_render", lambda *args: rendered.append(1) or render(*args))
    dataset = data.SyntheticClips(6, size=16, num_frames=8, seed=2)
    dataset.transform = lambda clip: clip
    torch.manual_seed(0)
    reads = 0  # frames rendered by the dataset's reads
    for _ in range(3):  # epochs: each draws its own frames
        for index in range(len(dataset)):
            seed = synthetic._clip_seed(2, "train", index)
            picked: list[int] = []

            def sample(length: int, picked: list[int] = picked) -> list[int]:  # the dataset's draw, remembered
                picked.extend(dataset._indices_for(length))
                return picked

            before = len(rendered)
            clip = dataset.read(dataset.items[index], sample)
            reads += len(rendered) - before
            fresh = synthetic.render_clip(seed, dataset.class_names[index % 6], lambda _, p=picked: p, 16)
            assert np.array_equal(clip, fresh)
    assert reads == len(dataset._frames)  # each frame rendered once, when first read
    assert len(dataset._frames) > 8 * len(dataset)  # the epochs drew more than one clip's worth of frames
    assert data.SyntheticClips(600, size=112)._frames is None  # 600 x 32 frames of 112 px: over the budget


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


def _clip_length(seed: int) -> int:
    lengths: list[int] = []
    data.render_clip(seed, "happy_onset", lambda length: lengths.append(length) or [0], size=8)
    return lengths[0]


def _seed_per_clip_length() -> dict[int, int]:
    """A clip seed for each length the synthetic set draws."""
    seeds: dict[int, int] = {}
    seed = 0
    while len(seeds) < len(CLIP_LENGTHS):
        seeds.setdefault(_clip_length(seed), seed)
        seed += 1
    return seeds


@pytest.mark.parametrize("num_views", [1, 2])
def test_evaluation_shows_an_offset_clip_its_onset_frames_reversed(num_views):
    """At the frames the models see: evaluation sampling (the demo's T, every clip length, each temporal view)
    gives an offset clip exactly the frames of its onset clip in reverse order."""
    for length, seed in _seed_per_clip_length().items():
        dataset = data.SyntheticClips(1, "test", size=16, num_frames=demo.NUM_FRAMES, temporal_views=num_views)
        onset = data.render_clip(seed, "happy_onset", dataset._indices_for, size=16)
        offset = data.render_clip(seed, "happy_offset", dataset._indices_for, size=16)
        onset_views = np.split(onset, num_views)
        offset_views = np.split(offset, num_views)
        for view in range(num_views):  # view v of the offset clip mirrors view V - 1 - v of the onset clip
            assert np.array_equal(offset_views[view], onset_views[num_views - 1 - view][::-1]), (length, view)


def test_training_shows_an_offset_clip_its_onset_frames_reversed_equally_often():
    """Training sampling draws segment offsets o ~ U[0, 1)^T; o and its reflection (1 - o, reversed) are equally
    likely, and the reflection shows the offset clip exactly its onset clip's frames reversed (checked for every
    clip length at the demo's T). The train transform treats every frame of a clip alike, so the two classes
    reach the model with the same frames, in opposite order, equally often."""
    generator, count = torch.Generator().manual_seed(0), demo.NUM_FRAMES
    assert data.SyntheticClips(1, num_frames=count).sampling == "segment"
    for length, seed in _seed_per_clip_length().items():
        for _ in range(3):
            offsets = torch.rand(count, generator=generator, dtype=torch.float64).tolist()
            reflected = [Fraction(1) - Fraction(o) for o in reversed(offsets)]
            onset = data.render_clip(seed, "happy_onset", partial(sampling._segment, count=count, offsets=offsets), 16)
            offset = data.render_clip(seed, "happy_offset", partial(sampling._segment, count=count, offsets=reflected),
                                      16)
            assert np.array_equal(offset, onset[::-1]), length


def test_held_classes_differ_frame_by_frame():
    """The other classes are visible in single frames: the smile moves the mouth region."""
    neutral = data.render_clip(0, "neutral", size=48).astype(float)
    happy = data.render_clip(0, "happy", size=48).astype(float)
    assert np.abs(neutral - happy).max() > 50


def test_synthetic_faces_show_each_identity_in_all_four_expressions():
    """Image i is identity i // 4 with expression i % 4: the same background (and face) four times over."""
    faces = data.SyntheticFaces(8, size=40)
    background = [faces[index][0][:, :4, :4].mean((1, 2)) for index in range(8)]  # a corner outside the face
    assert all(torch.allclose(background[0], background[index], atol=0.05) for index in (1, 2, 3))
    assert not torch.allclose(background[0], background[4], atol=0.05)
    assert [faces[index][1] for index in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert not torch.equal(faces[0][0], faces[1][0])


def test_synthetic_faces_for_the_image_classifier():
    faces = data.SyntheticFaces(8, size=40)
    image, label = faces[6]
    assert image.shape == (3, 40, 40) and -1.0 <= image.min() and image.max() <= 1.0
    assert label == 2 and faces.class_names[label] == "sad"
    assert torch.equal(faces[3][0], data.SyntheticFaces(8, size=40)[3][0])

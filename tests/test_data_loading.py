"""Sampling, transforms, clip loading from videos and frame folders, bad data and the loader."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from fe_adapter import data
from fe_adapter.data import sampling
from fe_adapter.data.readers import VideoReader
from tests.media import frame_id, frame_number, identified_frames, numbered_frames, write_frame_folder, write_video


@pytest.mark.parametrize("available", [3, 16, 50])
@pytest.mark.parametrize("mode", data.SAMPLINGS)
@pytest.mark.parametrize("train", [False, True])
def test_sampled_indices_are_in_range_ordered_and_cover_the_clip(available, mode, train):
    indices = data.sample_indices(available, 8, mode, train=train, stride=2)
    assert len(indices) == 8
    assert all(0 <= i < available for i in indices)
    assert indices == sorted(indices)
    if mode != "consecutive" and available >= 8:
        assert len(set(indices)) == 8 and indices[-1] >= available - available // 8 - 1


def _mirror(indices: list[int], available: int) -> list[int]:
    return [available - 1 - index for index in reversed(indices)]


@pytest.mark.parametrize("mode", ["segment", "uniform"])
def test_evaluation_sampling_shows_a_reversed_clip_its_frames_reversed(mode):
    """A clip and its reversal must be shown the same frames (in opposite order), else the frame set is a cue.

    Every view of the reversed clip is the mirror of the opposite view of the clip. The one case that
    cannot hold (odd T from an even-length clip: its middle position lies between two frames) is left out.
    """
    for available in range(1, 70):
        for count in (1, 2, 3, 4, 7, 8, 16):
            if count % 2 and not available % 2:
                continue
            for num_views in (1, 2, 3):
                views = [data.sample_indices(available, count, mode, view=v, num_views=num_views)
                         for v in range(num_views)]
                assert [_mirror(v, available) for v in reversed(views)] == views, (available, count, num_views)


def test_training_sampling_shows_a_reversed_clip_mirror_frames_with_equal_probability():
    """Segment offsets o ~ U[0, 1)^T and their reflection (1 - o, reversed) are equally likely and give mirror
    frames, so training shows a clip and its reversal mirror frame sets with the same probability.

    Checked on random offsets and on offsets that land exactly on frame boundaries (the tie rule)."""
    generator = torch.Generator().manual_seed(0)
    for available in range(1, 70):
        for count in (1, 2, 4, 7, 8, 16):
            if count % 2 and not available % 2:
                continue
            draws = [torch.rand(count, generator=generator, dtype=torch.float64).tolist() for _ in range(5)]
            draws += [[0.5] * count, [0.25] * count, [index / count for index in range(count)]]
            for offsets in draws:
                reflected = [Fraction(1) - Fraction(o) for o in reversed(offsets)]
                mirrored = _mirror(sampling._segment(available, count, reflected), available)
                assert mirrored == sampling._segment(available, count, offsets), (available, offsets)


def test_sampling_details():
    # segment middles; a middle on a frame boundary takes the frame nearer the clip's middle (44, not 45)
    assert data.sample_indices(80, 8) == [5, 15, 25, 35, 44, 54, 64, 74]
    assert data.sample_indices(3, 6) == [0, 0, 1, 1, 2, 2]  # short clips repeat frames in order
    assert data.sample_indices(100, 4, "consecutive", stride=3) == [45, 48, 51, 54]
    views = [data.sample_indices(80, 4, view=v, num_views=2) for v in range(2)]
    assert views == [[5, 25, 44, 64], [15, 35, 54, 74]]
    uniform_views = [data.sample_indices(80, 4, "uniform", view=v, num_views=2) for v in range(2)]
    assert uniform_views[0] != uniform_views[1]
    generator = torch.Generator().manual_seed(0)
    draws = {tuple(data.sample_indices(80, 4, train=True, generator=generator)) for _ in range(20)}
    assert len(draws) > 1 and all(20 * k <= i < 20 * (k + 1) for d in draws for k, i in enumerate(d))
    with pytest.raises(ValueError, match="sampling mode must be one of"):
        data.sample_indices(10, 4, "random")


def test_train_transform_is_identical_across_frames():
    torch.manual_seed(0)
    frame = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8)
    clip = frame.expand(6, 3, 48, 64)
    out = data.train_transform(data.Normalization(size=32))(clip)
    assert out.shape == (6, 3, 32, 32) and out.dtype == torch.float32
    assert all(torch.equal(out[0], out[i]) for i in range(6))


def test_eval_transform_normalises_and_takes_three_crops():
    clip = torch.full((2, 3, 40, 60), 255, dtype=torch.uint8)
    normalization = data.Normalization(size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    out = data.eval_transform(normalization)(clip)
    assert out.shape == (2, 3, 32, 32)
    torch.testing.assert_close(out, torch.full_like(out, 2.0))
    assert data.eval_transform(normalization, spatial_crops=3)(clip).shape == (3, 2, 3, 32, 32)


@pytest.mark.parametrize("kind", ["video", "frames"])
def test_clips_load_the_sampled_frames(tmp_path, kind):
    frames = numbered_frames(20)
    path = write_video(tmp_path / "c.mp4", frames) if kind == "video" else write_frame_folder(tmp_path / "c", frames)
    clips = data.ClipList([data.ClipItem(path, 1)], ("a", "b"))
    read = []
    dataset = data.ClipDataset(clips, num_frames=4, transform=lambda c: read.append(c) or c.float())
    sample = dataset[0]
    assert sample.clip.shape == (4, 3, 32, 32) and sample.label == 1 and sample.id == str(path)
    assert [frame_number(f.permute(1, 2, 0).numpy()) for f in read[0]] == [2, 7, 12, 17]


def test_multi_view_samples(tmp_path):
    path = write_frame_folder(tmp_path / "c", numbered_frames(16))
    clips = data.ClipList([data.ClipItem(path, 0)], ("a",))
    transform = data.eval_transform(data.Normalization(size=32), spatial_crops=3)
    dataset = data.ClipDataset(clips, num_frames=4, temporal_views=2, transform=transform)
    assert dataset[0].clip.shape == (6, 4, 3, 32, 32)


def test_unreadable_clips_are_skipped_with_one_warning(tmp_path):
    good = write_video(tmp_path / "good.mp4", numbered_frames(8))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(good.read_bytes()[:200])
    empty = tmp_path / "empty"
    empty.mkdir()
    clips = data.ClipList([data.ClipItem(p, 0) for p in (good, corrupt, empty)], ("a",))
    dataset = data.ClipDataset(clips, num_frames=4, transform=lambda c: c.float())
    with pytest.warns(UserWarning, match="skipping unreadable clip") as caught:
        batch = data.collate_clips([dataset[i] for i in range(3)] + [dataset[1]])
    assert sum("corrupt.mp4" in str(w.message) for w in caught) == 1  # warned once per file
    assert any("holds no images" in str(w.message) for w in caught)
    assert batch.clips.shape == (1, 4, 3, 32, 32) and batch.ids == [str(good)]
    assert batch.skipped == [str(corrupt), str(empty), str(corrupt)]

    report = data.SkipReport(min_readable=0.2)
    report.update(batch)
    assert report.finish() == f"skipped 3 unreadable clips of 4 this epoch: {corrupt}, {empty}, {corrupt}"
    report = data.SkipReport(min_readable=0.5)
    report.update(batch)
    with pytest.raises(data.DatasetError, match="only 1 of 4 clips were readable this epoch"):
        report.finish()


def test_loader_batches_and_balanced_sampling(tmp_path):
    items = [data.ClipItem(write_frame_folder(tmp_path / f"c{i}", numbered_frames(4)), 0 if i < 6 else 1)
             for i in range(8)]
    dataset = data.ClipDataset(data.ClipList(items, ("common", "rare")), num_frames=2, train=True,
                               transform=lambda c: c.float())
    assert dataset.class_counts() == [6, 2]
    loader = data.make_loader(dataset, batch_size=4, num_workers=0)
    clips, labels, ids = next(iter(loader))
    assert clips.shape == (4, 2, 3, 32, 32) and labels.shape == (4,) and len(ids) == 4
    balanced = data.make_loader(dataset, batch_size=4, balanced=True, num_workers=0, seed=1)
    drawn = torch.cat([batch.labels for _ in range(25) for batch in balanced])
    assert 0.35 < drawn.float().mean().item() < 0.65  # the rare class is a quarter of the data, half of the draws


def test_decoded_frames_are_batched_as_they_lie_in_memory():
    """uint8 frames decoded as (H, W, 3) and viewed as (3, H, W) (images, clips) are stacked without a
    transposition: the batch holds the same pixels as torch.stack's, laid out channel last; clips of another
    layout, or a mix, are stacked as torch.stack stacks them."""
    generator = torch.Generator().manual_seed(0)
    decoded = [torch.randint(0, 256, (4, 6, 5, 3), dtype=torch.uint8, generator=generator) for _ in range(3)]
    clips = [frames.permute(0, 3, 1, 2) for frames in decoded]  # (T, 3, H, W) views, as ClipDataset makes them
    batch = data.collate_clips([data.ClipSample(clip, 0, str(index)) for index, clip in enumerate(clips)]).clips
    assert torch.equal(batch, torch.stack(clips)) and batch.shape == (3, 4, 3, 6, 5)
    assert batch.movedim(-3, -1).is_contiguous()  # each frame copied as it lay
    images = [frames[0].permute(2, 0, 1) for frames in decoded]
    batch = data.collate_clips([data.ClipSample(image, 0, str(index)) for index, image in enumerate(images)]).clips
    assert torch.equal(batch, torch.stack(images)) and batch.movedim(1, -1).is_contiguous()
    mixed = [images[0].contiguous(), *images[1:]]
    batch = data.collate_clips([data.ClipSample(image, 0, str(index)) for index, image in enumerate(mixed)]).clips
    assert torch.equal(batch, torch.stack(mixed)) and batch.is_contiguous()


def test_loader_with_workers(tmp_path):
    items = [data.ClipItem(write_video(tmp_path / f"{i}.mp4", numbered_frames(6)), i % 2) for i in range(4)]
    dataset = data.ClipDataset(data.ClipList(items, ("a", "b")), num_frames=3, transform=lambda c: c.float())
    batches = list(data.make_loader(dataset, batch_size=2, num_workers=2))
    assert [len(b) for b in batches] == [2, 2]
    assert sorted(i for b in batches for i in b.ids) == sorted(str(item.path) for item in items)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # torch compares with this machine
@pytest.mark.parametrize("cpus, workers", [(1, 0), (2, 1), (4, 3), (32, 8)])
def test_default_workers_are_one_per_usable_cpu_less_one_at_most_8(tmp_path, monkeypatch, cpus, workers):
    """As docs/data.md says."""
    monkeypatch.setattr("fe_adapter.data.loader._usable_cpus", lambda: cpus)
    assert data.default_num_workers() == workers
    clips = data.ClipList([data.ClipItem(write_frame_folder(tmp_path / "c", numbered_frames(4)), 0)], ("a",))
    assert data.make_loader(data.ClipDataset(clips, num_frames=2), batch_size=1).num_workers == workers


def test_video_reader_seeks_past_frames_it_does_not_need(tmp_path):
    video = write_video(tmp_path / "long.mp4", identified_frames(600), fps=25, gop=25)
    wanted = [3, 100, 101, 350, 599]
    with VideoReader(video) as reader:
        assert (reader.frame_count, reader.fps) == (600, 25.0)
        seeking = [(index, frame_id(frame.to_ndarray(format="rgb24"))) for index, frame in reader.frames(wanted)]
        assert reader.seeks >= 2 and reader.decoded < 200  # a few keyframe intervals, not 600 frames
    with VideoReader(video, seek=False) as reader:
        sequential = [(index, frame_id(frame.to_ndarray(format="rgb24"))) for index, frame in reader.frames(wanted)]
        assert reader.seeks == 0 and reader.decoded == 600
    assert seeking == sequential == [(index, index) for index in wanted]


def test_read_frames_of_a_long_video_decodes_only_around_the_sampled_frames(tmp_path, monkeypatch):
    """A list entry pointing at a long video: the sampled frames, without decoding (or keeping) the others."""
    from fe_adapter.data import readers

    readers_made = []

    class Recording(readers.VideoReader):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            readers_made.append(self)

    monkeypatch.setattr(readers, "VideoReader", Recording)
    video = write_video(tmp_path / "long.mp4", identified_frames(600), fps=25, gop=25)
    frames = data.read_frames(video, lambda available: data.sample_indices(available, 4))
    assert [frame_id(frame) for frame in frames] == [75, 225, 374, 524]  # segment middles, mirror-symmetric
    assert readers_made[0].decoded < 150


def test_frame_count_is_counted_when_the_container_does_not_record_it(tmp_path):
    video = write_video(tmp_path / "clip.mkv", identified_frames(40))
    with VideoReader(video) as reader:
        assert reader.frame_count == 40 and reader._stream.frames == 0  # noqa: SLF001  (the case under test)
        assert [frame_id(f.to_ndarray(format="rgb24")) for _, f in reader.frames([0, 39])] == [0, 39]


def test_video_reader_checks_the_indices(tmp_path):
    video = write_video(tmp_path / "clip.mp4", identified_frames(10))
    with VideoReader(video) as reader, pytest.raises(ValueError, match="ascending and distinct"):
        list(reader.frames([3, 3]))
    with VideoReader(video) as reader, pytest.raises(ValueError, match=r"must lie in \[0, 10\)"):
        list(reader.frames([2, 10]))

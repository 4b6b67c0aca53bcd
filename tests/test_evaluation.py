"""Multi-view evaluation: temporal views x spatial crops, in the documented order, averaged per clip."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from fe_adapter import data
from fe_adapter.training import Trainer, config_from_dict
from tests.training_cases import tiny_config

HEIGHT, WIDTH, SIZE = 32, 48, 32
CROP_LEFT = (0, 8, 16)  # start, centre, end of the longer side: (48 - 32) // 2 = 8
PLAIN = data.Normalization(size=SIZE, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # pixel / 255


class GradientClips(data.ClipDataset):
    """Clip i has ``lengths[i]`` frames of 32 x 48 pixels: red = 5 * column (a gradient, so every crop offset
    shows), green = 10 * frame number, blue = 20 * (i + 1) (which clip)."""

    def __init__(self, lengths: Sequence[int]) -> None:
        self.lengths = list(lengths)
        items = [data.ClipItem(f"clip{i}", 0) for i in range(len(lengths))]
        super().__init__(data.ClipList(items, ("a", "b", "c")), num_frames=4, temporal_views=2,
                         transform=data.eval_transform(PLAIN, spatial_crops=3))

    def read(self, item: data.ClipItem, indices_for: Callable[[int], Sequence[int]]) -> np.ndarray:
        clip = int(str(item.path).removeprefix("clip"))
        frames = np.zeros((self.lengths[clip], HEIGHT, WIDTH, 3), dtype=np.uint8)
        frames[..., 0] = 5 * np.arange(WIDTH)
        frames[..., 1] = 10 * np.arange(self.lengths[clip])[:, None, None]
        frames[..., 2] = 20 * (clip + 1)
        return frames[list(indices_for(self.lengths[clip]))]


def test_a_sample_holds_temporal_views_times_spatial_crops_in_order():
    """Views spread over the clip (segment middles at 1/4 and 3/4 of each segment), each with the crops at the
    start, centre and end of the longer side: sample[view * 3 + crop]."""
    clip = GradientClips([16])[0].clip
    assert clip.shape == (6, 4, 3, SIZE, SIZE)
    # 16 frames in 4 segments of 4; positions on a frame boundary in the clip's second half (9, 13, 11, 15) take
    # the earlier frame, so that view 1 of a reversed clip is the mirror of view 0 (docs/data.md)
    frames = {0: [1, 5, 8, 12], 1: [3, 7, 10, 14]}
    for view, numbers in frames.items():
        for crop, left in enumerate(CROP_LEFT):
            pixels = (clip[view * 3 + crop] * 255).round()
            expected_red = 5 * (left + torch.arange(SIZE, dtype=torch.float32))
            assert torch.equal(pixels[:, 0], expected_red.expand(4, SIZE, SIZE)), (view, crop)
            assert pixels[:, 1, 0, 0].tolist() == [10 * n for n in numbers], (view, crop)


class ProbeModel(nn.Module):
    """Logits that tell a view apart: its crop's left column, its first frame's number and its clip."""

    num_classes, class_names = 3, ["a", "b", "c"]

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        pixels = clips * 255
        return torch.stack([pixels[:, 0, 0, 0, 0] / 5, pixels[:, 0, 1, 0, 0] / 10, pixels[:, 0, 2, 0, 0] / 20], 1)


def test_evaluation_averages_the_views_of_each_clip(tmp_path):
    trainer = Trainer(config_from_dict(tiny_config(tmp_path)))
    trainer.model = ProbeModel()
    clips = GradientClips([16, 8])
    evaluation = trainer.evaluate(data.make_loader(clips, batch_size=2, train=False, num_workers=0))
    # by hand: crop columns 0, 8, 16 -> 8; first frames 1 and 3 (16 frames) or 0 and 1 (8 frames); clip 1 or 2
    expected = torch.tensor([[8.0, (1 + 3) / 2, 1.0], [8.0, (0 + 1) / 2, 2.0]])
    torch.testing.assert_close(evaluation.logits, expected)
    assert evaluation.ids == ["clip0", "clip1"]

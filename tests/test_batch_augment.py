"""``BatchAugment``: training augmentation on a batch (on the training device), one draw per clip applied to all
its frames, a different draw per clip, the distribution ``ClipAugment`` draws from, and ``ClipAugment``'s
result for a given draw on both of its paths (clip by clip on the CPU, batched elsewhere)."""

from __future__ import annotations

import math

import pytest
import torch

from fe_adapter import data
from fe_adapter.data.batch_augment import BatchAugment, prepare_transform
from fe_adapter.data.transforms import AugmentParameters

NORM = data.Normalization(size=32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
PATHS = pytest.mark.parametrize("batched", [False, True], ids=["clip by clip", "batched"])


def _clips(batch: int, frames: int, seed: int = 0, height: int = 40, width: int = 52) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, frames, 3, height, width), dtype=torch.uint8, generator=generator)


def _ramps(batch: int, frames: int, height: int = 40, width: int = 52) -> torch.Tensor:
    """Clips whose red channel is the column, green the row (the same in every frame), blue the frame number."""
    clips = torch.empty(batch, frames, 3, height, width, dtype=torch.uint8)
    clips[:, :, 0] = (torch.arange(width) * 4).to(torch.uint8)
    clips[:, :, 1] = (torch.arange(height) * 4).to(torch.uint8)[:, None]
    clips[:, :, 2] = (torch.arange(frames) * 30).to(torch.uint8)[:, None, None]
    return clips


@PATHS
@pytest.mark.parametrize("seed", range(3))
def test_a_clip_of_identical_frames_stays_identical(batched, seed):
    clips = _clips(6, 1, seed).expand(6, 5, 3, 40, 52).contiguous()
    torch.manual_seed(seed)
    out = BatchAugment(NORM, batched=batched)(clips)
    assert out.shape == (6, 5, 3, 32, 32) and out.dtype == torch.float32
    for clip in out:
        assert all(torch.equal(clip[0], clip[frame]) for frame in range(1, 5))


@PATHS
def test_frames_that_differ_get_the_same_crop_box_and_flip(batched):
    clips = _ramps(16, 4)
    torch.manual_seed(1)
    out = BatchAugment(NORM, jitter=0.0, batched=batched)(clips)
    for clip in out:  # columns and rows (red, green) land alike in every frame; the frames' own blue stays theirs
        assert all(torch.equal(clip[0, :2], clip[frame, :2]) for frame in range(1, 4))
        blues = [clip[frame, 2].mean().item() for frame in range(4)]
        assert blues == sorted(blues) and len(set(blues)) == 4


@PATHS
def test_each_clip_of_a_batch_gets_its_own_draw(batched):
    clips = _clips(1, 3, seed=2).expand(8, 3, 3, 40, 52).contiguous()
    torch.manual_seed(0)
    out = BatchAugment(NORM, batched=batched)(clips)
    assert all(not torch.equal(out[i], out[j]) for i in range(8) for j in range(i + 1, 8))


@PATHS
def test_the_batch_gets_what_each_clip_gets_from_clip_augment(batched):
    augment = BatchAugment(NORM, batched=batched)
    clips = _clips(5, 3, seed=4)
    draws = [AugmentParameters((4, 7, 28, 33), True, brightness=1.3, contrast=0.7, saturation=1.25),
             AugmentParameters((0, 0, 40, 52), False),
             AugmentParameters((10, 2, 30, 45), False, brightness=0.75, contrast=1.28, saturation=0.71),
             AugmentParameters((1, 1, 39, 50), True, brightness=1.0, contrast=1.0, saturation=1.0),
             AugmentParameters((5, 9, 35, 40), True, brightness=0.9, contrast=1.1, saturation=1.2)]
    expected = torch.stack([augment.clip_augment.apply(clip, draw) for clip, draw in zip(clips, draws, strict=True)])
    torch.testing.assert_close(augment.apply(clips, draws), expected, rtol=0, atol=1e-5)
    images = clips[:, 0]  # (B, 3, H, W): a batch of images (contrast against each image's own mean grey)
    expected = torch.stack([augment.clip_augment.apply(image, draw) for image, draw in zip(images, draws, strict=True)])
    torch.testing.assert_close(augment.apply(images, draws), expected, rtol=0, atol=1e-5)


def test_flips_and_crops_follow_the_configured_distribution():
    augment = BatchAugment(NORM, scale=(0.5, 0.9), flip=0.3, jitter=0.0)
    torch.manual_seed(0)
    out = augment(_ramps(400, 1, width=52))
    flipped = out[:, 0, 0, :, -1] < out[:, 0, 0, :, 0]  # red falls from left to right: flipped
    assert flipped.all(dim=1).eq(flipped.any(dim=1)).all()
    rate = flipped[:, 0].float().mean().item()
    assert abs(rate - 0.3) < 4 * (0.3 * 0.7 / 400) ** 0.5, rate  # 4 standard deviations of a binomial rate
    draws = augment.sample(2000, 40, 52)
    areas = torch.tensor([draw.crop[2] * draw.crop[3] / (40 * 52) for draw in draws])
    assert 0.5 * 0.95 <= areas.min() and areas.max() <= 0.9 * 1.05  # rounded boxes: a few % either way
    assert 0.5 < areas.quantile(0.05) < 0.56 and 0.84 < areas.quantile(0.95) < 0.9  # uniform over [0.5, 0.9]
    ratios = torch.tensor([draw.crop[3] / draw.crop[2] for draw in draws])
    assert ratios.min() >= 3 / 4 * 0.9 and ratios.max() <= 4 / 3 * 1.1


def test_colour_factors_are_drawn_per_clip_within_the_jitter():
    draws = BatchAugment(NORM, jitter=0.3).sample(2000, 40, 52)
    for name in ("brightness", "contrast", "saturation"):
        factors = torch.tensor([getattr(draw, name) for draw in draws])
        assert 0.7 <= factors.min() and factors.max() <= 1.3
        assert abs(factors.mean().item() - 1.0) < 0.02 and abs(factors.std().item() - 0.6 / 12**0.5) < 0.01


@PATHS
def test_the_same_seed_gives_the_same_augmentation(batched):
    clips = _clips(4, 2, seed=6)
    augment = BatchAugment(NORM, batched=batched)
    torch.manual_seed(7)
    first = augment(clips)
    torch.manual_seed(7)
    assert torch.equal(augment(clips), first)
    torch.manual_seed(8)
    assert not torch.equal(augment(clips), first)


def test_batch_augment_refuses_float_pixels_and_other_shapes():
    with pytest.raises(TypeError, match="uint8 pixels"):
        BatchAugment(NORM)(torch.rand(2, 3, 3, 40, 52))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\) or \(B, 3, H, W\) clips, got \(2, 4, 40, 52\)"):
        BatchAugment(NORM)(torch.zeros(2, 4, 40, 52, dtype=torch.uint8))


def test_prepare_transform_leaves_frames_of_the_input_size_and_brings_others_to_it():
    clip = _clips(1, 3, height=32, width=32)[0]
    assert prepare_transform(NORM)(clip) is clip
    wide = _clips(1, 3, height=40, width=52)[0]
    prepared = prepare_transform(NORM)(wide)
    assert prepared.dtype == torch.uint8 and prepared.shape == (3, 3, 32, 32)
    # the evaluation geometry: the shorter side resized, the centre kept
    torch.testing.assert_close(data.eval_transform(NORM)(wide), data.eval_transform(NORM)(prepared), rtol=0,
                               atol=1e-6)


def _video_trainer(tmp_path):
    """A Trainer of a tiny model on four noise clips in frame folders (a list dataset), batches of 2."""
    from fe_adapter.training import Trainer, config_from_dict
    from tests.training_cases import noise_clip, tiny_config

    lines = []
    for index in range(4):
        noise_clip(tmp_path / "clips" / f"c{index}", seed=index)
        lines.append(f"clips/c{index} {index % 2}")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    return Trainer(config_from_dict(tiny_config(tmp_path / "run", data={
        "dataset": "list", "train_list": str(tmp_path / "train.txt"), "test_list": str(tmp_path / "train.txt"),
        "class_names": ["calm", "tense"], "batch_size": 2}, optim={"epochs": 1})))


def test_video_training_loads_uint8_clips_and_augments_them_on_the_batch(tmp_path, monkeypatch):
    """``fe-adapter train`` on frame folders: the loader hands out the decoded uint8 frames, the task crops,
    flips, jitters and normalises the batch on the training device (one call per batch), and the run trains."""
    trainer = _video_trainer(tmp_path)
    assert isinstance(trainer.task.augment, BatchAugment)
    sample = trainer.train_set[0].clip
    assert sample.dtype == torch.uint8 and sample.shape == (4, 3, 32, 32)
    assert trainer.test_set[0].clip.dtype == torch.float32  # evaluation: normalised in the loader, as before
    augmented = []
    original = BatchAugment.__call__
    monkeypatch.setattr(BatchAugment, "__call__", lambda self, clips: augmented.append(clips.shape) or
                        original(self, clips))
    stats = trainer.train_epoch(0)
    assert augmented == [(2, 4, 3, 32, 32)] * 2 and math.isfinite(stats["loss"])


def test_each_rank_draws_its_own_augmentation_and_rank_0_draws_as_one_process(tmp_path):
    """The batch is augmented from torch's global generator, which every epoch reseeds: on rank 0 with the run's
    seed + epoch, as a single process does, on other ranks with a seed of their own, so that the clips at one
    batch position of two ranks do not share their crop, flip and colour factors."""
    from fe_adapter.training.distributed import Distributed

    trainer = _video_trainer(tmp_path)
    draws = []
    for rank in (0, 1, 0):
        trainer.dist = Distributed(rank=rank, world_size=2)
        trainer._seed_epoch(3)
        draws.append(trainer.task.augment.sample(2, 32, 32))
    torch.manual_seed(trainer.config.run.seed + 3)
    assert draws[0] == draws[2] == trainer.task.augment.sample(2, 32, 32)
    assert all(first != second for first, second in zip(draws[0], draws[1], strict=True))


def _seed(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _faces_of_size(size: int, count: int) -> list:
    import numpy as np
    from PIL import Image

    return [Image.fromarray(np.ascontiguousarray(data.render_clip(seed, data.SYNTHETIC_CLASSES[seed % 4],
                                                                  size=size)[0])) for seed in range(count)]


#: (image size, load_size): the crop taken from the images' own 48 px (shrunk to 32 px or enlarged), or from 32 px
#: squares (always enlarged: the whole batch in one resampling).
SIZES = [(48, 48), (32, None)]


@pytest.mark.parametrize("batched", [False, True], ids=["image by image (CPU)", "batched (GPU)"])
@pytest.mark.parametrize("image_size, load_size", SIZES)
@pytest.mark.parametrize("auto_augment", ["rand-m9-mstd0.5", None, "original"])
def test_image_training_augmentation_is_timms_split_between_loader_and_batch(auto_augment, image_size, load_size,
                                                                             batched):
    """timm's whole training transform on the PIL image, and the same split between the loader (decoding only;
    AutoAugment, with the crop and flip before it, on the PIL image) and the batch (crop and flip on the uint8
    tensor, RandAugment or colour jitter on tensors, normalisation, random erasing), draw the same from the same
    seeds and give the same image to a few grey levels (tensor and PIL resampling and rounding differ; another
    draw would differ by tens); image by image the erased box's noise is timm's too."""
    import numpy as np

    from fe_adapter.data.image_augment import image_train_transforms
    from fe_adapter.data.image_dataset import image_transform

    (image,) = _faces_of_size(image_size, 1)
    whole = image_transform(NORM, train=True, re_prob=0.5, auto_augment=auto_augment)
    if auto_augment == "original":  # cropped in the loader from the decoded image: load_size does not apply
        with pytest.raises(ValueError, match=r"load_size \(48\) squares the images .* auto_augment='original' runs "
                                             "on the PIL image"):
            image_train_transforms(NORM, auto_augment=auto_augment, load_size=48)
        load_size = None
    per_image, on_batch = image_train_transforms(NORM, re_prob=0.5, auto_augment=auto_augment, load_size=load_size)
    on_batch.batched = batched
    levels = 255 * torch.tensor(NORM.std).view(3, 1, 1)
    for seed in range(12):
        _seed(seed)
        expected = whole(image)
        _seed(seed)
        loaded = per_image(image)
        assert loaded.dtype == torch.uint8
        if auto_augment == "original":  # PIL operations: the crop and flip come before them, in the loader
            assert loaded.shape == (3, 32, 32)
        else:  # the loader only decodes
            assert torch.equal(loaded, torch.from_numpy(np.array(image)).permute(2, 0, 1))
        draw = on_batch.draw(*loaded.shape[-2:])
        difference = ((on_batch.apply(loaded[None], [draw])[0] - expected) * levels).abs()
        if batched:  # the erased box holds noise from one draw for the whole batch, not timm's: compared outside
            for top, left, height, width in draw.erased:
                difference[:, top:top + height, left:left + width] = 0
        assert difference.mean() < 2.5, (seed, difference.mean())


@pytest.mark.parametrize("batched", [False, True], ids=["image by image (CPU)", "batched (GPU)"])
@pytest.mark.parametrize("image_size, load_size", SIZES)
@pytest.mark.parametrize("auto_augment", ["rand-m9-mstd0.5", None])
def test_a_batch_is_augmented_as_timm_augments_its_images_one_after_another(auto_augment, image_size, load_size,
                                                                            batched):
    """A batch of different faces: image i comes out as timm's whole transform gives it when the images go through
    it in order from the same seed (the draws are made image by image in timm's order and each result lands in its
    image's place), to a few grey levels. Random erasing is off: on the batch it draws after every image's other
    draws, as in timm's GPU prefetcher, not between them."""
    from fe_adapter.data.image_augment import image_train_transforms
    from fe_adapter.data.image_dataset import image_transform

    images = _faces_of_size(image_size, 8)
    whole = image_transform(NORM, train=True, re_prob=0.0, auto_augment=auto_augment)
    per_image, on_batch = image_train_transforms(NORM, re_prob=0.0, auto_augment=auto_augment, load_size=load_size)
    on_batch.batched = batched
    levels = 255 * torch.tensor(NORM.std).view(1, 3, 1, 1)
    for seed in range(3):
        _seed(seed)
        expected = torch.stack([whole(image) for image in images])
        _seed(seed)
        got = on_batch(torch.stack([per_image(image) for image in images]))
        difference = ((got - expected) * levels).abs().mean(dim=(1, 2, 3))
        assert (difference < 2.5).all(), (seed, difference)


def test_the_batched_crop_is_torchvisions_resized_crop_to_a_grey_level():
    """Boxes enlarged and shrunk (antialiased), flipped or not, resized for a whole batch by two matrix products:
    what torchvision's uint8 ``resized_crop`` (bicubic, antialias) gives each image, within one grey level."""
    from torchvision.transforms.v2 import functional as TF

    from fe_adapter.data.resample import resize_boxes

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 40, 56), dtype=torch.uint8, generator=generator)
    images = TF.gaussian_blur(images, [3, 3])  # some structure, and the extremes of noise
    boxes = [(0, 0, 40, 56), (3, 5, 20, 17), (10, 30, 30, 26), (0, 1, 9, 12), (7, 2, 33, 40), (12, 12, 16, 16)]
    flips = [False, True, False, True, True, False]
    got = resize_boxes(images, torch.tensor(boxes, dtype=torch.float32), torch.tensor(flips), 24)
    for image, box, flip, out in zip(images, boxes, flips, got, strict=True):
        expected = TF.resized_crop(image, *box, [24, 24], TF.InterpolationMode.BICUBIC, antialias=True)
        expected = expected.flip(-1) if flip else expected
        assert (out.int() - expected.int()).abs().max() <= 1, box


def test_image_training_loads_every_image_as_a_square_of_the_load_size():
    """Images of any size come from the loader as ``load_size`` squares (default the input size): the shorter side
    resized and the centre crop, as evaluation takes them, so that a batch stacks; the batch step crops them to
    the input size."""
    import numpy as np
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    from fe_adapter.data.image_augment import image_train_transforms

    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((48, 64, 3), (20, 20, 3), (32, 32, 3))]
    for load_size in (None, 40):
        per_image, on_batch = image_train_transforms(NORM, load_size=load_size)
        square = load_size or NORM.size
        loaded = [per_image(Image.fromarray(photo)) for photo in photos]
        for photo, pixels in zip(photos, loaded, strict=True):
            tensor = torch.from_numpy(photo).permute(2, 0, 1)
            expected = TF.center_crop(TF.resize(tensor, square, antialias=True), [square, square])
            assert pixels.dtype == torch.uint8 and torch.equal(pixels, expected)
        assert on_batch(torch.stack(loaded)).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="load_size must be a positive number of pixels, got 0"):
        image_train_transforms(NORM, load_size=0)


@pytest.mark.parametrize("batched", [False, True], ids=["image by image (CPU)", "batched (GPU)"])
def test_random_erasing_on_the_batch_fills_each_drawn_box_with_normal_noise(batched):
    """timm's erasing draws a box for a quarter of the images (one of their own), and exactly that box changes,
    to random normal pixels (on a GPU one noise tensor for the batch, kept inside the boxes)."""
    import random

    from fe_adapter.data.image_augment import ImageBatchAugment

    images = torch.full((400, 3, 32, 32), 128, dtype=torch.uint8)
    random.seed(0)
    torch.manual_seed(0)
    augment = ImageBatchAugment(NORM, re_prob=0.25, batched=batched)
    draws = [augment.draw(32, 32) for _ in images]
    out = augment.apply(images, draws)
    plain = (128 / 255 - torch.tensor(NORM.mean)) / torch.tensor(NORM.std)
    changed = ~torch.isclose(out, plain.view(1, 3, 1, 1), atol=1e-5)
    erased = [index for index, draw in enumerate(draws) if draw.erased]
    assert abs(len(erased) / 400 - 0.25) < 4 * (0.25 * 0.75 / 400) ** 0.5
    assert len({draws[index].erased for index in erased}) > 0.8 * len(erased)  # a box of its own per image
    noise = []
    for draw, image_changed, image in zip(draws, changed, out, strict=True):
        box = torch.zeros(32, 32, dtype=torch.bool)
        for top, left, height, width in draw.erased:
            box[top:top + height, left:left + width] = True
        assert torch.equal(image_changed.all(dim=0), box) and torch.equal(image_changed.any(dim=0), box)
        noise.append(image[:, box].flatten())
    noise = torch.cat(noise)
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1) < 0.05, len(noise)
    with pytest.raises(ValueError, match=r"uint8 \(B, 3, H, W\) images, got torch.float32 \(2, 3, 8, 8\)"):
        ImageBatchAugment(NORM)(torch.zeros(2, 3, 8, 8))


def test_image_training_draws_in_the_loader_and_applies_the_draws_on_the_device(tmp_path):
    """Each training image comes from the loader with its augmentation's draws (the loader processes do the
    drawing; the dataset, draws included, can be sent to them); the batch carries them and the training device
    applies exactly those: the same batch augmented twice is the same (random erasing off). Evaluation images
    carry none."""
    import pickle

    from fe_adapter.data.image_augment import ImageDraw
    from fe_adapter.training import ImageTask, Trainer, image_config_from_dict
    from tests.test_pretrain_image import tiny_image_config

    config = tiny_image_config(tmp_path / "run", data={"re_prob": 0.0, "val_fraction": 0.25})
    trainer = Trainer(image_config_from_dict(config), None, ImageTask())
    assert isinstance(trainer.train_set[0].draw, ImageDraw)
    assert trainer.val_set[0].draw is None and trainer.test_set[0].draw is None
    sent = pickle.loads(pickle.dumps(trainer.train_set))  # as to a spawned loader process
    assert isinstance(sent[1].draw, ImageDraw) and torch.equal(sent[1].clip, trainer.train_set[1].clip)
    batch = next(iter(trainer.train_loader))
    assert len(batch.draws) == len(batch) and all(isinstance(draw, ImageDraw) for draw in batch.draws)
    first = trainer.task.inputs(batch, torch.device("cpu"))
    assert torch.equal(first, trainer.task.inputs(batch, torch.device("cpu")))
    assert not torch.equal(first, trainer.task.augment(batch.clips))  # drawn again: another augmentation


def test_image_training_loads_uint8_images_and_finishes_them_on_the_batch(tmp_path):
    from fe_adapter.data.image_augment import ImageBatchAugment
    from fe_adapter.training import ImageTask, Trainer, image_config_from_dict
    from fe_adapter.training.config import ConfigError
    from tests.test_pretrain_image import tiny_image_config

    trainer = Trainer(image_config_from_dict(tiny_image_config(tmp_path / "run", optim={"epochs": 1})), None,
                      ImageTask())
    assert isinstance(trainer.task.augment, ImageBatchAugment) and trainer.task.augment.re_prob == 0.25
    sample = trainer.train_set[0].clip
    assert sample.dtype == torch.uint8 and sample.shape == (3, 32, 32)
    assert trainer.test_set[0].clip.dtype == torch.float32
    batch = next(iter(trainer.train_loader))
    inputs = trainer.task.inputs(batch, torch.device("cpu"))
    assert inputs.dtype == torch.float32 and inputs.shape == (8, 3, 32, 32)
    trainer = Trainer(image_config_from_dict(tiny_image_config(tmp_path / "run40", data={"load_size": 40})), None,
                      ImageTask())
    assert trainer.train_set[0].clip.shape == (3, 40, 40) and trainer.test_set[0].clip.shape == (3, 32, 32)
    batch = next(iter(trainer.train_loader))
    assert trainer.task.inputs(batch, torch.device("cpu")).shape == (8, 3, 32, 32)
    with pytest.raises(ConfigError, match=r"data.load_size must be a positive number of pixels \(or null: the input "
                                          r"size\), got -1"):
        image_config_from_dict(tiny_image_config(tmp_path / "run", data={"load_size": -1}))


def test_randaugment_on_the_batch_draws_per_image():
    import random

    import numpy as np

    from fe_adapter.data.image_augment import image_train_transforms

    _, on_batch = image_train_transforms(NORM, re_prob=0.0)
    face = torch.from_numpy(np.ascontiguousarray(data.render_clip(2, "happy", size=32)[0])).permute(2, 0, 1)
    random.seed(0)
    np.random.seed(0)
    out = on_batch(face.expand(16, 3, 32, 32).contiguous())
    distinct = {out[index].numpy().tobytes() for index in range(16)}
    assert len(distinct) >= 12  # two operations of 15 at p 0.5 each: a few images may be left alike


def test_training_datasets_can_be_sent_to_loader_processes_that_are_spawned(tmp_path):
    """Loader processes started by spawn (macOS, Windows) or forkserver (Linux from Python 3.14) receive the
    dataset pickled: the video training set (uint8 frames for BatchAugment), its evaluation split with three spatial
    crops, and the image training set with its draws all survive the trip and load the same."""
    import pickle

    from fe_adapter.training import ImageTask, Trainer, config_from_dict, image_config_from_dict
    from tests.test_pretrain_image import tiny_image_config
    from tests.training_cases import dfew_tree, tiny_config, with_backbone_file

    dfew_tree(tmp_path / "DFEW")
    config = with_backbone_file(tiny_config(tmp_path / "video", data={"dataset": "dfew", "root": str(tmp_path / "DFEW"),
                                                                     "spatial_crops": 3}), tmp_path)
    video = Trainer(config_from_dict(config))
    images = Trainer(image_config_from_dict(tiny_image_config(tmp_path / "image")), None, ImageTask())
    for dataset in (video.train_set, video.test_set, images.train_set, images.test_set):
        sent = pickle.loads(pickle.dumps(dataset))
        _seed(0)
        expected = dataset[0]
        _seed(0)
        got = sent[0]
        assert torch.equal(got.clip, expected.clip) and got.draw == expected.draw
    assert images.train_set[0].draw is not None


def test_cached_images_come_with_draws_and_a_batch_has_draws_for_all_or_none(tmp_path):
    """An image taken from the cache gets its draws as a freshly loaded one does; a batch where only some samples
    carry draws is an error naming them, not a crash in the augmentation."""
    from fe_adapter.data.image_augment import ImageDraw, image_train_transforms
    from fe_adapter.data.image_dataset import ImageDataset

    folder = tmp_path / "faces" / "train" / "happy"
    folder.mkdir(parents=True)
    for number, image in enumerate(_faces_of_size(32, 3)):
        image.save(folder / f"{number}.png")
    transform, augment = image_train_transforms(NORM)
    dataset = ImageDataset(data.image_folder(tmp_path / "faces", "train"), transform, train=True, cache=True,
                           draw=augment.draw)
    first, again = dataset[0], dataset[0]
    assert isinstance(first.draw, ImageDraw) and isinstance(again.draw, ImageDraw)
    assert torch.equal(first.clip, again.clip)
    batch = data.collate_clips([dataset[0], dataset[1]])
    assert augment.apply(batch.clips, batch.draws).shape == (2, 3, 32, 32)
    undrawn = data.ClipSample(dataset[2].clip, 0, "faces/train/happy/2.png", 2)
    with pytest.raises(ValueError, match="some samples of the batch carry augmentation draws and some do not: "
                                         "faces/train/happy/2.png"):
        data.collate_clips([dataset[0], undrawn])


def test_recipes_the_device_cannot_draw_stay_in_the_loader_or_are_refused():
    """A colour jitter of the hue runs in the loader on the PIL image (torchvision's, with the crop and flip before
    it); a RandAugment policy that draws its interpolation at random is refused, naming the operation."""
    from timm.data.auto_augment import rand_augment_transform
    from torchvision import transforms

    from fe_adapter.data.image_augment import image_train_transforms
    from fe_adapter.data.rand_augment import drawing_policy

    per_image, on_batch = image_train_transforms(NORM, auto_augment=None, color_jitter=(0.4, 0.4, 0.4, 0.1))
    assert any(isinstance(step, transforms.ColorJitter) for step in per_image.transforms)
    assert on_batch.crop is None and on_batch.colours == []
    (image,) = _faces_of_size(48, 1)
    assert per_image(image).shape == (3, 32, 32) and on_batch(per_image(image)[None]).shape == (1, 3, 32, 32)
    policy = rand_augment_transform("rand-m9-mstd0.5", {"interpolation": ("bilinear", "bicubic")})
    with pytest.raises(ValueError, match="RandAugment operation .* draws its interpolation at random"):
        drawing_policy(policy)

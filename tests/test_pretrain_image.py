"""``fe-adapter pretrain-image``: the image classifier trained by the Trainer of video training, its file, and the
pipeline images -> pretrain-image -> train -> predict of the README."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from fe_adapter import cli, data
from fe_adapter.image_model import IMAGE_FORMAT, load_image_model
from fe_adapter.predict.examples import face_video
from fe_adapter.training import ImageTask, Trainer, image_config_from_dict
from tests.training_cases import (
    REPOSITORY,
    TINY_BACKBONE,
    as_overrides,
    assert_runs_end_alike,
    assert_two_ranks_train_as_one_process,
    kill_hook,
    run_module,
)


def tiny_image_config(out_dir: Path, **sections) -> dict:
    """A 2-block ViT at 32 px on 48 synthetic faces (6 steps of 8 an epoch) with the whole recipe switched on:
    RandAugment, random erasing, mixup/cutmix, layer decay, EMA, class weights."""
    config = {
        "data": {"dataset": "synthetic_faces", "options": {"count": 48, "size": 32, "seed": 1}, "batch_size": 8,
                 "num_workers": 0},
        "model": {"backbone": "vit_tiny_patch16_224", "backbone_kwargs": TINY_BACKBONE},
        "optim": {"epochs": 3, "lr": 1e-3, "warmup_epochs": 0.5, "ema": True, "ema_decay": 0.9,
                  "class_weighted": True},
        "run": {"out_dir": str(out_dir), "progress": False, "tensorboard": False, "deterministic": True},
    }
    for section, values in sections.items():
        config[section].update(values)
    return config


def _readme_pipeline() -> list[list[str]]:
    """The command lines of the README's Pipeline section, as argv lists (without "fe-adapter")."""
    readme = (REPOSITORY / "README.md").read_text()
    section = readme.split("\n## Pipeline\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]
    assert all(line[0] == "fe-adapter" for line in lines)
    return [line[1:] for line in lines]


def test_the_readme_pipeline_runs_as_written(tmp_path, monkeypatch, capsys):
    """images -> pretrain-image (synthetic single faces, >= 90% on held-out faces) -> predict-image -> train
    (FE-Adapters on that image model, loaded strictly, its head dropped, its mean/std taken) -> predict."""
    commands = _readme_pipeline()
    assert [argv[0] for argv in commands] == ["pretrain-image", "predict-image", "train", "predict"]
    monkeypatch.chdir(tmp_path)
    for name in ("configs", "docs"):
        (tmp_path / name).symlink_to(REPOSITORY / name)
    face_video(tmp_path / "clip.mp4", frames=20)
    for argv in commands:
        assert cli.main(argv) == 0, (argv, capsys.readouterr().err[-2000:])
    printed = capsys.readouterr().out

    metrics = json.loads((tmp_path / "runs/faces/report/metrics.json").read_text())
    assert metrics["last"]["metrics"]["war"] >= 0.9, metrics["last"]
    assert metrics["last"]["metrics"]["class_names"] == list(data.FRAME_CLASSES)
    with safe_open(str(tmp_path / "runs/faces/last.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
    recorded = json.loads(metadata["fe_adapter_image"])
    assert metadata["format"] == IMAGE_FORMAT and recorded["class_names"] == list(data.FRAME_CLASSES)
    assert recorded["input"] == {"size": 40, "mean": [0.5] * 3, "std": [0.5] * 3}

    for name in data.FRAME_CLASSES:  # predict-image names the expression of each sample face first
        assert re.search(rf"faces/{name}\.png: {name} \d", printed), printed
    video_log = (tmp_path / "runs/clips/train.log").read_text()
    assert "the image model's input statistics: mean [0.5, 0.5, 0.5]" in video_log
    assert "classification head (head.bias, head.weight) is not used" in video_log
    assert (tmp_path / "runs/predictions/clip.json").is_file()


def test_image_model_files_load_as_saved_and_refuse_plain_weights(tmp_path):
    config = image_config_from_dict(tiny_image_config(tmp_path / "run", optim={"epochs": 1, "ema": False}))
    trainer = Trainer(config, task=ImageTask())
    trainer.task.save(trainer.model, tmp_path / "image.safetensors")
    loaded = load_image_model(tmp_path / "image.safetensors")
    assert loaded.class_names == list(data.FRAME_CLASSES)
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(images), trainer.model.eval()(images), rtol=0, atol=0)

    torch.save(trainer.model.state_dict(), tmp_path / "plain.pth")
    assert cli.main(["predict-image", str(REPOSITORY / "docs/images/faces"), "--model", str(tmp_path /
                     "plain.pth")]) == 2
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="no image model written by fe-adapter pretrain-image"):
        load_image_model(tmp_path / "plain.safetensors")


def test_starting_weights_load_strictly_and_the_head_is_new(tmp_path, caplog):
    """model.checkpoint: every backbone tensor from the file, its 1000-class head dropped; a file of another
    architecture is one error line; without weights the run says it trains from scratch."""
    import timm
    from safetensors.torch import save_file

    imagenet = timm.create_model("vit_tiny_patch16_224", num_classes=1000, **TINY_BACKBONE)
    save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()}, str(tmp_path / "imagenet.safetensors"))
    values = tiny_image_config(tmp_path / "run", model={"checkpoint": str(tmp_path / "imagenet.safetensors")})
    trainer = Trainer(image_config_from_dict(values), task=ImageTask())
    state = trainer.model.state_dict()
    for name, tensor in imagenet.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(state[name], tensor), name
    assert state["head.weight"].shape == (4, 48)

    deeper = dict(TINY_BACKBONE, depth=3)
    other = timm.create_model("vit_tiny_patch16_224", **deeper)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "deeper.safetensors"))
    values["model"]["checkpoint"] = str(tmp_path / "deeper.safetensors")
    with pytest.raises(ValueError, match="deeper.safetensors.*do not fit"):
        Trainer(image_config_from_dict(values), task=ImageTask())

    values["model"]["checkpoint"] = None
    with caplog.at_level("WARNING", logger="fe_adapter.train"):
        Trainer(image_config_from_dict(values), task=ImageTask())
    assert "the image model trains from scratch" in caplog.text


def test_the_soft_target_loss_is_the_class_weighted_cross_entropy_on_one_hot_targets():
    """With mixup the class-weighted loss works on soft targets; on unmixed (one-hot) targets it must be
    PyTorch's class-weighted cross-entropy, numerator and denominator alike."""
    from fe_adapter.training.image_task import ImageTask

    task = ImageTask()
    task.class_weights = torch.tensor([0.5, 1.0, 2.0, 4.0])
    logits, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 3, 0])

    class Identity:  # mixup that mixes nothing
        def __call__(self, images, labels):
            return images, torch.nn.functional.one_hot(labels, 4).float()

    task.mixup = Identity()
    batch = data.ClipBatch(logits, labels, [str(i) for i in range(6)])
    loss, weight = task.loss(lambda x: x, batch, torch.device("cpu"), contextlib.nullcontext)
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=task.class_weights)
    torch.testing.assert_close(loss, expected)
    assert weight == pytest.approx(task.class_weights[labels].sum().item())


def test_layer_decay_scales_the_learning_rate_of_each_block(tmp_path):
    values = tiny_image_config(tmp_path / "run", optim={"layer_decay": 0.5, "lr": 1e-3})
    trainer = Trainer(image_config_from_dict(values), task=ImageTask())
    rates = {group["initial_lr"] for group in trainer.optimizer.param_groups}  # before warm-up scales them
    # 2 blocks: embeddings 0.5^3, block 0 0.5^2, block 1 0.5, head and final norm 1
    assert sorted(rates) == pytest.approx([1e-3 * 0.125, 1e-3 * 0.25, 1e-3 * 0.5, 1e-3])


KILL_AT_STEP = 8  # 6 steps an epoch: the kill comes after the 2nd step of epoch 2


def test_pretrain_image_resume_after_a_kill_mid_epoch_ends_bitwise_like_the_uninterrupted_run(tmp_path):
    """As tests/test_runs.py for video training, with the whole image recipe on (random crops, RandAugment,
    random erasing, mixup/cutmix, EMA): killed mid-epoch, resumed, the weights, the EMA, the optimizer and the
    log end bit for bit as the uninterrupted run's."""
    config = tiny_image_config(tmp_path / "uninterrupted")
    finished = run_module("fe_adapter", ["pretrain-image", *as_overrides(config)])
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "mixup 0.8 / cutmix 1 on 100% of batches" in (tmp_path / "uninterrupted" / "train.log").read_text()

    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(kill_hook(KILL_AT_STEP))
    config["run"]["out_dir"] = str(tmp_path / "resumed")
    killed = run_module("fe_adapter", ["pretrain-image", *as_overrides(config)], first_on_path=tmp_path / "hook")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = run_module("fe_adapter", ["pretrain-image", "--resume", *as_overrides(config)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected_state, got_state = assert_runs_end_alike(tmp_path / "uninterrupted", tmp_path / "resumed")
    assert got_state["step"] == 18
    assert all(torch.equal(got_state["task"]["ema"][k], v) for k, v in expected_state["task"]["ema"].items())


def test_two_ranks_end_with_the_weights_of_one_process_on_the_same_global_batch(tmp_path):
    """As tests/test_ddp.py for video training: 8 faces, class-weighted loss with label smoothing, layer decay, EMA,
    accumulation 2; one process with batches of 4 and two ranks with batches of 2 each take one step on all 8 faces
    with the same gradient (no random augmentation: every process sees the same pixels). The gradient is compared
    (AdamW's first moment after one step), not the weights as in the video test: every weight of the ViT trains,
    and AdamW's step g / (|g| + eps) turns float rounding in the few gradients of size ~eps into weight differences
    of 3e-5 at lr 1e-2 (seen on 3 of 6912 weights of a qkv projection)."""
    values = tiny_image_config(tmp_path / "run", data={"options": {"count": 8, "size": 32, "seed": 1},
                                                       "batch_size": 2, "augment": False},
                               model={"drop_path": 0.0},
                               optim={"epochs": 1, "accumulation": 2, "label_smoothing": 0.1, "lr": 1e-2,
                                      "layer_decay": 0.65})
    values["task"] = "image"
    assert_two_ranks_train_as_one_process(values, tmp_path, single_batch_size=4)


@pytest.mark.parametrize(("override", "message"), [
    ("data.dataset=dfew", "data.dataset must be one of"),
    ("data.batch_size=7", "data.batch_size must be even"),
    ("data.group_size=3", "must be a multiple of data.group_size"),
    ("data.cache=true", "data.cache keeps each image as first transformed"),
    ("optim.layer_decay=1.5", "optim.layer_decay must be in (0, 1]"),
    ("data.scale=[0.9, 0.5]", "data.scale must be [low, high]"),
    ("data.test_split=holdout", "has the splits train, val, test, not 'holdout'"),
])
def test_bad_settings_stop_with_one_line(tmp_path, capsys, override, message):
    config = tiny_image_config(tmp_path / "run")
    assert cli.main(["pretrain-image", *as_overrides(config), override]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the run's log lines, if it got that far
    assert error.startswith("fe-adapter pretrain-image: error: ") and message in error, error


def test_the_default_training_augmentation_runs_on_every_draw():
    """The default recipe's RandAugment policy, drawn many times (seeded): timm's "-inc1" variant makes posterize
    ask Pillow (13) for 0 bits about once in 200 draws, a ValueError in the middle of an epoch."""
    import random

    import numpy as np
    from PIL import Image

    from fe_adapter.data.image_augment import image_train_transforms
    from fe_adapter.data.transforms import Normalization
    from fe_adapter.training.image_config import ImageDataConfig

    settings = ImageDataConfig()
    transform, on_batch = image_train_transforms(Normalization(size=32), scale=settings.scale, hflip=settings.hflip,
                                                 color_jitter=settings.color_jitter,
                                                 auto_augment=settings.auto_augment, re_prob=settings.re_prob)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8))
    random.seed(0)
    torch.manual_seed(0)
    images = [transform(image) for _ in range(1000)]
    assert all(image.shape == (3, 32, 32) and image.dtype == torch.uint8 for image in images)
    assert on_batch(torch.stack(images)).shape == (1000, 3, 32, 32)


def test_predict_image_reads_a_large_folder_batch_by_batch(tmp_path, monkeypatch, capsys):
    """A folder of any size: images are read and classified 32 at a time (never all held at once), each printed
    in order, the CSV has a row each, and an unreadable file is one line (exit status 1)."""
    import numpy as np
    from PIL import Image

    import fe_adapter.image_model

    trainer = Trainer(image_config_from_dict(tiny_image_config(tmp_path / "run")), task=ImageTask())
    trainer.task.save(trainer.model, tmp_path / "image.safetensors")
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for number in range(70):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{number:03d}.png")
    (folder / "035b.png").write_bytes(b"not a png")
    batches = []
    classify = fe_adapter.image_model.classify_images

    def counted(model, images, **how):
        batches.append(len(images))
        return classify(model, images, **how)

    monkeypatch.setattr(fe_adapter.image_model, "classify_images", counted)
    status = cli.main(["predict-image", str(folder), "--model", str(tmp_path / "image.safetensors"), "--csv",
                       str(tmp_path / "out.csv"), "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 1 and "035b.png: cannot read the image" in captured.err
    assert max(batches) <= 32 and sum(batches) == 70
    printed = [line.split(":")[0] for line in captured.out.splitlines() if line.endswith("%")]
    assert printed == [str(folder / f"{number:03d}.png") for number in range(70)]
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 71


def test_predict_image_classifies_a_photo_the_way_up_it_is_shown(tmp_path, monkeypatch):
    """A photo whose camera stored it sideways with an EXIF orientation (6: rotate 90 degrees clockwise to show it)
    is classified upright, as viewers show it, not as its pixels lie in the file."""
    import numpy as np
    from PIL import Image

    import fe_adapter.image_model

    trainer = Trainer(image_config_from_dict(tiny_image_config(tmp_path / "run")), task=ImageTask())
    trainer.task.save(trainer.model, tmp_path / "image.safetensors")
    upright = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    stored = np.rot90(upright, k=1)  # the file's pixels: turned 90 degrees counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "photo.png", exif=exif)
    seen = []
    classify = fe_adapter.image_model.classify_images
    monkeypatch.setattr(fe_adapter.image_model, "classify_images",
                        lambda model, images, **how: seen.extend(np.asarray(i) for i in images) or classify(
                            model, images, **how))
    assert cli.main(["predict-image", str(tmp_path / "photo.png"), "--model", str(tmp_path / "image.safetensors"),
                     "--device", "cpu"]) == 0
    (picture,) = seen
    assert np.array_equal(picture, upright)


def test_predict_image_aligns_the_face_of_a_photo_with_faces_detect(tmp_path, monkeypatch, capsys):
    """--faces detect: the model sees the photo's face aligned as its true landmarks would align it (not the whole
    photo), at the model's input size; a photo without a face is one line and exit status 1."""
    import numpy as np
    from PIL import Image

    import fe_adapter.image_model
    from fe_adapter.faces import align_face
    from fe_adapter.faces.face import Face
    from tests.face_scenes import blank, place_face

    trainer = Trainer(image_config_from_dict(tiny_image_config(tmp_path / "run")), task=ImageTask())
    trainer.task.save(trainer.model, tmp_path / "image.safetensors")
    frame = blank(480, 360)
    landmarks = place_face(frame, (330.0, 150.0), scale=0.9)
    Image.fromarray(frame).save(tmp_path / "photo.png")
    Image.fromarray(blank(480, 360)).save(tmp_path / "empty.png")
    seen = []
    classify = fe_adapter.image_model.classify_images

    def watched(model, images, **how):
        seen.extend(np.asarray(image) for image in images)
        return classify(model, images, **how)

    monkeypatch.setattr(fe_adapter.image_model, "classify_images", watched)
    status = cli.main(["predict-image", str(tmp_path / "photo.png"), str(tmp_path / "empty.png"), "--model",
                       str(tmp_path / "image.safetensors"), "--faces", "detect", "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 1 and "empty.png: no face found" in captured.err and "photo.png: " in captured.out
    (picture,) = seen
    truth = align_face(frame, Face((0.0, 0.0, 1.0, 1.0), 1.0, landmarks), 32)
    whole = np.asarray(Image.fromarray(frame).resize((32, 32)))
    assert picture.shape == (32, 32, 3)
    assert np.abs(picture.astype(int) - truth).mean() < 12 < np.abs(whole.astype(int) - truth).mean()

"""Training end to end on the synthetic set: learning, atomic checkpoints, config errors, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import fe_adapter
from fe_adapter import cli, data
from fe_adapter._io import atomic_write
from fe_adapter.training import ConfigError, Trainer, config_from_dict, load_config
from tests.training_cases import TINY_BACKBONE, as_overrides, tiny_config, trainable, with_backbone_file


def test_loss_decreases_and_training_clips_are_learned(tmp_path):
    config = config_from_dict(tiny_config(tmp_path, optim={"epochs": 10, "lr": 1e-2}, model={"bottleneck": 32}))
    trainer = Trainer(config)
    summary = trainer.fit()
    losses = [record["loss"] for record in summary["history"]]
    assert losses[-1] < 0.8 * losses[0]
    train_clips = data.SyntheticClips(24, "train", 0, 32, num_frames=4, train=False)
    fitted = trainer.evaluate(data.make_loader(train_clips, 8, train=False, num_workers=0)).metrics
    assert fitted.war > 2 / 6  # twice chance, from a random backbone in a few seconds
    assert (tmp_path / "best.safetensors").is_file() and (tmp_path / "log.jsonl").is_file()
    assert summary["parameters"]["trainable"] < summary["parameters"]["total"]


def test_interrupted_checkpoint_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = atomic_write(tmp_path / "file.bin", lambda temporary: Path(temporary).write_bytes(b"good"))

    def broken(temporary: str) -> None:
        Path(temporary).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"good" and sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]

    model = fe_adapter.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=2, bottleneck=8,
                                    backbone_kwargs=TINY_BACKBONE, random_backbone=True)
    saved = fe_adapter.save_adapters(model, tmp_path / "adapters.safetensors")

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 10)
        raise KeyboardInterrupt

    monkeypatch.setattr("fe_adapter.checkpoint.save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        fe_adapter.save_adapters(model, saved)
    monkeypatch.undo()
    fe_adapter.load_adapters(model, saved)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.lrr=1"], "unknown key optim.lrr; allowed keys in optim: epochs, lr,"),
        (["model.placement=middle"], "model.placement must be one of ('attn', 'mlp', 'both', 'none'), got 'middle'"),
        (["optim.lr=fast"], "optim.lr must be float, got 'fast'"),
        (["data.batch_size=0"], "data.batch_size must be >= 1, got 0"),
        (["data.dataset=dfew"], "data.root is required for data.dataset = 'dfew'"),
        (["training.epochs=3"], "unknown section 'training'; allowed sections: data, model, optim, run"),
        (["epochs=3"], "must be section.key"),
        (["optim.lr=0"], "optim.lr must be > 0, got 0"),
        (["data.class_names=[1, 2]"], "data.class_names must be a list of strings"),
        (["optim.warmup_epochs=-1"], "optim.warmup_epochs must be >= 0, got -1.0"),
        (["optim.weight_decay=-0.1"], "optim.weight_decay must be >= 0, got -0.1"),
        (["data.min_readable=0"], "data.min_readable must be in (0, 1], got 0.0"),
        (["data.min_readable=1.5"], "data.min_readable must be in (0, 1], got 1.5"),
        (["optim.label_smoothing=2"], "optim.label_smoothing must be in [0, 1), got 2.0"),
        (["data.val_fraction=1"], "data.val_fraction must be in [0, 1), got 1.0"),
        (["optim.min_lr=0.1"], "optim.min_lr (0.1) must not exceed optim.lr (0.001)"),
        (["run.device=gpu"], "run.device must be auto, cpu, cuda, cuda:N (a GPU index) or mps, got 'gpu'"),
        (["optim.lr=[1,"], "override 'optim.lr=[1,': the value is not valid YAML"),
        (["model.backbone_kwargs={depth:2}"], "model.backbone_kwargs.depth:2 has no value (null); in YAML write "
                                              "{depth: 2} with a space after the colon"),
        (["data.frames=clip_224x224_16f"], "data.frames picks DFEW's frame folder; it has no meaning for "
                                           "data.dataset = 'synthetic'"),
        (["model.random_backbone=true", "model.pretrained=true"], "leave model.checkpoint and model.pretrained unset"),
    ],
)
def test_config_errors_name_the_key_and_the_allowed_values(overrides, message):
    with pytest.raises(ConfigError) as raised:
        load_config(None, overrides)
    assert message in str(raised.value)


def test_eval_without_backbone_weights_is_refused(tmp_path, capsys):
    model = fe_adapter.create_model("vit_tiny_patch16_224", num_classes=6, num_frames=4, bottleneck=8,
                                    backbone_kwargs=TINY_BACKBONE, random_backbone=True)
    checkpoint = fe_adapter.save_adapters(model, tmp_path / "adapters.safetensors")
    assert cli.main(["eval", "--checkpoint", str(checkpoint)]) == 2
    assert "holds adapters and head only: set model.checkpoint" in capsys.readouterr().err


def test_accumulation_steps_on_a_short_last_group(tmp_path):
    """3 batches with accumulation 2: two optimizer steps per epoch, the last over one batch."""
    config = config_from_dict(tiny_config(tmp_path, data={"synthetic_train_clips": 12},
                                          optim={"epochs": 1, "accumulation": 2}))
    trainer = Trainer(config)
    before = trainable(trainer.model)
    trainer.fit()
    assert trainer.step == 2 == trainer.total_steps
    assert any(not torch.equal(before[n], p) for n, p in trainable(trainer.model).items())


def test_cli_reports_config_errors(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("optim:\n  amp: fp8\n")
    assert cli.main(["train", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "optim.amp must be one of ('auto', 'none', 'bf16', 'fp16'), got 'fp8'" in capsys.readouterr().err
    assert cli.main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    (tmp_path / "broken.yaml").write_text("optim:\n  lr: [1,\n")
    assert cli.main(["train", "--config", str(tmp_path / "broken.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'broken.yaml'}: not valid YAML at line 3, column 1" in err and len(err.splitlines()) == 2


def test_cli_train_writes_a_report_and_eval_reproduces_it(tmp_path):
    config = with_backbone_file(tiny_config(tmp_path / "run"), tmp_path)
    assert cli.main(["train", *as_overrides(config)]) == 0
    report = tmp_path / "run" / "report"
    assert {"metrics.json", "config.yaml", "confusion.png", "curves.png"} <= {p.name for p in report.iterdir()}
    best = json.loads((report / "metrics.json").read_text())["best"]["metrics"]

    assert cli.main(["eval", "--config", str(report / "config.yaml"), "--checkpoint",
                     str(tmp_path / "run" / "best.safetensors"), "--out", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert evaluated["confusion"] == best["confusion"]

    assert cli.main(["eval", "--config", str(report / "config.yaml"), "--checkpoint",
                     str(tmp_path / "run" / "best.safetensors"), "--split", "train",
                     "--out", str(tmp_path / "eval_train")]) == 0
    on_train = json.loads((tmp_path / "eval_train" / "metrics.json").read_text())
    assert on_train["split"] == "train" and sum(map(sum, on_train["metrics"]["confusion"])) == 24


def test_bf16_backbone_with_autocast_trains_fp32_adapters(tmp_path):
    config = config_from_dict(tiny_config(tmp_path, optim={"epochs": 1, "amp": "bf16"},
                                          model={"backbone_dtype": "bf16"}))
    trainer = Trainer(config)
    frozen = {p.dtype for p in trainer.model.parameters() if not p.requires_grad}
    trained = {p.dtype for p in trainer.model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trained == {torch.float32}
    before = trainable(trainer.model)
    summary = trainer.fit()
    assert all(not torch.equal(before[n], p) for n, p in trainable(trainer.model).items() if "conv_weight" in n)
    assert math.isfinite(summary["history"][0]["loss"])


def test_evaluation_counts_a_clip_listed_twice_twice(tmp_path):
    from tests.media import numbered_frames, write_frame_folder

    for name in ("a", "b", "d", "e"):
        write_frame_folder(tmp_path / "clips" / name, numbered_frames(4, size=32))
    (tmp_path / "train.txt").write_text("clips/a 0\nclips/b 1\n")
    (tmp_path / "test.txt").write_text("clips/d 0\nclips/d 0\nclips/e 1\n")
    config = config_from_dict(tiny_config(tmp_path / "run", data={
        "dataset": "list", "train_list": str(tmp_path / "train.txt"), "test_list": str(tmp_path / "test.txt"),
        "class_names": ["calm", "tense"], "batch_size": 2}))
    evaluation = Trainer(config).evaluate()
    assert sum(map(sum, evaluation.metrics.confusion)) == 3
    assert evaluation.ids.count(str(tmp_path / "clips" / "d")) == 2


def test_folder_test_split_uses_the_training_classes(tmp_path):
    """A test split missing a class keeps the training split's label numbers."""
    from tests.media import numbered_frames, write_frame_folder

    for split, classes in (("train", ("angry", "happy", "sad")), ("test", ("angry", "sad"))):
        for name in classes:
            write_frame_folder(tmp_path / "data" / split / name / "clip", numbered_frames(4, size=32))
    trainer = Trainer(config_from_dict(tiny_config(tmp_path / "run", data={
        "dataset": "folder", "root": str(tmp_path / "data"), "batch_size": 2})))
    assert trainer.test_set.class_names == ("angry", "happy", "sad")
    assert trainer.test_set.labels == [0, 2]

"""What one training step does: accumulation around skipped batches, class weights, the learning-rate schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fe_adapter import data
from fe_adapter.training import Trainer, config_from_dict
from fe_adapter.training.builders import build_dataset
from fe_adapter.training.recipe import class_weights, cosine_with_warmup
from tests.training_cases import noise_clip, tiny_config, trainable

# 8 batches of 2 clips, accumulation 3: groups {0, 1, 2}, {3, 4, 5}, {6, 7}. Batch 2 (the first group's
# last) and batch 7 (the epoch's last) are wholly unreadable, batch 4 half.
UNREADABLE = {4, 5, 9, 14, 15}
GROUPS = [[0, 1], [3, 4, 5], [6]]


def _list_dataset(tmp_path: Path, count: int = 16, unreadable: set[int] = frozenset()) -> dict:
    lines = []
    for index in range(count):
        folder = tmp_path / "clips" / f"c{index:02d}"
        if index in unreadable:
            folder.mkdir(parents=True)  # listed and present, but holds no frames
        else:
            noise_clip(folder, seed=index)
        lines.append(f"clips/c{index:02d} {index % 3}")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "test.txt").write_text("clips/c00 0\nclips/c01 1\n")
    return {"dataset": "list", "train_list": str(tmp_path / "train.txt"), "test_list": str(tmp_path / "test.txt"),
            "class_names": ["calm", "tense", "glad"]}


def test_accumulated_steps_equal_steps_on_the_concatenated_batches_around_skipped_batches(tmp_path):
    """Each group's step equals one step on the clips it really held in one batch: a wholly unreadable batch at
    a group's end does not merge two groups, one at the epoch's end leaves no gradient behind, a half-read
    batch counts its clips (not half a batch), class weights weigh the whole group, and the schedule takes
    exactly total_steps steps."""
    values = tiny_config(tmp_path / "run", optim={"epochs": 1, "accumulation": 3, "class_weighted": True,
                                                  "label_smoothing": 0.1, "clip_grad": None, "warmup_epochs": 0},
                         data={**_list_dataset(tmp_path, unreadable=UNREADABLE), "batch_size": 2,
                               "min_readable": 0.5})
    trainer, reference = Trainer(config_from_dict(values)), Trainer(config_from_dict(values))
    # the same clips in listed order with evaluation-time (deterministic) sampling and crops, for both
    clips = build_dataset(trainer.config.data, data.normalization_for(trainer.model), "train", train=False)
    trainer.train_loader = data.make_loader(clips, 2, train=False, num_workers=0)
    trainer.task.augment = None  # and no augmentation of the batches on the device
    assert len(trainer.train_loader) == 8 and trainer.total_steps == 3

    gradients = []
    trainer.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: gradients.append(
        {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad}))
    with pytest.warns(UserWarning, match="skipping unreadable clip"):
        trainer.train_epoch(0)

    assert trainer.step == trainer.total_steps == 3
    assert all(p.grad is None for p in trainer.model.parameters())  # nothing carried into the next epoch
    expected_gradients = []
    for batches in GROUPS:
        readable = [index for b in batches for index in (2 * b, 2 * b + 1) if index not in UNREADABLE]
        batch = data.collate_clips([clips[index] for index in readable])
        reference.optimizer.zero_grad(set_to_none=True)
        reference.criterion(reference.model(batch.clips), batch.labels).backward()
        expected_gradients.append({n: p.grad.clone() for n, p in reference.model.named_parameters()
                                   if p.requires_grad})
        reference.optimizer.step()
        reference.scheduler.step()
    assert len(gradients) == len(expected_gradients)
    for got, expected in zip(gradients, expected_gradients, strict=True):
        for name, value in expected.items():
            torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6,
                                       msg=lambda message, name=name: f"{name}: {message}")
    for name, value in trainable(reference.model).items():
        torch.testing.assert_close(trainable(trainer.model)[name], value, rtol=1e-5, atol=5e-6,
                                   msg=lambda message, name=name: f"{name}: {message}")


def test_a_group_without_clips_moves_nothing_but_the_schedule(tmp_path):
    values = tiny_config(tmp_path / "run", optim={"epochs": 1, "accumulation": 2},
                         data={**_list_dataset(tmp_path, count=4, unreadable={2, 3}), "batch_size": 2,
                               "min_readable": 0.5})
    trainer = Trainer(config_from_dict(values))
    trainer.train_loader = data.make_loader(trainer.train_set, 1, train=False, num_workers=0)
    before = trainable(trainer.model)
    with pytest.warns(UserWarning, match="skipping unreadable clip"):
        trainer.train_epoch(0)
    assert trainer.step == 2 and trainer.scheduler.last_epoch == 2
    moved = {n for n, p in trainable(trainer.model).items() if not torch.equal(p, before[n])}
    assert moved  # the first group's step
    state = trainer.optimizer.state_dict()["state"]
    assert {int(s["step"]) for s in state.values()} == {1}  # the empty group took no optimizer step


def test_class_weights_from_counts():
    """N / (C * n_c): 12 clips in 3 classes of 6, 4 and 2 clips; an empty class counts as one clip."""
    torch.testing.assert_close(class_weights([6, 4, 2]), torch.tensor([12 / 18, 12 / 12, 12 / 6]))
    torch.testing.assert_close(class_weights([3, 0, 1]), torch.tensor([5 / 9, 5 / 3, 5 / 3]))
    with pytest.raises(ValueError, match="at least one class"):
        class_weights([])


def test_trainer_weighs_the_loss_by_its_training_split(tmp_path):
    values = tiny_config(tmp_path / "run", optim={"class_weighted": True},
                         data={**_list_dataset(tmp_path, count=7), "batch_size": 2})
    trainer = Trainer(config_from_dict(values))
    assert trainer.train_set.class_counts() == [3, 2, 2]  # labels index % 3 for 7 clips
    torch.testing.assert_close(trainer.criterion.weight, torch.tensor([7 / 9, 7 / 6, 7 / 6]))
    unweighted = Trainer(config_from_dict(tiny_config(tmp_path / "plain")))
    assert unweighted.criterion.weight is None


def test_warmup_and_cosine_schedule_against_hand_computed_values():
    assert cosine_with_warmup(0, 4, 20, 0.01) == 1 / 4
    assert cosine_with_warmup(3, 4, 20, 0.01) == 1.0  # the end of warm-up: the peak
    assert cosine_with_warmup(4, 4, 20, 0.01) == 1.0  # the cosine starts at the peak
    assert cosine_with_warmup(12, 4, 20, 0.01) == pytest.approx(0.01 + 0.99 * 0.5)  # half-way down
    assert cosine_with_warmup(20, 4, 20, 0.01) == pytest.approx(0.01)  # after the last step: the floor
    assert cosine_with_warmup(0, 0, 10, 0.0) == 1.0


def test_a_warmup_as_long_as_the_run_is_announced(tmp_path, caplog):
    """2 warm-up epochs in a 2-epoch run (the default warm-up with epochs=2): the learning rate would only rise, so
    the run says so, naming the setting; a shorter warm-up says nothing."""
    values = tiny_config(tmp_path / "run", optim={"epochs": 2, "warmup_epochs": 2})
    with caplog.at_level("WARNING", logger="fe_adapter.train"):
        Trainer(config_from_dict(values))
    assert "optim.warmup_epochs = 2 spans the whole run (2 epoch(s), 12 steps)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="fe_adapter.train"):
        Trainer(config_from_dict(tiny_config(tmp_path / "short", optim={"epochs": 2, "warmup_epochs": 1.5})))
    assert "warmup_epochs" not in caplog.text


def test_trainer_schedule_runs_warmup_peak_and_floor_over_its_steps(tmp_path):
    """24 clips in batches of 4: 6 steps per epoch, 3 epochs, 1 warm-up epoch; lr 1e-2 down to 1e-4."""
    values = tiny_config(tmp_path / "run", optim={"epochs": 3, "warmup_epochs": 1, "lr": 1e-2, "min_lr": 1e-4})
    trainer = Trainer(config_from_dict(values))
    assert trainer.total_steps == 18
    used = []
    trainer.optimizer.register_step_pre_hook(
        lambda optimizer, args, kwargs: used.append(optimizer.param_groups[0]["lr"]))
    for epoch in range(3):
        trainer.train_epoch(epoch)
    assert len(used) == 18
    assert used[0] == pytest.approx(1e-2 / 6)
    assert used[5] == used[6] == pytest.approx(1e-2)  # the last warm-up step and the first cosine step
    half = 1e-4 + (1e-2 - 1e-4) * 0.5 * (1 + math.cos(math.pi * 6 / 12))
    assert used[12] == pytest.approx(half)
    assert used[-1] == pytest.approx(1e-4 + (1e-2 - 1e-4) * 0.5 * (1 + math.cos(math.pi * 11 / 12)))
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(1e-4)

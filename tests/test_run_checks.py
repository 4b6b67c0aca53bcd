"""A wrong setting, file or folder stops `fe-adapter train/cv/eval` with one line and exit status 2 before
anything is trained or overwritten; --resume refuses a changed config and logs what it allows; Ctrl-C ends with
the command that continues."""

from __future__ import annotations

import json
import shlex
import signal
from pathlib import Path

import pytest
import torch

from fe_adapter import cli
from fe_adapter.training import load_config
from fe_adapter.training import run as runs
from fe_adapter.training.builders import clip_list
from tests.training_cases import TINY_BACKBONE, as_overrides, dfew_tree, run_module, tiny_config


def _error_line(err: str) -> str:
    """The last line on stderr, which must be the one error line."""
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _epochs(out_dir: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (out_dir / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "sections, message",
    [
        ({"model": {"backbone": "vit_tiny_patch16_22"}},
         "model.backbone: timm has no model 'vit_tiny_patch16_22'; did you mean vit_tiny_patch16_224"),
        ({"model": {"backbone": "resnet18", "backbone_kwargs": {}}},
         "model.backbone = 'resnet18': adapt() supports timm VisionTransformer models"),
        ({"model": {"backbone_kwargs": {**TINY_BACKBONE, "depthh": 1}}},
         "model.backbone_kwargs: VisionTransformer (vit_tiny_patch16_224) takes no argument 'depthh'; did you mean "
         "'depth'?"),
        ({"model": {"random_backbone": False}},
         "no backbone weights: set model.checkpoint (your image model's weights, .safetensors or .pth) or "
         "model.pretrained=true"),
        ({"data": {"batch_size": 25}},
         "data.batch_size = 25 is more than the 24 training clips: an epoch drops its last incomplete batch, so it "
         "would take no optimizer step; set data.batch_size to at most 24"),
        ({"data": {"batch_size": 19, "val_fraction": 0.25}},
         "data.batch_size = 19 is more than the 18 training clips (data.val_fraction held out 6)"),
    ],
)
def test_a_setting_that_cannot_train_is_one_line_and_exit_status_2(tmp_path, capsys, sections, message):
    config = tiny_config(tmp_path / "run", **sections)
    assert cli.main(["train", *as_overrides(config)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith("fe-adapter train: error: ") and message in line
    assert not (tmp_path / "run" / "last.pt").exists() and not (tmp_path / "run" / "log.jsonl").exists()


def test_the_corrected_command_runs_in_the_folder_a_refused_one_left(tmp_path, capsys):
    """A start that stopped on a setting leaves only its train.log: the corrected run needs no --overwrite, and
    its train.log starts afresh."""
    out = tmp_path / "run"
    assert cli.main(["train", *as_overrides(tiny_config(out, data={"batch_size": 25}))]) == 2
    assert [path.name for path in out.iterdir()] == ["train.log"]
    assert cli.main(["train", *as_overrides(tiny_config(out, optim={"epochs": 1}))]) == 0
    assert (out / "train.log").read_text().count("the frozen backbone is randomly initialised") == 1


def test_cuda_on_a_machine_without_it_is_a_config_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = tiny_config(tmp_path / "run", run={"device": "cuda"})
    assert cli.main(["train", *as_overrides(config)]) == 2
    assert "run.device = 'cuda', but CUDA is not available on this machine" in _error_line(capsys.readouterr().err)


def test_a_run_folder_that_holds_a_run_is_refused_unless_overwrite(tmp_path, capsys):
    """A second run into the same folder neither appends to log.jsonl nor replaces checkpoints, unless asked."""
    out = tmp_path / "run"
    overrides = as_overrides(tiny_config(out, optim={"epochs": 1}))
    assert cli.main(["train", *overrides]) == 0
    log_before = (out / "log.jsonl").read_text()
    capsys.readouterr()

    assert cli.main(["train", *overrides]) == 2
    line = _error_line(capsys.readouterr().err)
    assert f"run.out_dir {out} already holds files (best.safetensors, last.pt, last.safetensors, log.jsonl and " \
           "2 more): pass --resume to continue the run in it, --overwrite to replace it" in line
    assert (out / "log.jsonl").read_text() == log_before

    assert cli.main(["train", "--resume", "--overwrite", *overrides]) == 2
    assert "pass one of them" in _error_line(capsys.readouterr().err)

    (out / "notes.txt").write_text("mine")
    assert cli.main(["train", "--overwrite", *as_overrides(tiny_config(out, optim={"epochs": 2}))]) == 0
    assert _epochs(out) == [1, 2]
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are replaced
    assert "--overwrite: removed the previous run's" in (out / "train.log").read_text()


def test_resume_refuses_a_changed_config_allows_more_epochs_and_names_a_damaged_state(tmp_path, capsys):
    out = tmp_path / "run"
    config = tiny_config(out, optim={"epochs": 1})
    assert cli.main(["train", "--resume", *as_overrides(config)]) == 2
    assert f"--resume: nothing to resume in run.out_dir {out}: last.pt (written after each completed epoch) is " \
           "missing, the folder does not exist" in _error_line(capsys.readouterr().err)

    assert cli.main(["train", *as_overrides(config)]) == 0
    changed = tiny_config(out, optim={"epochs": 1, "lr": 0.01}, model={"bottleneck": 8})
    capsys.readouterr()
    assert cli.main(["train", "--resume", *as_overrides(changed)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert f"--resume: {out / 'last.pt'} was trained with another config (model.bottleneck: stored 16, given 8; " \
           "optim.lr: stored 0.003, given 0.01); only run.progress" in line
    assert _epochs(out) == [1]

    more = tiny_config(out, optim={"epochs": 2}, data={"eval_batch_size": 3})  # eval batch size may change
    assert cli.main(["train", "--resume", *as_overrides(more)]) == 0
    log = (out / "train.log").read_text()
    assert f"resumed from epoch 1 (step 6) of {out / 'last.pt'}" in log
    assert "optim.epochs raised from 1 to 2: the schedule is now the one of a 2-epoch run" in log
    assert _epochs(out) == [1, 2]

    assert cli.main(["train", "--resume", *as_overrides(tiny_config(out, optim={"epochs": 1}))]) == 2
    assert "optim.epochs: 1 is fewer than the 2 epochs already trained" in _error_line(capsys.readouterr().err)

    (out / "last.pt").write_bytes(b"PK\x03\x04 not a whole archive")
    assert cli.main(["train", "--resume", *as_overrides(more)]) == 2
    assert f"{out / 'last.pt'} cannot be read as an fe-adapter training state" in \
        _error_line(capsys.readouterr().err)


INTERRUPT_HOOK = '''
"""Loaded at start-up (sitecustomize): Ctrl-C after the 2nd optimizer step of epoch 2."""
import os
import signal

# A shell without job control starts background jobs (`make test &`) with SIGINT ignored, which Python keeps.
signal.signal(signal.SIGINT, signal.default_int_handler)

from fe_adapter.training.trainer import Trainer

_step = Trainer._optimizer_step


def _step_then_interrupt(self, *args, **kwargs):
    _step(self, *args, **kwargs)
    if self.step == 8:
        os.kill(os.getpid(), signal.SIGINT)


Trainer._optimizer_step = _step_then_interrupt
'''


def test_ctrl_c_ends_with_one_line_that_continues_the_run(tmp_path):
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(INTERRUPT_HOOK)
    out = tmp_path / "run"
    interrupted = run_module("fe_adapter", ["train", *as_overrides(tiny_config(out, optim={"epochs": 3}))],
                             first_on_path=tmp_path / "hook")
    assert interrupted.returncode == 128 + signal.SIGINT, interrupted.stderr[-3000:]
    line = _error_line(interrupted.stderr)
    assert line.startswith(f"fe-adapter train: interrupted; the completed epochs are saved in {out}: continue with "
                           "fe-adapter train --resume ")
    assert _epochs(out) == [1]

    command = shlex.split(line.split("continue with fe-adapter ", 1)[1])
    resumed = run_module("fe_adapter", command)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _epochs(out) == [1, 2, 3]


def test_ctrl_c_says_whether_there_is_something_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "run_training", interrupted)
    assert cli.main(["train", *as_overrides(tiny_config(tmp_path / "run"))]) == 130
    assert capsys.readouterr().err.strip() == (f"fe-adapter train: interrupted before an epoch was completed in "
                                               f"{tmp_path / 'run'}: nothing to resume; start again with --overwrite")

    monkeypatch.setattr(runs, "run_cross_validation", interrupted)  # cv: a fold had completed an epoch
    (tmp_path / "cv" / "fold_1").mkdir(parents=True)
    (tmp_path / "cv" / "fold_1" / "last.pt").write_bytes(b"")
    arguments = ["--folds", "1,2", "--overwrite", "run.out_dir=" + str(tmp_path / "cv"), "data.dataset=dfew",
                 "data.root=/data/DFEW"]
    assert cli.main(["cv", *arguments]) == 130
    assert capsys.readouterr().err.strip() == (f"fe-adapter cv: interrupted; the completed epochs are saved in "
                                               f"{tmp_path / 'cv'}: continue with fe-adapter cv --resume --folds 1,2 "
                                               f"run.out_dir={tmp_path / 'cv'} data.dataset=dfew data.root=/data/DFEW")


@pytest.mark.parametrize(
    "folds, message",
    [
        (["1", "6"], "--folds: fold 6 does not exist; folds are 1, 2, 3, 4, 5"),
        (["1,1"], "--folds: fold 1 is given twice"),
        (["one"], "--folds takes fold numbers 1..5, e.g. --folds 1 2 or --folds 1,2; got 'one'"),
        (["1", "2", "3"], "DFEW split file not found"),  # fold 3 has no split files: found before fold 1 trains
    ],
)
def test_cv_checks_every_fold_before_the_first_trains(tmp_path, capsys, folds, message):
    dfew_tree(tmp_path / "DFEW")
    config = tiny_config(tmp_path / "cv", data={"dataset": "dfew", "root": str(tmp_path / "DFEW")})
    assert cli.main(["cv", "--folds", *folds, *as_overrides(config)]) == 2
    assert message in _error_line(capsys.readouterr().err)
    assert not (tmp_path / "cv").exists()


def test_cv_refuses_a_fold_without_training_clips_of_a_class_before_the_first_trains(tmp_path, capsys):
    dfew_tree(tmp_path / "DFEW")
    split_file = tmp_path / "DFEW" / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_2.csv"
    split_file.write_text("video_name,label\n" + "".join(f"{clip},{clip % 6 + 1}\n" for clip in range(5, 12)))
    config = tiny_config(tmp_path / "cv", data={"dataset": "dfew", "root": str(tmp_path / "DFEW")})
    assert cli.main(["cv", "--folds", "1,2", *as_overrides(config)]) == 2
    error = _error_line(capsys.readouterr().err)
    assert f"DFEW split file {split_file} (train split of fold 2): the training split (7 clips) has no clips of the " \
           "class fear (of 7: happy, sad, neutral, angry, surprise, disgust, fear)" in error
    assert not (tmp_path / "cv").exists()


def test_an_empty_split_file_names_the_file_and_the_split(tmp_path, capsys):
    dfew_tree(tmp_path / "DFEW")
    split_file = tmp_path / "DFEW" / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_1.csv"
    split_file.write_text("video_name,label\n")
    config = tiny_config(tmp_path / "run", data={"dataset": "dfew", "root": str(tmp_path / "DFEW")})
    assert cli.main(["train", *as_overrides(config)]) == 2
    assert f"DFEW split file {split_file} (train split of fold 1) lists no clips" in \
        _error_line(capsys.readouterr().err)


def test_dfew_16_frame_folder_is_reachable_from_the_config(tmp_path):
    dfew_tree(tmp_path / "DFEW", frames="clip_224x224_16f")
    config = load_config(None, ["data.dataset=dfew", f"data.root={tmp_path / 'DFEW'}"])
    with pytest.raises(ValueError, match="DFEW frame folder not found: .*clip_224x224$"):
        clip_list(config.data, "train")
    config = load_config(None, ["data.dataset=dfew", f"data.root={tmp_path / 'DFEW'}", "data.frames=clip_224x224_16f"])
    clips = clip_list(config.data, "train")
    assert len(clips.items) == 8 and all(item.path.parent.name == "clip_224x224_16f" for item in clips.items)

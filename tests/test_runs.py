"""Whole runs from the command line: resuming a killed run, and k-fold cross-validation."""

from __future__ import annotations

import json
import logging
import signal
import statistics

import pytest
import torch
import yaml

from fe_adapter import cli
from tests.training_cases import (
    as_overrides,
    assert_runs_end_alike,
    dfew_tree,
    kill_hook,
    log_without_timings,
    run_module,
    tiny_config,
)

# 24 clips in batches of 4: 6 steps an epoch. The kill comes after the 2nd step of epoch 2.
KILL_AT_STEP = 8


def test_train_resume_after_a_kill_mid_epoch_ends_bitwise_like_the_uninterrupted_run(tmp_path):
    """`fe-adapter train` killed (SIGKILL) in the middle of its 2nd epoch, then `fe-adapter train --resume`:
    the run starts again after epoch 1 and ends with the weights, optimizer state and log of a run never
    interrupted, bit for bit (both at one thread)."""
    config = tiny_config(tmp_path / "uninterrupted", optim={"epochs": 3})
    finished = run_module("fe_adapter", ["train", *as_overrides(config)])
    assert finished.returncode == 0, finished.stderr[-3000:]

    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(kill_hook(KILL_AT_STEP))
    config["run"]["out_dir"] = str(tmp_path / "resumed")
    killed = run_module("fe_adapter", ["train", *as_overrides(config)], first_on_path=tmp_path / "hook")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    state = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    assert state["epoch"] == 1 and state["step"] == 6  # the last completed epoch, 2 steps before the kill
    assert len(log_without_timings(tmp_path / "resumed")) == 1

    resumed = run_module("fe_adapter", ["train", "--resume", *as_overrides(config)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    _, got_state = assert_runs_end_alike(tmp_path / "uninterrupted", tmp_path / "resumed")
    assert got_state["step"] == 18


def test_cv_trains_each_fold_on_its_own_split_into_its_own_folder_and_reports_their_mean(tmp_path, capsys):
    folds = dfew_tree(tmp_path / "DFEW")
    config = tiny_config(tmp_path / "cv", optim={"epochs": 1}, data={"dataset": "dfew", "root": str(tmp_path / "DFEW")})
    root = logging.getLogger()
    handlers = root.handlers[:]
    assert cli.main(["cv", "--folds", "1", "2", *as_overrides(config)]) == 0  # overrides after --folds count
    assert root.handlers == handlers  # each fold's train.log is closed and detached again
    cv_log = (tmp_path / "cv" / "cv.log").read_text()
    assert f"fold 1 (1/2): training in {tmp_path / 'cv' / 'fold_1'}" in cv_log and "fold 2 (2/2)" in cv_log

    summary = json.loads((tmp_path / "cv" / "cv.json").read_text())
    per_fold = {}
    for fold, (train, test) in folds.items():
        folder = tmp_path / "cv" / f"fold_{fold}"
        assert yaml.safe_load((folder / "report" / "config.yaml").read_text())["data"]["fold"] == fold
        assert f"{len(train)} train / {len(test)} test clips" in (folder / "train.log").read_text()
        best = json.loads((folder / "report" / "metrics.json").read_text())["best"]["metrics"]
        assert sum(map(sum, best["confusion"])) == len(test)  # evaluated on this fold's test split
        assert (folder / "best.safetensors").is_file()
        per_fold[fold] = best
        assert summary["folds"][str(fold)]["best"] == {
            "epoch": 1, **{key: best[key] for key in ("uar", "war", "uar_classes", "absent_classes")}}
    other = (tmp_path / "cv" / "fold_2" / "train.log").read_text()
    assert "8 train / 3 test" not in other  # fold 1's log lines stayed in fold 1's folder
    for key in ("uar", "war"):
        assert summary["mean"]["best"][key] == pytest.approx(statistics.fmean(m[key] for m in per_fold.values()))
    assert f"mean  : best: UAR {summary['mean']['best']['uar']:.2%}" in capsys.readouterr().out

    assert cli.main(["cv", "--folds", "1,2", *as_overrides(config)]) == 2  # the folder holds a cross-validation
    assert "pass --resume to continue the run in it, --overwrite to replace it" in capsys.readouterr().err
    assert cli.main(["cv", "--folds", "1,2", "--resume", *as_overrides(config)]) == 0  # both folds finished
    assert json.loads((tmp_path / "cv" / "cv.json").read_text()) == summary
    assert "fold 2 (2/2): resuming in" in (tmp_path / "cv" / "cv.log").read_text()

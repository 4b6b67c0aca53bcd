"""What a run reports: best and last epoch named apart, selection on a validation split, per-clip predictions that
re-score to the reported confusion, an eval that reads only its own split, and logs that hold what happened."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

from fe_adapter import cli, data
from fe_adapter.training import ConfigError, Trainer, config_from_dict
from fe_adapter.training import report as report_module
from fe_adapter.training.builders import build_dataset, validation_indices
from tests.media import numbered_frames, write_frame_folder
from tests.training_cases import as_overrides, dfew_tree, tiny_config, with_backbone_file


def _rescored(path: Path) -> tuple[list[list[int]], list[str]]:
    """The confusion matrix recomputed from a predictions CSV (probabilities only), and its columns."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    classes = [name.removeprefix("p_") for name in rows[0] if name.startswith("p_")]
    confusion = [[0] * len(classes) for _ in classes]
    for row in rows:
        probabilities = [float(row[f"p_{name}"]) for name in classes]
        assert sum(probabilities) == pytest.approx(1, abs=1e-5)
        predicted = max(range(len(classes)), key=probabilities.__getitem__)
        assert row["predicted"] == classes[predicted] and row["class"] == classes[int(row["label"])]
        confusion[int(row["label"])][predicted] += 1
    return confusion, list(rows[0])


def test_validation_split_is_stratified_deterministic_and_never_empties_a_class():
    labels = [0] * 10 + [1] * 5 + [2] + [3] * 2
    held_out = validation_indices(labels, 0.2, seed=0)
    assert [labels[i] for i in held_out].count(0) == 2  # round(0.2 * 10)
    assert [labels[i] for i in held_out].count(1) == 1  # round(0.2 * 5)
    assert [labels[i] for i in held_out].count(2) == 0  # a class of one clip keeps it for training
    assert [labels[i] for i in held_out].count(3) == 1  # at least one, never all
    assert held_out == validation_indices(labels, 0.2, seed=0)
    assert held_out != validation_indices(labels, 0.2, seed=1)


def test_val_fraction_selects_the_best_epoch_on_the_carved_split_and_reports_best_and_last(tmp_path):
    config = config_from_dict(tiny_config(tmp_path / "run", data={"val_fraction": 0.25}, optim={"epochs": 3}))
    trainer = Trainer(config)
    train_ids = {item.path for item in trainer.train_set.items}
    val_ids = {item.path for item in trainer.val_set.items}
    assert len(train_ids) == 18 and len(val_ids) == 6 and not train_ids & val_ids  # 1 of 4 clips of each class
    assert trainer.val_set.class_counts() == [1] * 6 and not trainer.val_set.train
    normalization = data.normalization_for(trainer.model)  # what `eval --split val` builds: the same clips
    rebuilt = build_dataset(config.data, normalization, "val", train=False, seed=config.run.seed)
    assert [item.path for item in rebuilt.items] == [item.path for item in trainer.val_set.items]
    with pytest.raises(ConfigError, match="the val split is carved from the training split: set data.val_fraction"):
        build_dataset(dataclasses.replace(config.data, val_fraction=0.0), normalization, "val", train=False)

    summary = trainer.fit()
    history = summary["history"]
    best_epoch = max(history, key=lambda record: record["val_uar"])["epoch"]  # the first of equals
    assert summary["selection"]["split"] == "val" and summary["best"]["epoch"] == best_epoch
    best = history[best_epoch - 1]
    assert summary["best"]["metrics"]["uar"] == best["uar"] and summary["best"]["val_metrics"]["uar"] == best["val_uar"]
    assert summary["last"]["epoch"] == 3 and summary["last"]["metrics"]["uar"] == history[-1]["uar"]
    assert sum(map(sum, summary["best"]["val_metrics"]["confusion"])) == 6


def test_training_report_names_best_and_last_and_holds_predictions_that_rescore(tmp_path, monkeypatch):
    titles = []
    plot = report_module.plot_confusion
    monkeypatch.setattr(report_module, "plot_confusion", lambda *args: titles.append(args[-1]) or plot(*args))
    out = tmp_path / "run"
    assert cli.main(["train", *as_overrides(tiny_config(out, optim={"epochs": 2}))]) == 0

    summary = json.loads((out / "report" / "metrics.json").read_text())
    assert summary["selection"]["split"] == "test" and "optimistic" in summary["selection"]["note"]
    assert summary["last"]["epoch"] == 2 and summary["best"]["epoch"] in (1, 2)
    confusion, columns = _rescored(out / "report" / "predictions.csv")
    assert columns[:4] == ["id", "label", "class", "predicted"] and len(columns) == 4 + 6
    assert confusion == summary["best"]["metrics"]["confusion"]
    assert _rescored(out / "report" / "predictions_last.csv")[0] == summary["last"]["metrics"]["confusion"]
    assert titles == [f"test split, epoch {summary['best']['epoch']} (best UAR on test): UAR "
                      f"{summary['best']['metrics']['uar']:.1%}, WAR {summary['best']['metrics']['war']:.1%}"]
    log = (out / "train.log").read_text()
    assert "batches: 4 clips per process x 1 process(es) x 1 accumulation = 4 clips per optimizer step; 6 steps " \
           "per epoch (6 batches), 12 in all, 3 of warm-up" in log
    assert "best epoch chosen by UAR on the test split (an optimistic estimate" in log


def test_curves_put_epochs_on_whole_number_ticks():
    history = [{"epoch": epoch, "loss": 1.0 / epoch, "uar": 0.1 * epoch, "war": 0.1 * epoch, "val_uar": 0.2,
                "val_war": 0.2} for epoch in (1, 2, 3)]
    figure = report_module.curves_figure(history)
    for axes in figure.axes:
        assert all(float(tick).is_integer() for tick in axes.get_xticks())
    assert [line.get_label() for line in figure.axes[1].lines] == ["test UAR", "test WAR", "val UAR", "val WAR"]


def test_eval_reads_only_its_split_and_reports_what_it_evaluated(tmp_path, capsys, monkeypatch):
    """`eval` after training on DFEW fold 1: the training split file is gone and eval still runs; its report
    keeps the config's epochs, titles the confusion with the split, and holds per-clip predictions; a different
    clip length is announced on stderr."""
    dfew_tree(tmp_path / "DFEW")
    out = tmp_path / "run"
    config = with_backbone_file(tiny_config(out, data={"dataset": "dfew", "root": str(tmp_path / "DFEW"),
                                                       "batch_size": 2}, optim={"epochs": 2}), tmp_path)
    assert cli.main(["train", *as_overrides(config)]) == 0
    trained = json.loads((out / "report" / "metrics.json").read_text())
    (tmp_path / "DFEW" / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_1.csv").unlink()
    titles = []
    plot = report_module.plot_confusion
    monkeypatch.setattr(report_module, "plot_confusion", lambda *args: titles.append(args[-1]) or plot(*args))
    capsys.readouterr()

    arguments = ["eval", "--config", str(out / "report" / "config.yaml"), "--checkpoint", str(out / "best.safetensors")]
    assert cli.main([*arguments, "--out", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["metrics"]["confusion"] == trained["best"]["metrics"]["confusion"] and evaluated["clips"] == 3
    assert _rescored(tmp_path / "eval" / "predictions.csv")[0] == evaluated["metrics"]["confusion"]
    assert yaml.safe_load((tmp_path / "eval" / "config.yaml").read_text())["optim"]["epochs"] == 2
    assert titles == [f"test split: UAR {evaluated['metrics']['uar']:.1%}, WAR {evaluated['metrics']['war']:.1%}"]

    assert cli.main([*arguments, "--out", str(tmp_path / "eval")]) == 2
    assert "--out" in capsys.readouterr().err
    assert cli.main([*arguments, "--out", str(tmp_path / "eval"), "--overwrite", "data.num_frames=2"]) == 0
    assert "evaluating with data.num_frames = 2, but" in capsys.readouterr().err
    assert cli.main([*arguments, "--split", "train"]) == 2  # that split file is gone: it is read only when asked
    assert "DFEW split file not found" in capsys.readouterr().err


def test_clip_warnings_and_skipped_test_clips_reach_train_log(tmp_path):
    for name in ("a", "b", "c", "d"):
        write_frame_folder(tmp_path / "clips" / name, numbered_frames(4, size=32))
    for name in ("broken_train", "broken_test"):
        (tmp_path / "clips" / name).mkdir()  # exists, but holds no frames
    (tmp_path / "train.txt").write_text("clips/a 0\nclips/broken_train 1\nclips/b 1\n")
    (tmp_path / "test.txt").write_text("clips/c 0\nclips/d 1\nclips/broken_test 0\n")
    out = tmp_path / "run"
    config = tiny_config(out, optim={"epochs": 1}, data={
        "dataset": "list", "train_list": str(tmp_path / "train.txt"), "test_list": str(tmp_path / "test.txt"),
        "class_names": ["calm", "tense"], "batch_size": 1, "min_readable": 0.5})
    assert cli.main(["train", *as_overrides(config)]) == 0
    log = (out / "train.log").read_text()
    assert f"warning: skipping unreadable clip: {tmp_path / 'clips' / 'broken_train'}" in log
    assert f"skipped 1 unreadable clips of 3 this epoch: {tmp_path / 'clips' / 'broken_train'}" in log
    assert f"skipped 1 unreadable clips of 3 in the test split: {tmp_path / 'clips' / 'broken_test'}; the scores " \
           "leave them out" in log
    best = json.loads((out / "report" / "metrics.json").read_text())["best"]["metrics"]
    assert sum(map(sum, best["confusion"])) == 2  # the scores count the 2 readable test clips


def _three_class_lists(folder: Path, train: str, test: str) -> dict:
    """Frame-folder clips a..f and list files naming the classes calm, tense, bored; the data section."""
    for index, name in enumerate("abcdef"):
        write_frame_folder(folder / "clips" / name, numbered_frames(4, size=32) + 20 * index)
    (folder / "train.txt").write_text(train)
    (folder / "test.txt").write_text(test)
    return {"dataset": "list", "train_list": str(folder / "train.txt"), "test_list": str(folder / "test.txt"),
            "class_names": ["calm", "tense", "bored"], "batch_size": 2}


@pytest.mark.parametrize("optim, balanced", [({}, False), ({"class_weighted": True}, False), ({}, True)],
                         ids=["plain", "class-weighted", "balanced"])
def test_a_class_without_training_clips_stops_the_run_naming_it(tmp_path, capsys, caplog, optim, balanced):
    data_section = _three_class_lists(tmp_path, "clips/a 0\nclips/b 1\nclips/c 0\nclips/d 1\n",
                                      "clips/e 2\nclips/f 0\n")
    config = tiny_config(tmp_path / "run", data={**data_section, "balanced": balanced}, optim=optim)
    assert cli.main(["train", *as_overrides(config)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"fe-adapter train: error: list file {tmp_path / 'train.txt'} (data.train_list): the "
                            "training split (4 clips) has no clips of the class bored (of 3: calm, tense, bored); "
                            "the model cannot learn it: add clips of it, leave it out of data.class_names, or set "
                            "data.empty_classes=warn to train anyway"), error
    assert not (tmp_path / "run" / "log.jsonl").exists()

    config["data"]["empty_classes"] = "warn"
    trainer = Trainer(config_from_dict(config))
    assert trainer.train_set.class_counts() == [2, 2, 0]
    assert "has no clips of the class bored" in caplog.text and "training anyway (data.empty_classes=warn)" in \
        caplog.text


def test_a_class_without_test_clips_is_null_in_metrics_json_and_uar_names_its_classes(tmp_path):
    data_section = _three_class_lists(tmp_path, "clips/a 0\nclips/b 1\nclips/c 2\nclips/d 1\n",
                                      "clips/e 1\nclips/f 0\n")
    out = tmp_path / "run"
    assert cli.main(["train", *as_overrides(tiny_config(out, data=data_section, optim={"epochs": 1}))]) == 0
    text = (out / "report" / "metrics.json").read_text()
    summary = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in metrics.json"))
    for which in ("best", "last"):
        metrics = summary[which]["metrics"]
        assert metrics["per_class_recall"]["bored"] is None
        assert metrics["uar_classes"] == ["calm", "tense"] and metrics["absent_classes"] == ["bored"]
        recalls = [metrics["per_class_recall"][name] for name in ("calm", "tense")]
        assert metrics["uar"] == pytest.approx(sum(recalls) / 2)
    log = (out / "train.log").read_text()
    assert "(over 2 of 3 classes; no clips of bored)" in log.splitlines()[-1]  # the final summary line
    assert sum("(over 2 of 3 classes; no clips of bored)" in line for line in log.splitlines()
               if line.startswith("epoch 1:")) == 1


def test_a_resumed_state_from_before_absent_classes_were_null_writes_strict_json(tmp_path):
    """last.pt of an older version stored NaN recall for a class without test clips: resuming rescoring its
    best epoch from the stored confusion gives null, so the report at the end can be written."""
    from fe_adapter._json import to_json

    trainer = Trainer(config_from_dict(tiny_config(tmp_path / "run")))
    names = list(trainer.model.class_names)
    confusion = [[0] * len(names) for _ in names]
    confusion[0][0], confusion[1][0] = 3, 1
    old = {"uar": 0.5, "war": 0.75, "confusion": confusion, "class_names": names,
           "per_class_recall": {name: 1.0 if index == 0 else 0.0 if index == 1 else math.nan
                                for index, name in enumerate(names)}}
    state = trainer.state_dict()
    state["best"] = {"epoch": 1, "metrics": old}
    trainer.load_state_dict(state)
    metrics = trainer.best["metrics"]
    assert metrics["per_class_recall"] == {name: 1.0 if index == 0 else 0.0 if index == 1 else None
                                           for index, name in enumerate(names)}
    assert metrics["uar"] == 0.5 and metrics["uar_classes"] == names[:2] and trainer.best["epoch"] == 1
    to_json(trainer.best)

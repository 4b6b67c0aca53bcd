"""DistributedDataParallel on 2 CPU processes (gloo, torchrun --standalone: a free port, never a fixed one)."""

from __future__ import annotations

import json

from fe_adapter.training import load_config
from fe_adapter.training.run import run_evaluation
from tests.media import numbered_frames, write_frame_folder
from tests.training_cases import (
    as_overrides,
    assert_two_ranks_train_as_one_process,
    noise_clip,
    run_module,
    tiny_config,
    with_backbone_file,
)


def test_two_ranks_end_with_the_weights_of_one_process_on_the_same_global_batch(tmp_path):
    """8 clips, class-weighted loss with label smoothing, accumulation 2: one process with batches of 4 and
    two ranks with batches of 2 each take one step per epoch on all 8 clips, so they end with the same
    weights; the two ranks hold identical ones."""
    lines = []
    for index in range(8):
        noise_clip(tmp_path / "clips" / f"c{index}", seed=index)  # 4 frames: frame sampling has no choice
        lines.append(f"clips/c{index} {[0, 0, 0, 0, 0, 1, 1, 2][index]}")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "test.txt").write_text("clips/c0 0\n")
    values = tiny_config(tmp_path / "run", data={
        "dataset": "list", "train_list": str(tmp_path / "train.txt"), "test_list": str(tmp_path / "test.txt"),
        "class_names": ["calm", "tense", "glad"], "batch_size": 2},
        optim={"epochs": 2, "accumulation": 2, "class_weighted": True, "label_smoothing": 0.1, "lr": 1e-2})
    assert_two_ranks_train_as_one_process(values, tmp_path, single_batch_size=4)


def test_two_process_ddp_run_matches_single_process_evaluation(tmp_path):
    """torchrun with 2 CPU processes (gloo): the run completes, only rank 0 writes, metrics are whole-test-set."""
    config = with_backbone_file(tiny_config(tmp_path / "ddp", optim={"epochs": 1}), tmp_path)
    finished = run_module("fe_adapter", ["train", *as_overrides(config)], torchrun=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    log = (tmp_path / "ddp" / "train.log").read_text()
    assert "processes: 2" in log
    assert "batches: 4 clips per process x 2 process(es) x 1 accumulation = 8 clips per optimizer step; 3 steps " \
           "per epoch" in log
    best = json.loads((tmp_path / "ddp" / "report" / "metrics.json").read_text())["best"]["metrics"]
    assert sum(map(sum, best["confusion"])) == 12  # every test clip counted once, not per rank

    single = run_evaluation(load_config(tmp_path / "ddp" / "report" / "config.yaml"),
                            tmp_path / "ddp" / "best.safetensors", None)
    assert single["metrics"]["confusion"] == best["confusion"]


def test_ddp_survives_a_batch_of_unreadable_clips_on_one_rank(tmp_path):
    """One rank's batch holds only an unreadable clip: all ranks skip that step instead of waiting forever."""
    for name in ("a", "b", "c", "d", "e", "f"):
        write_frame_folder(tmp_path / "clips" / name, numbered_frames(4, size=32))
    (tmp_path / "clips" / "broken").mkdir()  # exists, but holds no frames
    (tmp_path / "train.txt").write_text("clips/a 0\nclips/broken 1\nclips/b 1\nclips/c 0\n")
    (tmp_path / "test.txt").write_text("clips/d 0\nclips/e 1\nclips/f 0\n")
    config = tiny_config(tmp_path / "run", optim={"epochs": 2},
                         data={"dataset": "list", "train_list": str(tmp_path / "train.txt"),
                               "test_list": str(tmp_path / "test.txt"), "class_names": ["calm", "tense"],
                               "batch_size": 1, "min_readable": 0.5})
    finished = run_module("fe_adapter", ["train", *as_overrides(config)], torchrun=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    best = json.loads((tmp_path / "run" / "report" / "metrics.json").read_text())["best"]["metrics"]
    assert sum(map(sum, best["confusion"])) == 3

"""Shared set-ups for the training tests: a tiny config, frame-folder datasets, CLI overrides, subprocess runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

TINY_BACKBONE = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 48, "num_heads": 2}
REPOSITORY = Path(__file__).resolve().parents[1]


def tiny_config(out_dir: Path, **sections) -> dict:
    """A config that trains in about a second: 2-block ViT at 32 px, 4 frames, 24 synthetic clips."""
    config = {
        "data": {"dataset": "synthetic", "num_frames": 4, "img_size": 32, "batch_size": 4, "num_workers": 0,
                 "synthetic_train_clips": 24, "synthetic_test_clips": 12},
        "model": {"backbone": "vit_tiny_patch16_224", "backbone_kwargs": TINY_BACKBONE, "bottleneck": 16,
                  "dropout": 0.0, "random_backbone": True},
        "optim": {"epochs": 2, "lr": 3e-3, "warmup_epochs": 0.5, "label_smoothing": 0.0},
        "run": {"out_dir": str(out_dir), "progress": False, "tensorboard": False, "deterministic": True},
    }
    for section, values in sections.items():
        config[section].update(values)
    return config


def trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def with_backbone_file(config: dict, folder: Path) -> dict:
    """Give the run real backbone weights in a file, as eval and predict require."""
    import timm
    from safetensors.torch import save_file

    backbone = timm.create_model("vit_tiny_patch16_224", pretrained=False, **TINY_BACKBONE)
    path = folder / "backbone.safetensors"
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(path))
    config["model"]["checkpoint"] = str(path)
    config["model"]["random_backbone"] = False
    return config


def as_overrides(config: dict) -> list[str]:
    """The config as ``section.key=value`` arguments of the CLI."""
    return [f"{section}.{key}={json.dumps(value)}" for section, values in config.items()
            for key, value in values.items()]


def noise_clip(folder: Path, seed: int, frames: int = 4, size: int = 32) -> Path:
    """A frame folder of random images (every clip different, so every clip moves the gradient)."""
    from tests.media import write_frame_folder

    pixels = np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    return write_frame_folder(folder, pixels)


def run_module(module: str, arguments: list[str], torchrun: bool = False, first_on_path: Path | None = None,
               timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` in a fresh process with one thread per process, so that runs repeat
    bitwise; ``torchrun`` runs 2 processes (``--standalone`` picks a free port). ``first_on_path`` goes first
    on PYTHONPATH (a folder with a ``sitecustomize.py`` changes the run from the inside)."""
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] if torchrun else []
    path = [str(first_on_path)] if first_on_path else []
    path += [str(REPOSITORY)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run([sys.executable, *launcher, "-m", module, *arguments], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPOSITORY)


def dfew_tree(root: Path, frames: str = "clip_224x224") -> dict[int, tuple[list[int], list[int]]]:
    """A DFEW-shaped folder with folds 1 and 2 of different sizes (8/3 and 7/4 train/test clips)."""
    folds = {1: (list(range(1, 9)), [9, 10, 11]), 2: (list(range(5, 12)), [1, 2, 3, 4])}
    for clip in range(1, 12):
        noise_clip(root / "Clip" / frames / f"{clip:05d}", seed=clip)
    for fold, splits in folds.items():
        for split, clips in zip(("train", "test"), splits, strict=True):
            folder = root / "EmoLabel_DataSplit" / f"{split}(single-labeled)"
            folder.mkdir(parents=True, exist_ok=True)
            rows = "".join(f"{clip},{clip % 7 + 1}\n" for clip in clips)
            (folder / f"set_{fold}.csv").write_text("video_name,label\n" + rows)
    return folds


#: What a run's log.jsonl records that differs between two runs of the same computation.
TIMINGS = ("clips_per_s", "images_per_s", "seconds")


def kill_hook(step: int) -> str:
    """A ``sitecustomize.py`` (see ``run_module``'s ``first_on_path``) that kills the run (SIGKILL) right after
    its optimizer step number ``step``: in the middle of an epoch, for the resume tests."""
    return f'''
"""Loaded by the interpreter at start-up (sitecustomize): kill this process in the middle of an epoch."""
import os
import signal

from fe_adapter.training.trainer import Trainer

_step = Trainer._optimizer_step


def _step_then_die(self, *args, **kwargs):
    _step(self, *args, **kwargs)
    if self.step == {step}:
        os.kill(os.getpid(), signal.SIGKILL)


Trainer._optimizer_step = _step_then_die
'''


def log_without_timings(out_dir: Path) -> list[dict]:
    """The records of a run's log.jsonl without its timings."""
    records = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in record.items() if k not in TIMINGS} for record in records]


def assert_ranks_match_one_process(single: dict, rank0: dict, rank1: dict) -> None:
    """Two DDP ranks hold identical weights, equal (to float rounding) to one process's on the same global batch."""
    assert single.keys() == rank0.keys() == rank1.keys()
    for name, value in single.items():
        assert torch.equal(rank0[name], rank1[name]), name
        torch.testing.assert_close(rank0[name], value, rtol=1e-5, atol=5e-6,
                                   msg=lambda message, name=name: f"{name}: {message}")


def assert_two_ranks_train_as_one_process(values: dict, tmp_path: Path, single_batch_size: int) -> None:
    """Train the config ``values`` with two torchrun ranks and again in one process whose batches hold
    ``single_batch_size`` (the two ranks' global batch), through tests/ddp_harness.py, and compare what they saved
    (``assert_ranks_match_one_process``)."""
    from tests.ddp_harness import train_and_save

    (tmp_path / "ddp.json").write_text(json.dumps(values))
    finished = run_module("tests.ddp_harness", [str(tmp_path / "ddp.json"), str(tmp_path / "ddp")], torchrun=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    single_values = {**values, "data": {**values["data"], "batch_size": single_batch_size}}
    single = torch.load(train_and_save(single_values, tmp_path / "single"))
    assert_ranks_match_one_process(single, *(torch.load(tmp_path / "ddp" / f"rank{rank}.pt") for rank in (0, 1)))


def assert_runs_end_alike(expected_dir: Path, got_dir: Path) -> tuple[dict, dict]:
    """Two runs' checkpoints, optimizer states and logs are bitwise equal; returns their last.pt states."""
    from safetensors.torch import load_file

    for name in ("last.safetensors", "best.safetensors"):
        expected, got = load_file(expected_dir / name), load_file(got_dir / name)
        assert expected.keys() == got.keys()
        assert all(torch.equal(got[key], value) for key, value in expected.items()), name
    expected_state = torch.load(expected_dir / "last.pt", weights_only=False)
    got_state = torch.load(got_dir / "last.pt", weights_only=False)
    assert got_state["step"] == expected_state["step"]
    for index, moments in expected_state["optimizer"]["state"].items():
        assert all(torch.equal(got_state["optimizer"]["state"][index][key], value) for key, value in moments.items())
    assert log_without_timings(got_dir) == log_without_timings(expected_dir)
    return expected_state, got_state

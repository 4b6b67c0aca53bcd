"""Train on a fixed pipeline and save this process's trainable weights: run by tests/test_ddp.py under
torchrun (one process per rank) and in the test's own process, to compare DDP with single-process training.

    python -m tests.ddp_harness CONFIG.json OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from fe_adapter import data
from fe_adapter.training import ImageTask, Trainer, config_from_dict, image_config_from_dict
from fe_adapter.training.distributed import init_distributed, shutdown_distributed


def train_and_save(config_values: dict, out: Path) -> Path:
    """Train ``optim.epochs`` epochs and write ``out/rank{rank}.pt``; the clips must have exactly
    ``data.num_frames`` frames, so that training-time frame sampling has a single choice. ``"task": "image"`` in
    the values trains the image classifier (``ImageTask``; no augmentation must be configured)."""
    dist = init_distributed("cpu")
    values = dict(config_values)
    image = values.pop("task", "video") == "image"
    try:
        if image:
            trainer = Trainer(image_config_from_dict(values), dist, ImageTask())
        else:
            trainer = Trainer(config_from_dict(values), dist)
            # no random crop, flip or jitter: every process sees the very same pixels of a clip
            trainer.train_set.transform = data.eval_transform(data.normalization_for(trainer.model))
            trainer.task.augment = None  # nor on the batch
        for epoch in range(trainer.config.optim.epochs):
            trainer.train_epoch(epoch)
        weights = {n: p.detach() for n, p in trainer.model.named_parameters() if p.requires_grad}
        if image:  # every weight of the ViT trains: compare AdamW's first moment (the gradients), see the test
            weights = {n: trainer.optimizer.state[p]["exp_avg"] for n, p in trainer.model.named_parameters()}
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"rank{dist.rank}.pt"
        torch.save(weights, path)
        return path
    finally:
        shutdown_distributed()


if __name__ == "__main__":
    train_and_save(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))

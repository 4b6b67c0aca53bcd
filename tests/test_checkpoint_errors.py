"""Corrupt, truncated and wrong-kind checkpoint files: one line naming the file, CheckpointError in Python,
exit status 2 from every command that reads checkpoints (predict, eval, train --resume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import fe_adapter
from fe_adapter import cli
from fe_adapter.training.state import STATE_FORMAT
from tests.tiny_model import TINY_VIT

pytestmark = pytest.mark.xdist_group(__name__)  # its module fixtures are built once, on one worker

TINY = TINY_VIT


@pytest.fixture(scope="module")
def good(tiny_model_files) -> tuple[Path, Path]:
    """(adapter checkpoint, backbone weights) that load."""
    return tiny_model_files


def _bad_file(kind: str, folder: Path, good_file: Path) -> Path:
    """A bad file named like a good one: random bytes, truncated, empty, or a training state (last.pt)."""
    path = folder / kind / good_file.name
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "random":
        path.write_bytes(_RANDOM_BYTES)
    elif kind == "truncated":
        path.write_bytes(good_file.read_bytes()[: good_file.stat().st_size // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "last.pt":
        torch.save({"format": STATE_FORMAT, "model": {"w": torch.zeros(2)}, "epoch": 1}, path)
    return path


# Seeded random bytes beginning with 0x80, the first byte of a pickle: a file is not taken for a PyTorch file
# by that byte alone (os.urandom bytes did so one run in 256).
_RANDOM_BYTES = b"\x80" + np.random.default_rng(0).bytes(4095)
KINDS = ["random", "truncated", "empty", "last.pt"]
WHAT = {"random": "corrupt", "truncated": "corrupt", "empty": "empty", "last.pt": "training state"}


def _one_line_naming(error: BaseException | str, path: Path, what: str) -> None:
    text = str(error).strip()
    assert "\n" not in text and str(path) in text and what in text, text
    assert "Traceback" not in text


@pytest.mark.parametrize("kind", KINDS)
def test_python_api_raises_checkpoint_error_for_a_bad_adapter_checkpoint(tmp_path, good, kind):
    adapters, backbone = good
    bad = _bad_file(kind, tmp_path, adapters)
    model = fe_adapter.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=4, backbone_kwargs=TINY,
                                    checkpoint=backbone, bottleneck=8)
    for call in (lambda: fe_adapter.read_adapter_config(bad), lambda: fe_adapter.load_adapters(model, bad),
                 lambda: fe_adapter.Predictor.from_checkpoint(bad, backbone_checkpoint=backbone)):
        with pytest.raises(fe_adapter.CheckpointError) as raised:
            call()
        _one_line_naming(raised.value, bad, WHAT[kind])
    assert issubclass(fe_adapter.CheckpointError, ValueError)


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_pytorch_file_given_as_adapters_is_named_as_one(tmp_path, zipped):
    path = tmp_path / "adapters.safetensors"
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(fe_adapter.CheckpointError) as raised:
        fe_adapter.read_adapter_config(path)
    _one_line_naming(raised.value, path, "is a PyTorch file (torch.save)")


@pytest.mark.parametrize("kind", [*KINDS, "adapters"])
def test_python_api_raises_checkpoint_error_for_bad_backbone_weights(tmp_path, good, kind):
    adapters, backbone = good
    bad = adapters if kind == "adapters" else _bad_file(kind, tmp_path, backbone)
    what = "not backbone weights" if kind == "adapters" else WHAT[kind]
    for call in (lambda: fe_adapter.create_model("vit_tiny_patch16_224", num_classes=3, backbone_kwargs=TINY,
                                                 checkpoint=bad),
                 lambda: fe_adapter.Predictor.from_checkpoint(adapters, backbone_checkpoint=bad)):
        with pytest.raises(fe_adapter.CheckpointError) as raised:
            call()
        _one_line_naming(raised.value, bad, what)


@pytest.mark.parametrize("option, kind", [("--checkpoint", "random"), ("--checkpoint", "last.pt"),
                                          ("--backbone-checkpoint", "random"),
                                          ("--backbone-checkpoint", "truncated")])
def test_predict_gives_one_line_and_status_2(tmp_path, good, capsys, option, kind):
    adapters, backbone = good
    files = {"--checkpoint": adapters, "--backbone-checkpoint": backbone}
    files[option] = _bad_file(kind, tmp_path, files[option])
    (tmp_path / "clip.mp4").write_bytes(b"")  # a video that exists: with none, predict stops before the checkpoint
    code = cli.main(["predict", str(tmp_path / "clip.mp4"), "--checkpoint", str(files["--checkpoint"]),
                     "--backbone-checkpoint", str(files["--backbone-checkpoint"]), "--out", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("fe-adapter predict: error: ")
    _one_line_naming(error, files[option], WHAT[kind])


def test_eval_and_train_resume_give_one_line_and_status_2(tmp_path, good, capsys):
    adapters, backbone = good
    bad = _bad_file("random", tmp_path, adapters)
    overrides = ["data.dataset=synthetic", "data.num_frames=4", "data.img_size=32", "data.num_workers=0",
                 "data.synthetic_train_clips=8", "data.synthetic_test_clips=4", f"model.checkpoint={backbone}",
                 "model.backbone_kwargs={img_size: 32, patch_size: 8, depth: 2, embed_dim: 48, num_heads: 2}",
                 f"run.out_dir={tmp_path / 'run'}", "run.progress=false", "run.tensorboard=false"]
    assert cli.main(["eval", "--checkpoint", str(bad), *overrides]) == 2
    _one_line_naming(capsys.readouterr().err, bad, "corrupt")

    state = tmp_path / "run" / "last.pt"
    state.parent.mkdir()
    good_state = _bad_file("last.pt", tmp_path, state)
    state.write_bytes(good_state.read_bytes()[:-100])  # a training state cut short
    assert cli.main(["train", "--resume", *overrides]) == 2
    _one_line_naming(capsys.readouterr().err.strip().splitlines()[-1], state, "cannot be read")


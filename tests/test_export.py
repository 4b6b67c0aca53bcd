"""Export to ONNX and .pt2: the files run without fe-adapter and agree with the PyTorch model, at any batch size."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import fe_adapter
import fekernels
from fe_adapter import export
from fe_adapter.checkpoint import load_model
from fe_adapter.demo import BACKBONE, BACKBONE_KWARGS

pytestmark = pytest.mark.xdist_group(__name__)  # its module fixtures are built once, on one worker

#: Runs an exported file in a fresh interpreter that has neither fe-adapter nor its kernels, and prints the
#: probabilities of the clips in each .npy file given. ONNX runs on onnxruntime alone, without torch.
_DEPLOYED = textwrap.dedent("""
    import json, sys
    import numpy as np
    path, batches = sys.argv[1], [np.load(name) for name in sys.argv[2:]]
    if path.endswith(".onnx"):
        import onnxruntime
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        outputs = [session.run(["probabilities"], {"clips": clips})[0] for clips in batches]
    else:
        import torch
        module = torch.export.load(path).module()
        with torch.no_grad():
            outputs = [module(torch.from_numpy(clips))[1].numpy() for clips in batches]
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("fe_adapter", "fekernels", "timm"))
    print(json.dumps({"probabilities": [output.tolist() for output in outputs], "loaded": loaded}))
""")


def _deployed_probabilities(path: Path, batches: list[torch.Tensor], tmp_path: Path) -> list[np.ndarray]:
    names = []
    for number, clips in enumerate(batches):
        names.append(str(tmp_path / f"clips{number}.npy"))
        np.save(names[-1], clips.numpy())
    result = subprocess.run([sys.executable, "-c", _DEPLOYED, str(path), *names],
                            capture_output=True, text=True, check=True, cwd=tmp_path)
    output = json.loads(result.stdout)
    assert output["loaded"] == [], f"the exported file needed {output['loaded']}"
    return [np.array(probabilities, dtype=np.float32) for probabilities in output["probabilities"]]


def _pytorch_probabilities(model: torch.nn.Module, clips: torch.Tensor) -> np.ndarray:
    """The model as PyTorch runs it, on 0..1 pixels normalised with its recorded statistics (written out here,
    not taken from the export code)."""
    from fe_adapter.data.transforms import normalization_for

    normalization = normalization_for(model)
    mean = torch.tensor(normalization.mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(normalization.std).view(1, 1, 3, 1, 1)
    with torch.no_grad():
        return model.eval()((clips - mean) / std).softmax(-1).numpy()


def _demo_size_model() -> torch.nn.Module:
    """The demo's video model shape (40 px, average-pooled tokens, statistics 0.5) with random adapters."""
    torch.manual_seed(1)
    model = fe_adapter.create_model(BACKBONE, num_classes=6, num_frames=8, bottleneck=16, dilation=[1, 2, 1, 2],
                                    activation="gelu", backbone_kwargs=BACKBONE_KWARGS, dropout=0.0,
                                    random_backbone=True)
    with torch.no_grad():
        for adapter in fe_adapter.adapters(model):
            for parameter in adapter.parameters():
                parameter.normal_(0, 0.2)
    return model


@pytest.fixture(scope="module")
def trained_model(tiny_model_files):
    adapters, backbone = tiny_model_files
    return load_model(adapters, backbone)


@pytest.fixture(scope="module")
def exported(trained_model, tmp_path_factory):
    """The tiny model exported once to each format, for the tests that only read the files (an export takes
    seconds)."""
    folder = tmp_path_factory.mktemp("exported")
    return {format: export.export_model(trained_model, folder / f"model.{format}") for format in export.FORMATS}


@pytest.mark.parametrize("format", export.FORMATS)
@pytest.mark.parametrize("which", ["tiny-vit-cls-token", "demo-size-avg-pool"])
def test_exported_file_runs_without_fe_adapter_and_matches_pytorch(which, format, trained_model, exported, tmp_path):
    if which.startswith("tiny"):
        model, result = trained_model, exported[format]
    else:
        model = _demo_size_model()
        result = export.export_model(model, tmp_path / f"model.{format}")
    assert set(result.max_difference) == {1, 3} and max(result.max_difference.values()) <= export.TOLERANCE
    frames, size = model.num_frames, model.backbone.patch_embed.img_size[0]
    batches = [torch.rand(batch, frames, 3, size, size) for batch in (1, 2, 5)]  # sizes it was not verified at too
    for clips, deployed in zip(batches, _deployed_probabilities(result.path, batches, tmp_path), strict=True):
        assert deployed.shape == (len(clips), model.num_classes)
        assert np.abs(deployed - _pytorch_probabilities(model, clips)).max() <= export.TOLERANCE


@pytest.mark.parametrize("format", export.FORMATS)
def test_metadata_names_classes_input_and_settings(format, exported):
    metadata = export.read_metadata(exported[format].path)
    assert metadata["class_names"] == ["happy", "sad", "neutral"]
    assert metadata["num_frames"] == 4
    assert metadata["input"]["shape"] == ["batch", 4, 3, 32, 32]
    assert metadata["input"]["pixel_range"] == [0.0, 1.0] and metadata["input"]["normalised_inside"]
    assert metadata["input"]["mean"] == pytest.approx([0.5, 0.5, 0.5])  # vit_tiny_patch16_224's default tag
    assert metadata["model"]["adapter"]["bottleneck"] == 8
    assert metadata["model"]["backbone_weights"]["file"] == "backbone.safetensors"


def test_export_leaves_the_model_as_it_was(trained_model, tmp_path):
    trained_model.train()
    impls = [adapter.impl for adapter in fe_adapter.adapters(trained_model)]
    before = {name: tensor.clone() for name, tensor in trained_model.state_dict().items()}
    export.export_model(trained_model, tmp_path / "model.pt2")
    assert trained_model.training
    assert [adapter.impl for adapter in fe_adapter.adapters(trained_model)] == impls
    assert all(torch.equal(before[name], tensor) for name, tensor in trained_model.state_dict().items())


def test_the_adapters_are_lowered_to_standard_operators(trained_model, tmp_path, monkeypatch):
    """Without the lowering, the native kernel's custom op reaches the ONNX exporter, which cannot translate it:
    a one-line ExportError, and no file."""
    if fekernels.resolve_impl("auto", torch.empty(1, 1, 1)) != "native":
        pytest.skip("the native kernel is not built: impl='auto' already runs the reference")
    monkeypatch.setattr(export, "_reference_adapters", lambda model: contextlib.nullcontext())
    with pytest.raises(export.ExportError, match="torch.onnx.export failed") as error:
        export.export_model(trained_model, tmp_path / "model.onnx")
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_does_not_match_pytorch_is_not_written(trained_model, tmp_path, monkeypatch):
    real = export.load_exported

    def off_by_a_little(path, format=None):
        run = real(path, format)
        return lambda clips: (lambda out: (out[0], out[1] + 2e-4))(run(clips))

    monkeypatch.setattr(export, "load_exported", off_by_a_little)
    (tmp_path / "model.pt2").write_bytes(b"an earlier export")
    with pytest.raises(export.VerificationError, match=r"differs from PyTorch by 0\.0002.*model.pt2 not written"):
        export.export_model(trained_model, tmp_path / "model.pt2", overwrite=True)
    assert [path.name for path in tmp_path.iterdir()] == ["model.pt2"]  # no temporary file left
    assert (tmp_path / "model.pt2").read_bytes() == b"an earlier export"


def test_bad_requests_are_refused_before_any_work(trained_model, tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"earlier")
    with pytest.raises(FileExistsError, match="model.onnx already exists; pass --overwrite"):
        export.export_model(trained_model, tmp_path / "model.onnx")
    assert (tmp_path / "model.onnx").read_bytes() == b"earlier"
    with pytest.raises(ValueError, match="cannot tell the format from the file name model.bin"):
        export.export_model(trained_model, tmp_path / "model.bin")
    with pytest.raises(ValueError, match="format must be one of"):
        export.export_model(trained_model, tmp_path / "model.onnx", format="tflite", overwrite=True)


def test_written_files_follow_the_umask(trained_model, tmp_path):
    previous = os.umask(0o022)
    try:
        path = export.export_model(trained_model, tmp_path / "model.pt2").path
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("format", export.FORMATS)
def test_prediction_with_the_exported_model_equals_prediction_with_pytorch(format, trained_model, exported, tmp_path):
    """One predictor, two engines: the same windows, faces and no-face marks, probabilities within the bound."""
    from fe_adapter.predict import Predictor
    from fe_adapter.predict.examples import face_video

    video = face_video(tmp_path / "face.mp4", frames=30, hidden=range(12, 22))
    path = exported[format].path
    with_pytorch = Predictor(trained_model, "cpu").predict_video(video, window=1.0, stride=0.5)
    exported = Predictor.from_exported(path).predict_video(video, window=1.0, stride=0.5)
    assert [(w.start, w.faces_found, w.no_face) for w in exported.windows] == \
        [(w.start, w.faces_found, w.no_face) for w in with_pytorch.windows]
    assert any(w.no_face for w in exported.windows) and not all(w.no_face for w in exported.windows)
    difference = max(abs(a.probabilities[name] - b.probabilities[name])
                     for a, b in zip(exported.windows, with_pytorch.windows, strict=True) for name in a.probabilities)
    assert difference <= export.TOLERANCE
    assert exported.top == with_pytorch.top


def test_a_file_that_is_not_an_export_is_refused_in_one_line(tmp_path, tiny_model_files):
    from fe_adapter.checkpoint import CheckpointError
    from fe_adapter.predict import Predictor

    adapters, _ = tiny_model_files
    for name, content in (("random.onnx", os.urandom(256)), ("empty.pt2", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=f"{name}: cannot read an exported model") as error:
            Predictor.from_exported(tmp_path / name)
        assert "\n" not in str(error.value)
    with pytest.raises(CheckpointError, match="not an exported model"):
        Predictor.from_exported(adapters)  # an adapter checkpoint


def test_the_export_command_writes_a_file_that_predict_runs_like_the_checkpoint(tiny_model_files, tmp_path, capsys):
    from fe_adapter import cli
    from fe_adapter.predict.examples import face_video

    adapters, backbone = tiny_model_files
    model = tmp_path / "deploy" / "model.onnx"
    assert cli.main(["export", str(adapters), "--backbone-checkpoint", str(backbone), "--out", str(model)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {model} (onnx" in printed and "clips (batch, 4, 3, 32, 32) float32" in printed
    assert "happy, sad, neutral" in printed and "largest probability difference" in printed

    video = face_video(tmp_path / "clip.mp4", frames=20)
    window = ["--window", "1s", "--stride", "0.5s"]
    assert cli.main(["predict", str(video), "--model", str(model), *window, "--out", str(tmp_path / "onnx")]) == 0
    assert cli.main(["predict", str(video), "--checkpoint", str(adapters), "--backbone-checkpoint", str(backbone),
                     *window, "--out", str(tmp_path / "torch")]) == 0
    exported, pytorch = (json.loads((tmp_path / engine / "clip.json").read_text()) for engine in ("onnx", "torch"))
    assert len(exported["windows"]) == len(pytorch["windows"]) >= 2
    for a, b in zip(exported["windows"], pytorch["windows"], strict=True):
        assert a["faces_found"] == b["faces_found"] and a["probabilities"].keys() == b["probabilities"].keys()
        assert max(abs(a["probabilities"][name] - b["probabilities"][name]) for name in a["probabilities"]) <= 1e-4


def test_the_export_command_refuses_in_one_line(tiny_model_files, tmp_path, capsys, monkeypatch):
    from fe_adapter import cli

    adapters, backbone = tiny_model_files
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(os.urandom(300))
    assert cli.main(["export", str(corrupt), "--backbone-checkpoint", str(backbone), "--out",
                     str(tmp_path / "model.onnx")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert cli.main(["export", str(adapters), "--out", str(tmp_path / "model.pt2")]) == 2  # no backbone weights
    assert "holds adapters and head only" in capsys.readouterr().err

    def mismatch(model, path, format=None, overwrite=False, seed=0):
        raise export.VerificationError("the exported model differs from PyTorch by 0.5 in a probability")

    monkeypatch.setattr(export, "export_model", mismatch)
    assert cli.main(["export", str(adapters), "--backbone-checkpoint", str(backbone), "--out",
                     str(tmp_path / "model.pt2")]) == 1
    assert "differs from PyTorch" in capsys.readouterr().err


def test_onnxruntime_uses_pytorchs_thread_count(monkeypatch, tmp_path):
    """The ONNX engine runs on as many cores as the PyTorch one (onnxruntime's own default is every core), so a
    user's torch.set_num_threads, and the engines benchmark, hold for both."""
    import onnxruntime

    seen = {}

    def session(path, options=None, providers=None):
        seen["threads"] = options.intra_op_num_threads if options is not None else None
        return None

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        export.load_exported(tmp_path / "model.onnx")
    finally:
        torch.set_num_threads(threads)
    assert seen["threads"] == 1

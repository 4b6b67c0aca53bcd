"""Export a trained model for deployment: ONNX (onnxruntime) or ``torch.export`` (.pt2), verified against PyTorch.

The exported graph is self-contained: it takes clips of RGB pixels scaled to 0..1, ``(B, T, 3, H, W)`` float32
with T and H = W fixed and the batch B free, normalises them with the mean and std the model was trained with,
and returns ``logits`` and ``probabilities`` (softmax), each ``(B, classes)``. The adapters are lowered to the
op's reference decomposition (linear, a grouped 1-D convolution, permutes: standard operators), so neither file
needs fe-adapter, its kernels or a custom-op registration to run. The class names, the input's shape, range and
statistics, and the model's settings are written into the file (``read_metadata``).

Every export is checked before the file is put in place: the exported model and the PyTorch model run on the
same random clips at batch sizes 1 and 3, and the largest difference of their probabilities must stay within
``TOLERANCE``; a failing export leaves no file behind (and an earlier file at the path as it was).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fe_adapter._io import atomic_write
from fe_adapter.vit import adapters

FORMATS: tuple[str, ...] = ("onnx", "pt2")
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}
#: Largest difference of any probability between the exported model and PyTorch that passes verification.
TOLERANCE = 1e-4
#: Batch sizes every export is verified at (the batch dimension is dynamic: any other works too).
VERIFY_BATCH_SIZES = (1, 3)
METADATA_FORMAT = "fe-adapter-export/1"
#: Where the metadata lives: a metadata_props key in ONNX, an extra file in a .pt2 archive.
METADATA_KEY = "fe_adapter"
_PT2_METADATA_FILE = "fe_adapter.json"
_EXPORT_EXTRA = "pip install 'fe-adapter[export]'"


class ExportError(RuntimeError):
    """An export that failed: an op the exporter cannot translate, or a missing exporter package. The message is
    one line naming what failed."""


class VerificationError(ExportError):
    """The exported model ran but its probabilities differ from PyTorch's by more than ``TOLERANCE``."""


@dataclass
class ExportResult:
    """What ``export_model`` wrote and how closely the exported model matched PyTorch."""

    path: Path
    format: str
    metadata: dict[str, Any]
    #: batch size -> largest absolute difference of the fp32 probabilities, exported vs PyTorch
    max_difference: dict[int, float] = field(default_factory=dict)


class _Deployable(nn.Module):
    """The classifier as deployed: 0..1 pixels in, normalised inside the graph; logits and probabilities out."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1))

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model((clips - self.mean) / self.std)
        return logits, logits.softmax(-1)


def export_metadata(model: nn.Module) -> dict[str, Any]:
    """What the exported file records: input layout and statistics, outputs, classes, the model's settings."""
    from fe_adapter import __version__
    from fe_adapter.checkpoint import model_config

    config = model_config(model)
    size, frames = config["input"]["size"], config["adapter"]["num_frames"]
    return {
        "format": METADATA_FORMAT,
        "fe_adapter_version": __version__,
        "input": {"name": "clips", "shape": ["batch", frames, 3, size, size], "dtype": "float32",
                  "layout": "(batch, frames, RGB channels, height, width)", "pixel_range": [0.0, 1.0],
                  "normalised_inside": True, "mean": config["input"]["mean"], "std": config["input"]["std"]},
        "outputs": {"logits": ["batch", len(config["class_names"])],
                    "probabilities": ["batch", len(config["class_names"])]},
        "class_names": config["class_names"],
        "num_frames": frames,
        "model": {key: config[key] for key in ("backbone", "backbone_weights", "backbone_kwargs", "adapter")
                  if key in config},
    }


def export_model(model: nn.Module, path: str | Path, format: str | None = None, overwrite: bool = False,
                 seed: int = 0) -> ExportResult:
    """Export ``model`` (a trained ``VideoClassifier``) to ``path`` as ONNX or .pt2, and verify it.

    ``format`` is "onnx" or "pt2" (default: from the suffix of ``path``). The model is exported in float32 on
    the CPU with its adapters lowered to the reference decomposition; the model itself is left as it was.
    The file is written only after the exported model matched PyTorch (``TOLERANCE`` on the probabilities at
    batch sizes 1 and 3, on clips drawn with ``seed``), and gets the mode any file the user creates gets. Raises
    FileExistsError for an existing ``path`` unless ``overwrite``, ValueError for an unknown format, ExportError
    when the export fails and VerificationError (an ExportError) when the exported model does not match.
    """
    path = Path(path)
    format = format or _format_from_suffix(path)
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    metadata = export_metadata(model)
    generator = torch.Generator().manual_seed(seed)
    shape = metadata["input"]["shape"][1:]
    example, *checks = (torch.rand(batch, *shape, generator=generator) for batch in (2, *VERIFY_BATCH_SIZES))
    with _float32_eval_on_cpu(model):
        deployable = _Deployable(model, metadata["input"]["mean"], metadata["input"]["std"]).eval()
        expected = [_probabilities(deployable, clips) for clips in checks]  # as the model runs in PyTorch
        differences: dict[int, float] = {}

        def write_and_verify(temporary: str) -> None:
            with _reference_adapters(model):
                _WRITERS[format](deployable, example, Path(temporary), metadata)
            run = load_exported(temporary, format)
            for clips, reference in zip(checks, expected, strict=True):
                differences[len(clips)] = float(np.abs(run(clips.numpy())[1] - reference).max())
            worst = max(differences.values())
            if not worst <= TOLERANCE:  # NaN fails too
                raise VerificationError(f"the exported model differs from PyTorch by {worst:.3g} in a probability (at "
                                        f"most {TOLERANCE:g} allowed): {path} not written")

        atomic_write(path, write_and_verify)
    return ExportResult(path, format, metadata, differences)


def _format_from_suffix(path: Path) -> str:
    for format, suffix in SUFFIXES.items():
        if path.suffix == suffix:
            return format
    raise ValueError(f"cannot tell the format from the file name {path.name}: use a .onnx or .pt2 suffix or give "
                     f"the format ({', '.join(FORMATS)})")


@contextlib.contextmanager
def _float32_eval_on_cpu(model: nn.Module) -> Iterator[None]:
    """Within: ``model`` in eval mode, float32, on the CPU; afterwards as it was (mode, device, each dtype)."""
    training, device = model.training, next(model.parameters()).device
    dtypes = {id(parameter): parameter.dtype for parameter in model.parameters()}
    model.eval().float().cpu()
    try:
        yield
    finally:
        for parameter in model.parameters():
            parameter.data = parameter.data.to(dtypes[id(parameter)])
        model.to(device).train(training)


@contextlib.contextmanager
def _reference_adapters(model: nn.Module) -> Iterator[None]:
    """Within: every adapter on the reference op (standard operators, no custom op in the graph)."""
    impls = [(adapter, adapter.impl) for adapter in adapters(model)]
    for adapter, _ in impls:
        adapter.impl = "torch"
    try:
        yield
    finally:
        for adapter, impl in impls:
            adapter.impl = impl


@torch.no_grad()
def _probabilities(deployable: nn.Module, clips: torch.Tensor) -> np.ndarray:
    return deployable(clips)[1].numpy()


def _batch_dimension() -> dict[str, dict[int, Any]]:
    return {"clips": {0: torch.export.Dim("batch", min=1, max=4096)}}


def _export_program(deployable: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    try:
        return torch.export.export(deployable, (example,), dynamic_shapes=_batch_dimension(), strict=False)
    except Exception as error:  # the exporter raises many types; the first line says what it could not trace
        raise ExportError(f"torch.export could not trace the model: {_first_line(error)}") from error


def _write_pt2(deployable: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any]) -> None:
    program = _export_program(deployable, example)
    torch.export.save(program, path, extra_files={_PT2_METADATA_FILE: json.dumps(metadata, allow_nan=False)})


def _write_onnx(deployable: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any]) -> None:
    try:
        import onnx  # noqa: F401  (the dynamo exporter needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ExportError(f"ONNX export needs the packages onnx and onnxscript ({_EXPORT_EXTRA}): {error}") from None
    program = _export_program(deployable, example)
    try:
        program = torch.onnx.export(program, dynamo=True, input_names=["clips"],
                                    output_names=["logits", "probabilities"], verbose=False)
    except Exception as error:
        raise ExportError(f"torch.onnx.export failed: {_first_line(error)}") from error
    program.model.metadata_props[METADATA_KEY] = json.dumps(metadata, allow_nan=False)
    program.save(str(path))


_WRITERS: dict[str, Callable[[nn.Module, torch.Tensor, Path, dict[str, Any]], None]] = {
    "onnx": _write_onnx, "pt2": _write_pt2}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata an exported file carries (``export_metadata``). Raises FileNotFoundError for a missing file
    and CheckpointError (one line) for a file that is no readable fe-adapter export."""
    from fe_adapter.checkpoint import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exported model not found: {path}")
    if path.suffix not in SUFFIXES.values():
        raise CheckpointError(f"{path} is not an exported model (.onnx or .pt2, written by fe-adapter export)")
    try:
        if path.suffix == ".onnx":
            import onnx

            model = onnx.load(str(path), load_external_data=False)
            text = next((prop.value for prop in model.metadata_props if prop.key == METADATA_KEY), None)
        else:
            files = {_PT2_METADATA_FILE: ""}
            torch.export.load(path, extra_files=files)
            text = files[_PT2_METADATA_FILE] or None
    except ImportError as error:
        raise ExportError(f"reading an ONNX model needs the package onnx ({_EXPORT_EXTRA}): {error}") from None
    except Exception as error:  # protobuf's DecodeError, zipfile's BadZipFile, torch's RuntimeError, ...
        raise CheckpointError(f"{path}: cannot read an exported model ({_first_line(error)}): the file is corrupt, "
                              "truncated or of another kind") from None
    if text is None:
        raise CheckpointError(f"{path} carries no fe-adapter metadata: it was not written by fe-adapter export")
    return json.loads(text)


def load_exported(path: str | Path, format: str | None = None) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A function from a (B, T, 3, H, W) float32 array of 0..1 pixels to (logits, probabilities), running an
    exported file: ONNX through onnxruntime (on the CPU), .pt2 through ``torch.export.load``. ``format``: "onnx"
    or "pt2" (default: from the suffix). onnxruntime gets PyTorch's thread count (``torch.set_num_threads``), so
    both engines of a predictor use the same number of cores."""
    path = Path(path)
    if (format or _format_from_suffix(path)) == "onnx":
        try:
            import onnxruntime
        except ImportError as error:
            raise ExportError(f"running an ONNX model needs onnxruntime ({_EXPORT_EXTRA}): {error}") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda clips: tuple(session.run(["logits", "probabilities"], {"clips": clips}))
    module = torch.export.load(path).module()

    def run(clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            logits, probabilities = module(torch.from_numpy(clips))
        return logits.numpy(), probabilities.numpy()

    return run

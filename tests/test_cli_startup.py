"""The command line answers at once: help, --version, usage errors and the refusals that need no model load
neither torch nor timm (nor PyAV, matplotlib, scikit-image, Triton); ``import fe_adapter`` and ``import fekernels``
put off what they can.

Every check runs in a fresh interpreter and looks at ``sys.modules`` (this process has torch loaded already).
The probes come from the parser itself: a command added to ``commands.COMMANDS`` gets its help, a
usage error for each of its options and the generic refusals (config, output folders) checked without a line
here; ``valid_arguments`` (tests/cli_probes.py) must name it (the test says so), which is where its own inputs go.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
from pathlib import Path

import pytest

import fe_adapter
from fe_adapter import cli, commands
from tests.cli_probes import HEAVY, run_probes, run_python, valid_arguments


def _commands() -> dict[str, argparse.ArgumentParser]:
    """The parser's own commands, name -> subparser."""
    action = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _usage_errors(name: str, parser: argparse.ArgumentParser, valid: list[str]) -> list[list[str]]:
    """An unknown option, the command alone when it has required arguments, and two bad values ("nonsense" and
    a negative number) for every option whose type or choices can refuse one."""
    probes = [[name, *valid, "--no-such-option"]]
    if any(action.required and action.nargs not in ("*", "?") for action in parser._actions):
        probes.append([name])
    for action in parser._actions:
        refuses = action.choices is not None or action.type not in (None, str, Path)
        if action.option_strings and action.nargs is None and refuses:
            probes += [[name, *valid, action.option_strings[0], bad] for bad in ("nonsense", "-1")]
    return probes


def test_help_version_and_usage_errors_load_no_heavy_module(tmp_path):
    parsers = _commands()
    assert list(parsers) == list(commands.COMMANDS) and len(parsers) >= 5
    helps = [["--help"], ["--version"], *([name, "--help"] for name in parsers)]
    errors = [[], ["no-such-command"], ["--no-such-option"]]
    for name, parser in parsers.items():
        errors += _usage_errors(name, parser, valid_arguments(name, tmp_path))
    results = run_probes(helps + errors, tmp_path)

    for result in results[:len(helps)]:
        assert result["status"] == 0, result
    top_help, version = results[0]["stdout"], results[1]["stdout"]
    assert version.strip() == f"fe-adapter {importlib.metadata.version('fe-adapter')}"
    for name in parsers:  # the header lists every command with its example, in plain text
        module = commands.load(name)
        assert re.search(rf"\n    {name}[ \n]", top_help) and module.EXAMPLE in top_help  # a long name: own line
    assert "`" not in top_help and "``" not in "".join(result["stdout"] for result in results[:len(helps)])
    for result in results[len(helps):]:  # argparse's line: "fe-adapter[ COMMAND]: error: ..."
        assert result["status"] == 2 and re.match(r"fe-adapter( [a-z-]+)?: error: ", result["error"]), result


def test_a_negative_looking_value_gets_the_options_own_message(tmp_path):
    """``--window -1s`` used to be argparse's "expected one argument"."""
    valid = valid_arguments("predict", tmp_path)
    results = run_probes([["predict", *valid, "--window", "-1s"], ["predict", *valid, "--stride", "-.5"],
                           ["predict", *valid, "--window", "-2"], ["demo", "--seed", "-1"]], tmp_path)
    assert [result["error"] for result in results] == [
        "fe-adapter predict: error: argument --window: expected a positive duration, got '-1s'",
        "fe-adapter predict: error: argument --stride: expected a positive duration, got '-.5'",
        "fe-adapter predict: error: argument --window: expected a positive duration, got '-2'",
        "fe-adapter demo: error: argument --seed: seed must be >= 0, got -1"]
    assert all(result["status"] == 2 for result in results)


def _generic_refusals(name: str, parser: argparse.ArgumentParser, valid: list[str],
                      folder: Path) -> list[tuple[list[str], str]]:
    """Refusals every command with a config, an --out or a run folder makes before it loads a model."""
    options = {option for action in parser._actions for option in action.option_strings}
    positional = {action.dest for action in parser._actions if not action.option_strings}
    a_file = folder / "a_file.txt"
    a_file.write_text("in the way")
    held = folder / "held"
    (held / "report").mkdir(parents=True, exist_ok=True)
    (held / "last.pt").write_bytes(b"")
    (held / "report" / "metrics.json").write_text("{}")
    broken = folder / "broken.yaml"
    broken.write_text("optim:\n  lr: [1,\n")
    refusals = []
    if "--config" in options:
        refusals += [([name, *valid, "--config", str(folder / "missing.yaml")], "config file not found"),
                     ([name, *valid, "--config", str(broken)], "not valid YAML at line")]
    if "overrides" in positional:
        refusals += [([name, *valid, "optim.lrr=1"], "unknown key optim.lrr; allowed keys in optim"),
                     ([name, *valid, "run.nope=1"], "unknown key run.nope")]
    if "--resume" in options:  # a command that trains into run.out_dir
        refusals += [([name, *valid, f"run.out_dir={held}"], f"run.out_dir {held} already holds files"),
                     ([name, *valid, f"run.out_dir={a_file / 'run'}"], f"{a_file} is a file, not a folder"),
                     ([name, *valid, "--resume", f"run.out_dir={folder / 'none'}"], "--resume: nothing to resume")]
    if "--out" in options:
        refusals += [([name, *valid, "--out", str(a_file / "out")], f"{a_file} is a file, not a folder")]
    return refusals


def _own_refusals(name: str, folder: Path) -> list[tuple[list[str], str]]:
    """The refusals particular to a command (inputs it reads, outputs it names)."""
    adapters = folder / "adapters.safetensors"
    empty = folder / "no_videos"
    (empty / "sub").mkdir(parents=True, exist_ok=True)
    (empty / "notes.txt").write_text("not a video")
    outputs = folder / "predicted"
    outputs.mkdir(exist_ok=True)
    (outputs / "clip.json").write_text("{}")
    foreign = folder / "thesis"
    foreign.mkdir(exist_ok=True)
    (foreign / "thesis.tex").write_text("mine")
    report = folder / "report"
    report.mkdir(exist_ok=True)
    (report / "metrics.json").write_text("{}")
    video = folder / "clip.mp4"
    photo = folder / "photo.jpg"
    photo.write_bytes(b"a raw photo (not read before the refusal)")
    earlier = folder / "earlier.onnx"
    earlier.write_bytes(b"an earlier export")
    return {
        "predict": [
            (["predict", str(folder / "missing.mp4"), "--checkpoint", str(adapters)],
             "missing.mp4: video file not found"),
            (["predict", str(empty), "--checkpoint", str(adapters)], f"{empty}: a folder without video files"),
            (["predict", str(video), "--checkpoint", str(adapters), "--out", str(outputs)],
             f"outputs already exist: {outputs / 'clip.json'}; pass --overwrite"),
            (["predict", str(video), "--checkpoint", str(folder / "none.safetensors")],
             "adapter checkpoint not found"),
            (["predict", str(video), "--checkpoint", str(adapters), "--backbone-checkpoint", str(folder / "none.pth")],
             "backbone weights file not found"),
            (["predict", str(video), "--model", str(folder / "none.onnx")], "exported model not found"),
            (["predict", str(video), "--model", str(adapters), "--pretrained"], "go with --checkpoint"),
            (["predict", str(video), "--model", str(adapters), "--device", "cuda"], "runs on the CPU"),
            (["predict", str(video), "--checkpoint", str(adapters), "--faces", "none", "--all-faces"],
             "--all-faces needs faces to find: it does not go with --faces none"),
            (["predict", str(video), "--checkpoint", str(adapters), "--detect-every", "0"],
             "argument --detect-every: expected >= 1, got 0"),
            (["predict", str(video), "--checkpoint", str(adapters), "--detector", "yolo"],
             "argument --detector: invalid choice: 'yolo'"),
        ],
        "export": [
            (["export", str(folder / "none.safetensors")], "adapter checkpoint not found"),
            (["export", str(adapters), "--backbone-checkpoint", str(folder / "none.pth")],
             "backbone weights file not found"),
            (["export", str(adapters), "--out", str(earlier)], f"{earlier} already exists; pass --overwrite"),
            (["export", str(adapters), "--out", str(folder / "model.tflite")], "cannot tell the format"),
            (["export", str(adapters), "--out", str(folder / "model.onnx"), "--format", "pt2"], "they must agree"),
        ],
        "eval": [(["eval", "--checkpoint", str(folder / "none.safetensors")], "adapter checkpoint not found"),
                 (["eval", "--checkpoint", str(adapters), "--out", str(report)], f"--out {report} already holds")],
        "cv": [(["cv", "--folds", "7"], "--folds: fold 7 does not exist"),
               (["cv", "--folds", "one"], "--folds takes fold numbers 1..5")],
        "demo": [(["demo", "--out", str(foreign)], "holds 'thesis.tex', which the demo does not write")],
        "train": [(["train", "--resume", "--overwrite"], "pass one of them")],
        "crop-faces": [(["crop-faces", str(folder / "missing.mp4"), str(folder / "faces")],
                        "missing.mp4: video file not found"),
                       (["crop-faces", str(video), str(folder / "a_file.txt" / "out")],
                        f"OUT {folder / 'a_file.txt' / 'out'}: cannot write there: {folder / 'a_file.txt'} is a file"),
                       (["crop-faces", str(video), str(folder / "faces"), "--fps", "0"], "expected a positive number"),
                       (["crop-faces", str(video), str(folder / "faces"), "--test-fraction", "1"],
                        "expected a fraction below 1"),
                       (["crop-faces", str(photo), str(folder / "a_file.txt" / "out")],
                        f"OUT {folder / 'a_file.txt' / 'out'}: cannot write there"),
                       (["crop-faces", str(photo), str(video), str(folder / "faces")],
                        "give videos or images, not both in one run")],
        "pretrain-image": [(["pretrain-image", "--resume", "--overwrite"], "pass one of them"),
                           (["pretrain-image", "data.num_frames=16"], "unknown key data.num_frames; allowed keys")],
        "predict-image": [(["predict-image", str(video), "--model", str(folder / "none.safetensors")],
                           "image model not found"),
                          (["predict-image", str(folder / "missing.png"), "--model", str(adapters)],
                           "missing.png: image not found"),
                          (["predict-image", str(video), "--model", str(adapters), "--top", "0"],
                           "--top must be >= 1")],
    }[name]


def test_refusals_that_need_no_model_load_no_heavy_module(tmp_path):
    """Missing inputs, existing or unwritable outputs, a config that does not parse, unknown keys: one line,
    exit status 2, before torch."""
    probes = []
    for name, parser in _commands().items():
        folder = tmp_path / name
        folder.mkdir()
        probes += _generic_refusals(name, parser, valid_arguments(name, folder), folder) + _own_refusals(name, folder)
    results = run_probes([argv for argv, _ in probes], tmp_path)
    for result, (argv, message) in zip(results, probes, strict=True):
        assert result["status"] == 2 and result["error"].startswith(f"fe-adapter {argv[0]}: error: "), result
        assert message in result["error"], result


_IMPORTS = '''
import json, sys
heavy = {heavy!r}
import fe_adapter, fe_adapter.cli, fe_adapter.data, fe_adapter.training, fe_adapter.predict, fe_adapter.commands
for name in fe_adapter.commands.COMMANDS:
    fe_adapter.commands.load(name)
print(json.dumps(sorted(name for name in heavy if name in sys.modules)))
'''


def test_import_fe_adapter_puts_off_the_heavy_modules(tmp_path):
    """(That ``from fe_adapter import create_model`` pulls what it needs: the test below.)"""
    finished = run_python(_IMPORTS.format(heavy=HEAVY), tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert json.loads(finished.stdout) == []


def test_every_public_name_is_importable():
    assert fe_adapter.__all__ == [
        "AdaptedBlock", "AdapterConfig", "CheckpointError", "ExportError", "FEAdapter", "PLACEMENTS",
        "ParameterReport", "PredictionError", "Predictor", "VideoClassifier", "VideoPrediction", "adapt", "adapters",
        "classifier_heads", "create_model", "data", "export_model", "faces", "load_adapters", "load_image_model",
        "load_model", "parameter_report", "predict", "pretrain_image", "read_adapter_config", "save_adapters",
        "save_image_model", "set_num_frames", "training"]
    from fe_adapter import create_model
    from fe_adapter.model import create_model as defined

    assert create_model is defined
    for package in (fe_adapter, fe_adapter.data, fe_adapter.training, fe_adapter.predict, fe_adapter.faces):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
        assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="No fe_adapter attribute no_such_name"):
        fe_adapter.no_such_name  # noqa: B018


_FEKERNELS = '''
import json, os, sys
os.environ["TRITON_INTERPRET"] = "1"  # the kernels on the CPU
import torch
import fekernels

loaded_at_import = "triton" in sys.modules
impls = list(fekernels.IMPLS)
torch.manual_seed(0)
x, w_down, w_conv, w_up = torch.randn(4, 5, 16), torch.randn(8, 16), torch.randn(8, 3), torch.randn(16, 8)

def op(x, impl):
    w = [weight.to(x.dtype) for weight in (w_down, w_conv, w_up)]
    return fekernels.fe_adapter(x, w[0], None, w[1], None, w[2], None, num_frames=2, num_prefix_tokens=1, impl=impl)

error = None
if "triton" in impls:  # the first call ever, inside a full-graph compile: no graph break for the lazy import
    compiled = torch.compile(lambda x: op(x, "triton"), fullgraph=True, backend="aot_eager")(x)
    exact = op(x.double(), "torch")
    error = (compiled.double() - exact).abs().max().item() / exact.abs().max().item()
try:
    import fekernels.triton_kernels
    kernels_import = True
except ImportError:
    kernels_import = False
print(json.dumps({"loaded_at_import": loaded_at_import, "impls": impls, "kernels_import": kernels_import,
                  "error": error}))
'''


def test_import_fekernels_loads_triton_only_when_a_kernel_runs(tmp_path):
    finished = run_python(_FEKERNELS, tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(finished.stdout)
    assert not result["loaded_at_import"]
    assert ("triton" in result["impls"]) == result["kernels_import"]  # IMPLS as when Triton was imported eagerly
    assert result["impls"][:2] == ["auto", "torch"]
    if result["error"] is not None:
        assert result["error"] < 1e-5

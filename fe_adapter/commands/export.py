"""``fe-adapter export``: a trained model as ONNX or torch.export (.pt2) for deployment, verified against PyTorch.

Before a model is loaded: the checkpoint files are looked for, the format is told from --format or the output's
suffix, an existing output is refused (unless --overwrite) and its folder tried for writing. Then the model is
rebuilt as predict rebuilds it, exported (``fe_adapter.export``), run on the same random clips as PyTorch at batch
sizes 1 and 3, and written only if every probability agrees within the tolerance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fe_adapter._io import check_writable, require_file
from fe_adapter.commands._start_up import imports

HELP = "export a trained model to ONNX or torch.export (.pt2), checked against PyTorch"
EXAMPLE = ("fe-adapter export runs/dfew/best.safetensors --backbone-checkpoint fer_vit.safetensors "
           "--out model.onnx")
FORMATS = ("onnx", "pt2")  # fe_adapter.export.FORMATS, here without importing torch
EXIT_STATUS = """exit status: 0 written and checked; 1 the exported model did not match PyTorch (nothing written);
2 nothing ran or the export failed (a bad option, a missing or unusable checkpoint, an output that exists
without --overwrite or cannot be written, an operator the exporter cannot translate)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXIT_STATUS
    parser.add_argument("checkpoint", type=Path, help="adapter checkpoint (.safetensors) of the trained model")
    parser.add_argument("--backbone-checkpoint", type=Path, help="the backbone's weights (.safetensors or .pth)")
    parser.add_argument("--pretrained", action="store_true", help="use timm's pretrained backbone weights")
    parser.add_argument("--out", type=Path, help="the file to write (default: the checkpoint's name with the "
                        "format's suffix, .onnx or .pt2, in the current folder)")
    parser.add_argument("--format", choices=FORMATS, help="onnx (onnxruntime; needs pip install "
                        "'fe-adapter[export]') or pt2 (torch.export.load); default: from --out's suffix, else onnx")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def _format(args: argparse.Namespace) -> str:
    """The format, from --format and --out's suffix (they must agree), else onnx."""
    from_suffix = {f".{format}": format for format in FORMATS}.get(args.out.suffix) if args.out else None
    if args.out is not None and args.format is None and from_suffix is None:
        raise ValueError(f"--out {args.out}: cannot tell the format from the suffix {args.out.suffix!r}; end it in "
                         ".onnx or .pt2, or give --format")
    if args.format is not None and from_suffix is not None and from_suffix != args.format:
        raise ValueError(f"--out {args.out} ends in {args.out.suffix} but --format is {args.format}: they must agree")
    return args.format or from_suffix or "onnx"


def run(args: argparse.Namespace) -> int:
    require_file(args.checkpoint, "adapter checkpoint")
    if args.backbone_checkpoint is not None:
        require_file(args.backbone_checkpoint, "backbone weights file")
    out = args.out
    if out is not None:
        check_writable(out.parent, f"--out {out}")
    format = _format(args)
    out = out or Path(f"{args.checkpoint.stem}.{format}")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    check_writable(out.parent, f"--out {out}")

    with imports():  # frozen in the program (fe_adapter.commands._start_up)
        from fe_adapter.checkpoint import load_model
        from fe_adapter.export import ExportError, VerificationError, export_model

    model = load_model(args.checkpoint, args.backbone_checkpoint, args.pretrained)
    try:
        result = export_model(model, out, format, overwrite=args.overwrite)
    except VerificationError as error:
        print(f"fe-adapter export: error: {error}", file=sys.stderr)
        return 1
    except ExportError as error:
        print(f"fe-adapter export: error: {error}", file=sys.stderr)
        return 2
    metadata = result.metadata
    shape = ", ".join(map(str, metadata["input"]["shape"]))
    checks = ", ".join(f"{difference:.1e} at batch {batch}" for batch, difference in result.max_difference.items())
    print(f"wrote {result.path} ({format}, {result.path.stat().st_size / 2**20:.1f} MB)")
    print(f"  input  clips ({shape}) float32, RGB pixels in 0..1, normalised inside with mean "
          f"{metadata['input']['mean']} and std {metadata['input']['std']}")
    print(f"  output logits and probabilities (batch, {len(metadata['class_names'])}): "
          f"{', '.join(metadata['class_names'])}")
    print(f"  checked against PyTorch: largest probability difference {checks}")
    return 0

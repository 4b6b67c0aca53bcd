"""``fe-adapter predict``: emotions over time in video files (docs/predict.md).

Before a model is loaded: folders are expanded to their videos, missing inputs reported, output names made,
existing outputs refused (unless --overwrite), every output folder tried for writing, the checkpoint files
looked for. Then each video is predicted, printed and written; a video that cannot be read or written gets one
line and the others go on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fe_adapter._io import check_writable, require_file
from fe_adapter.commands._options import device, fraction, positive_int, seconds
from fe_adapter.commands._start_up import imports
from fe_adapter.data.formats import VIDEO_SUFFIXES
from fe_adapter.predict.inputs import expand_inputs

if TYPE_CHECKING:
    from fe_adapter.predict.face_worker import FaceWorker

HELP = "emotions over time in video files"
EXAMPLE = ("fe-adapter predict clip.mp4 videos/ --checkpoint runs/dfew/best.safetensors --backbone-checkpoint "
           "fer_vit.safetensors --out predictions/")
EXIT_STATUS = """exit status: 0 every video predicted and written; 1 some were not (one line each on stderr; the
others are written); 2 none was, or nothing ran (a bad option, a missing or unusable checkpoint, outputs that
exist without --overwrite, an output folder that cannot be written); 3 all were, but in some no window had a face
in --min-face-fraction of its frames (no overall result)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXIT_STATUS
    parser.add_argument("videos", nargs="+", type=Path, help="video files, or folders: their video files "
                        f"({', '.join(VIDEO_SUFFIXES)}), also in sub-folders")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", type=Path, help="adapter checkpoint (.safetensors), with the backbone's "
                       "weights from --backbone-checkpoint or --pretrained")
    model.add_argument("--model", type=Path, help="a model written by fe-adapter export (.onnx, run on "
                       "onnxruntime, or .pt2), on the CPU")
    parser.add_argument("--backbone-checkpoint", type=Path, help="the backbone's weights (.safetensors or .pth)")
    parser.add_argument("--pretrained", action="store_true", help="use timm's pretrained backbone weights")
    parser.add_argument("--window", type=seconds, default=2.0, help="window length, e.g. 2s (default 2s)")
    parser.add_argument("--stride", type=seconds, default=0.5, help="window step, e.g. 0.5s (default 0.5s)")
    parser.add_argument("--out", type=Path, default=Path("predictions"), help="folder for JSON, CSV and PNG "
                        "(default predictions)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    parser.add_argument("--min-face-fraction", type=fraction, metavar="F",
                        help="a window whose face is detected in fewer than this share of its frames is marked "
                        "no-face and left out of the overall result (default 0.5)")
    faces = parser.add_argument_group("faces")
    faces.add_argument("--detector", choices=("mtcnn", "lbp"), default="mtcnn", help="face detector: mtcnn (five "
                       "landmarks, aligned crops; the default) or lbp (scikit-image's cascade, box crops)")
    faces.add_argument("--faces", choices=("detect", "none"), default="detect", help="none: the videos are face "
                       "crops already (the centre square of each frame is the face); default detect")
    faces.add_argument("--detect-every", type=positive_int, metavar="N", help="scan the whole frame for faces "
                       "every N video frames and follow them in between (default: 2 s of video for mtcnn, which "
                       "re-measures each face between scans; 0.4 s for lbp or with --all-faces; every 0.4 s while "
                       "no face is seen; 1: every frame)")
    faces.add_argument("--all-faces", action="store_true", help="a timeline for every person (JSON tracks, CSV "
                       "rows per person); by default the main face only (the person seen in the most frames)")
    parser.add_argument("--face-worker", action="store_true", help="find the faces in a second process, started "
                        "at once, while this one loads and runs the model: for machines with cores the model leaves "
                        "idle (on 2 cores a few percent faster, for ~700 MB more memory: docs/predict.md)")
    parser.add_argument("--device", type=device, default="auto", help="auto (CUDA when available), cpu, cuda, "
                        "cuda:N or mps (default auto); a --model file runs on the CPU")


def _error(line: str) -> None:
    print(f"fe-adapter predict: error: {line}", file=sys.stderr)


def _output_names(videos: list[Path], out: Path, overwrite: bool) -> list[str]:
    """The output name of each video, after refusing outputs that exist (unless ``overwrite``) and output folders
    where no file can be created."""
    from fe_adapter.predict.timeline import existing_outputs, output_names, output_paths  # numpy, not yet torch

    names = output_names(videos)
    existing = [] if overwrite else existing_outputs(out, names)
    if existing:
        shown = ", ".join(map(str, existing[:3])) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise FileExistsError(f"outputs already exist: {shown}; pass --overwrite to replace them or choose "
                              "another --out")
    for folder in sorted({path.parent for name in names for path in output_paths(out, name).values()}):
        check_writable(folder, f"--out {out}")
    return names


def run(args: argparse.Namespace) -> int:
    """Predict every video; exit status 0 when all were predicted and written, 2 when none was, 1 when some were
    not, 3 when all were but some had no window with a face (no overall result)."""
    videos, failed_inputs = expand_inputs(args.videos)
    for line in failed_inputs:  # at once, whatever stops the command next
        _error(line)
    names = _output_names(videos, args.out, args.overwrite)
    if args.model is not None:
        require_file(args.model, "exported model")
        if args.backbone_checkpoint is not None or args.pretrained:
            raise ValueError("--backbone-checkpoint and --pretrained go with --checkpoint: a --model file holds "
                             "its backbone")
        if args.device not in ("auto", "cpu"):
            raise ValueError(f"--device {args.device}: a --model file runs on the CPU (onnxruntime or torch.export); "
                             "use --checkpoint to predict on another device")
    else:
        require_file(args.checkpoint, "adapter checkpoint")
        if args.backbone_checkpoint is not None:
            require_file(args.backbone_checkpoint, "backbone weights file")
    if args.faces == "none" and args.all_faces:
        raise ValueError("--all-faces needs faces to find: it does not go with --faces none")
    if not videos:
        return 2
    worker = _face_worker(args, videos)
    try:
        return _predict(args, videos, names, len(failed_inputs), worker)
    finally:
        if worker is not None:
            worker.close()


def _face_worker(args: argparse.Namespace, videos: list[Path]) -> FaceWorker | None:
    """A ``FaceWorker`` for the videos, started before the model's libraries are imported, with the settings the
    checkpoint's header gives (frames per window, input side), with ``--face-worker`` (not for ``--model``)."""
    if args.model is not None or not args.face_worker:
        return None
    from fe_adapter.checkpoint_file import CheckpointError, read_adapter_config
    from fe_adapter.faces.align import MARGIN
    from fe_adapter.predict.face_items import FaceSettings
    from fe_adapter.predict.face_worker import FaceWorker

    try:
        config = read_adapter_config(args.checkpoint)
        num_frames, size = int(config["adapter"]["num_frames"]), int(config["input"]["size"])
    except (CheckpointError, KeyError, TypeError, ValueError):  # reported by the model's loading, in its turn
        return None
    detector = None if args.faces == "none" else args.detector
    return FaceWorker(videos, FaceSettings(num_frames, size, args.window, args.stride, detector, args.detect_every,
                                           MARGIN, args.all_faces))


def _predict(args: argparse.Namespace, videos: list[Path], names: list[str], failed_inputs: int,
             worker: FaceWorker | None) -> int:
    with imports():  # frozen in the program (fe_adapter.commands._start_up)
        from fe_adapter.device import resolve_device
        from fe_adapter.predict.predictor import PredictionError, Predictor
        from fe_adapter.predict.results import MIN_FACE_FRACTION, prediction_summary
        from fe_adapter.predict.timeline import write_prediction

    faces = {"detector": None if args.faces == "none" else args.detector, "detect_every": args.detect_every}
    if args.model is not None:
        predictor = Predictor.from_exported(args.model, **faces)
    else:
        target = resolve_device(args.device, "--device")
        predictor = Predictor.from_checkpoint(args.checkpoint, str(target), args.backbone_checkpoint, args.pretrained,
                                              **faces)
    min_face_fraction = MIN_FACE_FRACTION if args.min_face_fraction is None else args.min_face_fraction
    written = faceless = 0
    for video, name in zip(videos, names, strict=True):
        try:
            prediction = predictor.predict_video(video, args.window, args.stride, min_face_fraction=min_face_fraction,
                                                 all_faces=args.all_faces, worker=worker)
        except PredictionError as error:
            _error(str(error))
            continue
        print(prediction_summary(prediction, str(video)))
        try:
            paths = write_prediction(prediction, args.out, name, overwrite=args.overwrite)
        except OSError as error:  # a full disk, a folder made read-only meanwhile: the other videos go on
            _error(f"{video}: its results could not be written: {error}")
            continue
        print(f"  wrote {paths['json']}, {paths['csv']}, {paths['png']}")
        written += 1
        faceless += prediction.top is None
    if written == 0:
        return 2
    return 1 if written < len(videos) + failed_inputs else 3 if faceless else 0

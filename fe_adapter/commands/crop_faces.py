"""``fe-adapter crop-faces``: raw videos to training data (aligned face frames and list files; docs/data.md).

Before any work: folders are expanded to their videos, missing inputs reported, and OUT tried for writing. Then
every face of every video is tracked and aligned into ``OUT/clips/<video>/track<id>/``; a video done by an earlier
run (same file, same settings) is skipped, a half-done one redone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fe_adapter._io import check_writable
from fe_adapter.commands import _options
from fe_adapter.data.formats import VIDEO_SUFFIXES
from fe_adapter.predict.inputs import expand_inputs

HELP = "raw videos to training data: aligned face frames per person, and list files for train"
EXAMPLE = "fe-adapter crop-faces raw/ data/faces/ --fps 10"
EXIT_STATUS = """exit status: 0 every video was cropped (now or by an earlier run); 1 some were not (unreadable,
missing: one line each on stderr; the others are cropped and listed); 2 none was, or nothing ran (a bad option, an
OUT that cannot be written); 3 all were read, but some gave no face clip (named on stderr)"""

#: The detectors ``fe_adapter.faces.make_detector`` knows (checked there too; here for the help, without numpy).
DETECTOR_NAMES = ("mtcnn", "lbp")


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value




def _test_fraction(text: str) -> float:
    value = _options.fraction(text)
    if value == 1.0:
        raise argparse.ArgumentTypeError("expected a fraction below 1 (some videos must be left for training), "
                                         f"got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXIT_STATUS
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEOS", help="video files, or folders: their "
                        f"video files ({', '.join(VIDEO_SUFFIXES)}), also in sub-folders")
    parser.add_argument("out", type=Path, metavar="OUT", help="output folder (created; a second run into it "
                        "resumes)")
    parser.add_argument("--label", help="the class of every video (default: the name of the folder each video is "
                        "in: raw/<class>/<video>)")
    parser.add_argument("--fps", type=_positive_number, default=10.0, help="frames kept per second of video "
                        "(default 10; all frames of a video with fewer)")
    parser.add_argument("--size", type=_options.at_least(16), default=224,
                        help="side of the aligned face crops, pixels (default 224)")
    parser.add_argument("--detector", choices=DETECTOR_NAMES, default="mtcnn", help="face detector (default mtcnn)")
    parser.add_argument("--min-frames", type=_options.positive_int, default=8,
                        help="a person seen in fewer kept frames is left out (default 8)")
    parser.add_argument("--test-fraction", type=_test_fraction, default=0.2, metavar="F", help="share of each "
                        "class's videos listed in test.csv, the rest in train.csv (default 0.2; at least one video "
                        "of each class stays for training)")


def _error(line: str) -> None:
    print(f"fe-adapter crop-faces: error: {line}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Crop every video; exit status as ``EXIT_STATUS`` says."""
    videos, failed_inputs = expand_inputs(args.videos)
    for line in failed_inputs:
        _error(line)
    check_writable(args.out, f"OUT {args.out}")
    if not videos:
        return 2

    from fe_adapter.faces.crop_videos import CropSettings, VideoJob, crop_videos
    from fe_adapter.predict.timeline import output_names

    jobs = [VideoJob(video, name, args.label or video.absolute().parent.name)
            for video, name in zip(videos, output_names(videos), strict=True)]
    settings = CropSettings(fps=args.fps, size=args.size, detector=args.detector, min_frames=args.min_frames)
    report = crop_videos(jobs, args.out, settings, args.test_fraction)
    for line in report.failed:
        _error(line)
    for name in report.faceless:
        _error(f"{name}: no face seen in {settings.min_frames} or more kept frames: no clip")
    done = len(report.cropped) + len(report.skipped)
    print(f"{done} of {len(videos) + len(failed_inputs)} videos cropped ({len(report.skipped)} by an earlier run): "
          f"{report.clips} clips in {args.out / 'clips'}")
    if report.clips:
        classes = Path(report.lists["classes.txt"]).read_text().split()
        lists = report.lists
        print(f"  wrote {lists['manifest.csv']}, {lists['train.csv']}, {lists['test.csv']}; train on them with")
        print(f"  fe-adapter train data.dataset=list data.train_list={lists['train.csv']} "
              f"data.test_list={lists['test.csv']} 'data.class_names={json.dumps(classes, allow_nan=False)}' ...")
    if done == 0:
        return 2
    if report.failed or failed_inputs:
        return 1
    return 3 if report.faceless else 0

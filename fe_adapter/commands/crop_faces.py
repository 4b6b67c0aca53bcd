"""``fe-adapter crop-faces``: raw videos or photos to training data (aligned faces and list files; docs/data.md).

Before any work: folders are expanded to their videos (or images), missing inputs reported, and OUT tried for
writing. Videos: every face of every video is tracked and aligned into ``OUT/clips/<video>/track<id>/``; a video
done by an earlier run (same file, same settings) is skipped, a half-done one redone. Images: the main face of
each is aligned into ``OUT/<its path under the inputs>`` (``fe_adapter.faces.crop_images``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fe_adapter._io import check_writable
from fe_adapter.commands import _options
from fe_adapter.commands._start_up import imports
from fe_adapter.data.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from fe_adapter.predict.inputs import expand_inputs

HELP = ("raw videos (or face photos) to training data: aligned face frames per person (the main face of each "
        "photo), and list files for train (pretrain-image)")
EXAMPLE = "fe-adapter crop-faces raw/ data/faces/ --fps 10"
EXIT_STATUS = """exit status: 0 every video (image) was cropped (now or by an earlier run); 1 some were not
(unreadable, missing: one line each on stderr; the others are cropped and listed); 2 none was, or nothing ran (a bad
option, an OUT that cannot be written, videos and images mixed); 3 all were read, but some gave no face clip (no
face: named on stderr and, for images, in OUT/skipped.csv)"""

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
                        f"video files ({', '.join(VIDEO_SUFFIXES)}), also in sub-folders; or image files "
                        f"({', '.join(IMAGE_SUFFIXES)}) or folders of them: the main face of each image is aligned "
                        "into OUT with the same relative path")
    parser.add_argument("out", type=Path, metavar="OUT", help="output folder (created; a second run into it "
                        "resumes)")
    parser.add_argument("--label", help="the class of every video or image (default: the name of the folder each "
                        "is in: raw/<class>/<video>)")
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


def _warning(line: str) -> None:
    print(f"fe-adapter crop-faces: warning: {line}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Crop every video (or image); exit status as ``EXIT_STATUS`` says."""
    images, video_inputs = _image_inputs(args.videos)
    if images and video_inputs:
        _error(f"give videos or images, not both in one run: images from {', '.join(map(str, images))}, videos "
               f"from {', '.join(map(str, video_inputs))}")
        return 2
    if images:
        missing = [path for path in images if not path.exists()]
        for path in missing:
            _error(f"{path}: image file not found")
        check_writable(args.out, f"OUT {args.out}")
        found = [path for path in images if path.exists()]
        if not found:
            return 2
        status = _run_images(args, found)
        return 1 if missing and status != 2 else status
    videos, failed_inputs = expand_inputs(args.videos)
    for line in failed_inputs:
        _error(line)
    check_writable(args.out, f"OUT {args.out}")
    if not videos:
        return 2

    with imports():  # frozen in the program (fe_adapter.commands._start_up)
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


def _image_inputs(inputs: list[Path]) -> tuple[list[Path], list[Path]]:
    """The inputs that give images (image files; folders with images and no videos) and those that do not."""
    from fe_adapter.faces.crop_images import images_in, is_image
    from fe_adapter.predict.inputs import videos_in

    images, others = [], []
    for path in inputs:
        gives_images = is_image(path) if not path.is_dir() else bool(images_in(path)) and not videos_in(path)
        (images if gives_images else others).append(path)
    return images, others


def _run_images(args: argparse.Namespace, inputs: list[Path]) -> int:
    """Align the main face of every image; exit status as ``EXIT_STATUS`` says."""
    with imports():  # frozen in the program (fe_adapter.commands._start_up)
        from fe_adapter.faces.crop_images import ImageCropSettings, crop_images, image_root, images_in

    images, seen = [], set()
    for path in inputs:
        for image in images_in(path) if path.is_dir() else [path]:
            if image.absolute() not in seen:
                seen.add(image.absolute())
                images.append(image)
    settings = ImageCropSettings(size=args.size, detector=args.detector)
    report = crop_images(images, image_root(inputs), args.out, settings, args.label, args.test_fraction)
    for line in report.failed:
        _error(line)
    for name in report.faceless:
        _error(f"{name}: no face found: skipped")
    for label in report.untested:
        _warning(f"class {label!r} has too few images to hold one out at --test-fraction "
               f"{args.test_fraction:g}: none in {args.out / 'test.csv'}, so its test recall will be missing")
    done = report.cropped + report.skipped
    print(f"{done} of {len(images)} images cropped ({report.skipped} by an earlier run) into {args.out}; "
          f"{len(report.faceless)} without a face, {len(report.failed)} unreadable (listed in "
          f"{report.lists['skipped.csv']})")
    if done:
        classes = Path(report.lists["classes.txt"]).read_text().split()
        lists = report.lists
        print(f"  wrote {lists['manifest.csv']}, {lists['train.csv']}, {lists['test.csv']} (path,label); pretrain "
              "on them with")
        print(f"  fe-adapter pretrain-image data.dataset=image_list data.train_split={lists['train.csv']} "
              f"data.test_split={lists['test.csv']} 'data.class_names={json.dumps(classes, allow_nan=False)}' ...")
        print(f"  (or data.dataset=image_folder data.root={args.out} when the inputs were <split>/<class>/ folders)")
    if done == 0:
        return 2
    if report.failed:
        return 1
    return 3 if report.faceless else 0

"""Recall and false positives of each face detector on videos of a real face whose true boxes are known.

    python scripts/face_detection_eval.py                    # both detectors; results in benchmarks/results/
    python scripts/face_detection_eval.py --seconds 4 --every 5 --detectors lbp   # a quick look

The videos come from ``benchmarks.face_videos`` (the astronaut photo moving, zooming, tilting up to 25 degrees,
leaving the frame, two faces crossing; 1280x720, 25 fps, h264; cached in ``--media``). Every ``--every``-th frame is
decoded and given to ``make_detector(name)`` with its defaults, as ``fe-adapter predict`` and ``crop-faces`` use it.

Matching, per frame: detections and true faces are paired one to one (the Hungarian assignment on 1 - IoU) and a
pair counts when its IoU is at least ``--iou`` (0.5, as WIDER FACE and FDDB score). A true face counts for recall
when at least 80% of its box is inside the frame; one further out (a face leaving the picture) is neither a miss
when undetected nor a false positive when detected. A detection that pairs with no true face is a false positive.
Detection time is wall time per frame on this machine, under its load (recorded).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.face_videos import FaceVideo, TrueFace, box_iou, write_face_video  # noqa: E402
from benchmarks.timing import cpu_name  # noqa: E402
from fe_adapter._json import write_json  # noqa: E402

SCENARIOS = ("moving", "zooming", "rotating", "leaving", "crossing")
#: A true face with less of its box inside the frame than this is optional: neither missed nor a false positive.
REQUIRED_VISIBLE = 0.8


def match(truth: list[TrueFace], boxes: list[tuple[float, float, float, float]], min_iou: float) -> dict:
    """One frame: true faces found (of those required), missed, detections that are false positives, and the IoU
    of each counted pair."""
    from scipy.optimize import linear_sum_assignment

    pairs: list[tuple[int, int]] = []
    if truth and boxes:
        overlap = np.array([[box_iou(face.box, box) for box in boxes] for face in truth])
        rows, columns = linear_sum_assignment(-overlap)
        pairs = [(row, column) for row, column in zip(rows, columns, strict=True) if overlap[row, column] >= min_iou]
    paired_truth = {row: column for row, column in pairs}
    paired_boxes = {column for _, column in pairs}
    required = [index for index, face in enumerate(truth) if face.visible >= REQUIRED_VISIBLE]
    return {"required": len(required), "found": sum(index in paired_truth for index in required),
            "false_positives": len(boxes) - len(paired_boxes),
            "ious": [box_iou(truth[row].box, boxes[column]) for row, column in pairs
                     if truth[row].visible >= REQUIRED_VISIBLE]}


def evaluate(video: FaceVideo, detector, every: int, min_iou: float) -> dict:
    """Detect in every ``every``-th frame of ``video``; recall, false positives and time."""
    from fe_adapter.data.readers import VideoReader

    totals = {"frames": 0, "required": 0, "found": 0, "false_positives": 0, "frames_with_false_positives": 0}
    ious, seconds = [], 0.0
    with VideoReader(video.path) as reader:
        for index, frame in reader.frames(range(0, reader.frame_count, every)):
            image = frame.to_ndarray(format="rgb24")
            started = time.perf_counter()
            faces = detector.detect(image)
            seconds += time.perf_counter() - started
            result = match(video.faces[index], [face.box for face in faces], min_iou)
            totals["frames"] += 1
            for key in ("required", "found", "false_positives"):
                totals[key] += result[key]
            totals["frames_with_false_positives"] += result["false_positives"] > 0
            ious += result["ious"]
    return {**totals, "recall": totals["found"] / max(1, totals["required"]),
            "false_positives_per_frame": totals["false_positives"] / max(1, totals["frames"]),
            "mean_iou": float(np.mean(ious)) if ious else None, "ms_per_frame": 1000 * seconds / totals["frames"]}


def table(rows: list[dict]) -> str:
    lines = ["| detector | video | frames | faces to find | recall | false positives (frames with any) | mean IoU | "
             "ms per frame |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        iou = "-" if row["mean_iou"] is None else f"{row['mean_iou']:.2f}"
        lines.append(f"| {row['detector']} | {row['scenario']} | {row['frames']} | {row['required']} | "
                     f"{100 * row['recall']:.1f}% | {row['false_positives']} ({row['frames_with_false_positives']}) | "
                     f"{iou} | {row['ms_per_frame']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", nargs="+", default=["mtcnn", "lbp"])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each video (default 20)")
    parser.add_argument("--every", type=int, default=5, help="detect in every N-th frame (default 5: 5 a second)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU for a detection to count (default 0.5)")
    parser.add_argument("--media", type=Path, default=Path("/tmp/fe-adapter-face-videos"), help="video cache")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)

    import torch

    from benchmarks.face_videos import face_video
    from fe_adapter.faces import make_detector

    videos = []
    for scenario in SCENARIOS:
        path = args.media / f"{scenario}-{args.seconds:g}s-1280x720.mp4"
        videos.append(face_video(path, scenario, round(args.seconds * 25), 25, 1280, 720) if path.is_file()
                      else write_face_video(path, scenario, args.seconds))
    load_before = os.getloadavg()
    rows = []
    for name in args.detectors:
        detector = make_detector(name)
        for video in videos:
            row = {"detector": name, "scenario": video.scenario, **evaluate(video, detector, args.every, args.iou)}
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
        found = [row for row in rows if row["detector"] == name]
        rows.append({"detector": name, "scenario": "all", **_total(found)})
    record = {"command": " ".join(["python scripts/face_detection_eval.py", *(argv or sys.argv[1:])]),
              "date": date.today().isoformat(), "iou": args.iou, "required_visible": REQUIRED_VISIBLE,
              "seconds_per_video": args.seconds, "every": args.every,
              "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "load_average_before": load_before, "load_average_after": os.getloadavg(),
                          "python": platform.python_version(), "torch": torch.__version__,
                          "facenet_pytorch": _version("facenet-pytorch"), "scikit_image": _version("scikit-image")},
              "rows": rows}
    stem = f"face-detection-{cpu_name().split()[0].lower()}-{date.today().isoformat()}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{stem}.json", record)
    machine = record["machine"]
    (args.out / f"{stem}.md").write_text(
        f"# Face detection on the generated videos, {record['date']}\n\n`{record['command']}` on {machine['cpu']} "
        f"({machine['cores']} cores, torch {machine['torch']} with {machine['torch_threads']} threads, facenet-pytorch "
        f"{machine['facenet_pytorch']}, scikit-image {machine['scikit_image']}); load average (1 min) "
        f"{load_before[0]:.1f} before, {machine['load_average_after'][0]:.1f} after: the machine was shared, so the "
        f"times are slower than on an idle one. Every {args.every}th frame of {args.seconds:g}-s 1280x720 videos; a "
        f"detection counts at IoU >= {args.iou}; faces with less than {REQUIRED_VISIBLE:.0%} of their box in the "
        f"frame are optional.\n\n{table(rows)}\n")
    print(table(rows))
    return 0


def _total(rows: list[dict]) -> dict:
    totals = {key: sum(row[key] for row in rows) for key in ("frames", "required", "found", "false_positives",
                                                              "frames_with_false_positives")}
    weights = [row["found"] for row in rows if row["mean_iou"] is not None]
    ious = [row["mean_iou"] for row in rows if row["mean_iou"] is not None]
    return {**totals, "recall": totals["found"] / max(1, totals["required"]),
            "false_positives_per_frame": totals["false_positives"] / max(1, totals["frames"]),
            "mean_iou": float(np.average(ious, weights=weights)) if sum(weights) else None,
            "ms_per_frame": sum(row["ms_per_frame"] * row["frames"] for row in rows) / max(1, totals["frames"])}


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())

"""Raw videos to training data: aligned face frames in DFEW-style folders, and list files ``fe-adapter train`` reads.

Each video is decoded once, in order, keeping only the frames at ``fps`` a second; every face in them is tracked
(``FaceTracker``: one id per person) and aligned (``align_face``, as predict aligns), and each track's frames go
to their own folder ``<out>/clips/<video name>/track<id>/00001.jpg ...`` as they come (nothing is held in memory
beyond the current frame). Tracks seen in fewer than ``min_frames`` frames are dropped. A video is finished when
its record ``<out>/clips/<video name>/crop.json`` is written, last: a later run skips a video whose record matches
(same file size, same settings) and redoes one without it (a run killed half-way) from scratch. Then the list
files are written from the records of the videos of this run: ``manifest.csv`` (every clip), ``train.csv`` and
``test.csv`` (split by video, so that the tracks of one video never fall on both sides) and ``classes.txt``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fe_adapter._io import atomic_write
from fe_adapter._json import to_json
from fe_adapter.data.formats import UnreadableClip
from fe_adapter.faces.align import MARGIN

#: Files in the output folder.
MANIFEST, TRAIN_LIST, TEST_LIST, CLASSES = "manifest.csv", "train.csv", "test.csv", "classes.txt"
CLIPS = "clips"
RECORD = "crop.json"  # in each video's folder, written when the video is done
RECORD_VERSION = 1


@dataclass(frozen=True)
class CropSettings:
    """How frames are sampled and faces cropped; a video cropped with other settings is cropped again.

    ``fps``: frames kept per second of video (all frames when the video has fewer). ``size``: side of the aligned
    crops, pixels. ``margin``: ``align_face``'s margin. ``detector``: ``make_detector``'s name. ``min_frames``: a
    track seen in fewer frames is dropped. ``quality``: JPEG quality.
    """

    fps: float = 10.0
    size: int = 224
    margin: float = MARGIN
    detector: str = "mtcnn"
    min_frames: int = 8
    quality: int = 95


@dataclass(frozen=True)
class VideoJob:
    """One video to crop: its file, the name of its folder under ``clips/`` and its class."""

    path: Path
    name: str
    label: str


@dataclass
class CropReport:
    """What a run did: videos cropped now, skipped (done by an earlier run), failed (one line each), without any
    face track, and the list files written."""

    cropped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    faceless: list[str] = field(default_factory=list)
    clips: int = 0
    lists: dict[str, Path] = field(default_factory=dict)


def sampled_indices(frame_count: int, video_fps: float, fps: float) -> list[int]:
    """The frames nearest to every 1/``fps`` seconds of a video of ``frame_count`` frames at ``video_fps`` (every
    frame when ``fps`` >= ``video_fps``), ascending and distinct."""
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if fps >= video_fps:
        return list(range(frame_count))
    count = math.ceil(frame_count * fps / video_fps - 1e-9)
    return sorted({min(frame_count - 1, round(k * video_fps / fps)) for k in range(count)})


def crop_videos(jobs: Sequence[VideoJob], out: str | Path, settings: CropSettings = CropSettings(),
                test_fraction: float = 0.2, progress: bool | None = None) -> CropReport:
    """Crop the faces of every video into ``out`` (see the module docstring) and write the list files.

    A video that cannot be read is reported in ``CropReport.failed`` (its partial folder removed) and the others
    go on. ``progress``: tqdm bars on stderr (default: when stderr is a terminal).
    """
    from tqdm import tqdm

    from fe_adapter.faces import make_detector

    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    out = Path(out)
    show = sys.stderr.isatty() if progress is None else progress
    detector = None  # made on the first video that needs it: a run that skips everything loads no model
    report = CropReport()
    records = []
    with tqdm(jobs, unit="video", desc="crop-faces", disable=not show, file=sys.stderr, dynamic_ncols=True) as bar:
        for job in bar:
            folder = out / CLIPS / job.name
            record = _finished_record(folder, job, settings)
            if record is not None:
                report.skipped.append(job.name)
            else:
                detector = detector or make_detector(settings.detector)
                try:
                    record = _crop_video(job, folder, settings, detector, show)
                except (UnreadableClip, OSError) as error:  # one bad video (or a write that failed) stops no other
                    shutil.rmtree(folder, ignore_errors=True)
                    report.failed.append(str(error) if isinstance(error, UnreadableClip) else f"{job.path}: {error}")
                    continue
                report.cropped.append(job.name)
            if not record["tracks"]:
                report.faceless.append(job.name)
            records.append(record)
    report.clips = sum(len(record["tracks"]) for record in records)
    report.lists = write_lists(out, records, test_fraction)
    return report


def _source(job: VideoJob) -> dict:
    return {"name": job.name, "video": str(job.path), "bytes": job.path.stat().st_size, "label": job.label}


def _finished_record(folder: Path, job: VideoJob, settings: CropSettings) -> dict | None:
    """The record of an earlier run that cropped this video with these settings, or None (then the folder, if
    any, is a half-done or outdated crop and is removed)."""
    import json

    path = folder / RECORD
    try:
        record = json.loads(path.read_text())
        same = (record.get("version") == RECORD_VERSION and record.get("settings") == asdict(settings)
                and all(record.get(key) == value for key, value in _source(job).items() if key != "video"))
    except (OSError, ValueError):
        same = False
    if same:
        return record
    shutil.rmtree(folder, ignore_errors=True)
    return None


def _crop_video(job: VideoJob, folder: Path, settings: CropSettings, detector, show: bool) -> dict:
    """Track and align the faces of one video into ``folder``; its record, written last."""
    from PIL import Image
    from tqdm import tqdm

    from fe_adapter.data.readers import VideoReader
    from fe_adapter.faces import FaceTracker, align_face

    folder.mkdir(parents=True, exist_ok=True)
    written: dict[int, int] = {}  # track id -> frames written
    times: dict[int, list[float]] = {}  # track id -> [first, last] second
    with VideoReader(job.path) as reader:
        indices = sampled_indices(reader.frame_count, reader.fps, settings.fps)
        tracker = FaceTracker(detector)
        with tqdm(total=len(indices), unit="frame", desc=job.name, leave=False, disable=not show, file=sys.stderr,
                  dynamic_ncols=True) as bar:
            for index, frame in reader.frames(indices):
                image = frame.to_ndarray(format="rgb24")
                for tracked in tracker.update(image, index):
                    if not tracked.seen:  # a gap being bridged: the box is stale, the crop would not be the face
                        continue
                    track = tracked.track_id
                    written[track] = written.get(track, 0) + 1
                    track_folder = folder / f"track{track}"
                    track_folder.mkdir(exist_ok=True)
                    crop = align_face(image, tracked.face, settings.size, settings.margin)
                    Image.fromarray(crop).save(track_folder / f"{written[track]:05d}.jpg", quality=settings.quality)
                    times.setdefault(track, [index / reader.fps, 0.0])[1] = index / reader.fps
                bar.update()
        fps = reader.fps
    tracks = []
    for track, frames in sorted(written.items()):
        if frames < settings.min_frames:
            shutil.rmtree(folder / f"track{track}")
            continue
        tracks.append({"folder": f"track{track}", "frames": frames, "start_s": round(times[track][0], 3),
                       "end_s": round(times[track][1], 3)})
    record = {"version": RECORD_VERSION, **_source(job), "video_fps": fps, "frames_examined": len(indices),
              "settings": asdict(settings), "tracks": tracks}
    atomic_write(folder / RECORD, lambda temporary: Path(temporary).write_text(to_json(record) + "\n"))
    return record


def _test_videos(records: list[dict], test_fraction: float) -> set[str]:
    """The videos (by their clip folder) that go to the test list: per class, ``test_fraction`` of the videos that
    gave clips (rounded), at least one left for training, chosen by a hash of their names: the same videos give the
    same split on every run."""
    by_label: dict[str, list[str]] = {}
    for record in records:
        if record["tracks"]:
            by_label.setdefault(record["label"], []).append(record["name"])
    return held_out(by_label, test_fraction)


def held_out(by_label: dict[str, list[str]], test_fraction: float) -> set[str]:
    """The names (of videos, or images) for the test list: per class, ``test_fraction`` of its names (rounded), at
    least one left for training, chosen by a hash of the names: the same names give the same split on every run."""
    chosen: set[str] = set()
    for names in by_label.values():
        count = min(len(names) - 1, round(test_fraction * len(names)))
        ranked = sorted(names, key=lambda name: hashlib.sha256(name.encode()).hexdigest())
        chosen.update(ranked[:count])
    return chosen


def _list_text(rows: list[tuple[str, int, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "num_frames", "label"])
    writer.writerows(rows)
    return buffer.getvalue()


def write_lists(out: str | Path, records: list[dict], test_fraction: float) -> dict[str, Path]:
    """Write ``manifest.csv`` (every clip), ``train.csv``, ``test.csv`` and ``classes.txt`` (the class names, one
    a line, sorted) into ``out``; lines ``path,num_frames,label`` with paths relative to ``out``."""
    out = Path(out)
    test = _test_videos(records, test_fraction)
    rows: dict[str, list[tuple[str, int, str]]] = {MANIFEST: [], TRAIN_LIST: [], TEST_LIST: []}
    for record in records:
        side = TEST_LIST if record["name"] in test else TRAIN_LIST
        for track in record["tracks"]:
            row = (f"{CLIPS}/{record['name']}/{track['folder']}", track["frames"], record["label"])
            rows[MANIFEST].append(row)
            rows[side].append(row)
    paths = {}
    for name, lines in rows.items():
        paths[name] = atomic_write(out / name, lambda temporary, lines=lines: Path(temporary).write_text(
            _list_text(lines)))
    classes = "".join(f"{label}\n" for label in sorted({record["label"] for record in records if record["tracks"]}))
    paths[CLASSES] = atomic_write(out / CLASSES, lambda temporary: Path(temporary).write_text(classes))
    return paths

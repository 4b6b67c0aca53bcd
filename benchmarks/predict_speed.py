"""How much faster than real time ``fe-adapter predict`` runs: seconds of video per second of wall time of the whole
command (a fresh process: start-up, model loading, decoding, faces, model, outputs), per face detector.

    python -m benchmarks.predict_speed                    # demo-size model on 60 s, ViT-B on 10 s; benchmarks/results/
    python -m benchmarks.predict_speed --models demo --detectors mtcnn   # a quicker look

The video is ``benchmarks.face_videos``'s "tour" (the astronaut photo moving, zooming, tilting, leaving the frame:
15 s each), 1280x720 at 25 fps, h264, cached in ``--media``. The models have random weights (time does not depend
on them): the demo's image model size (``fe_adapter.demo``: a 4-block ViT of width 64 at 40 px, T = 8) and ViT-B/16
at 224 px (T = 16 or as ``--vit-b-frames`` lists). ``--faces none`` (clips that are already face crops) is timed for
reference: it finds no faces.

The command finds faces in its own process; ``--processes`` also times the demo-size cases (and the first ViT-B
one) with ``--face-worker`` (faces found in a second process started before the command loads the model:
``fe_adapter.predict.face_worker``), the two taking turns run by run so that the machine's drift falls on both
alike. A profile sees one process: only the command's own way is profiled.

Each case runs ``--runs`` times plain (the median wall time, ``speed`` = video seconds / wall seconds; that run's
CPU time, the worker's included, which a loaded machine does not inflate as much; the peak resident memory of the
command's process), and the demo-size cases and the first ViT-B one (faces found in the command's process) once
under cProfile (``python -m cProfile``), whose cumulative times split the run into start-up
(imports and model loading: all before the first frame), decoding (PyAV's decoder and the frame conversion; they
run in a thread a few frames ahead, so this is the time the main thread waited for a frame: decoding not hidden
behind the rest), face detection (scans of the frame), following faces between scans (MTCNN's re-measurement, or
templates), cropping/alignment, the model, writing the outputs (JSON, CSV, the timeline PNG), and the rest;
profiling slows Python-heavy parts a little, so the shares come from that run and the speed from the plain one.

"Boxes true": on the frames the windows use (the same plan as predict), the boxes of the video's main face from
``FaceTracker`` set up as predict sets it up (detection on a stride, following in between) are compared with the
detector's own box on every one of those frames: the share of frames with IoU >= 0.7 (frames where the per-frame
detection finds no face, the face being out of the picture, are counted apart).

The machine is recorded (CPU, cores, threads, versions, load average before and after): on a shared machine every
number here is slower than on an idle one.
"""

from __future__ import annotations

import argparse
import cProfile  # noqa: F401 - the profiled runs use it through ``python -m cProfile``
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from fe_adapter._json import write_json

ROOT = Path(__file__).resolve().parent.parent
FPS, WIDTH, HEIGHT = 25, 1280, 720
#: The parts a profiled run is split into: (name, test on a profiled function's (file, line, name)).
PARTS = (
    # decoding runs in a thread a few frames ahead (fe_adapter.data.ahead), which the profile of the main thread does
    # not see: what it sees is the main thread waiting for the next frame (``read_ahead``), the part of decoding the
    # rest did not hide; "frames"/"to_ndarray" count where decoding runs in the main thread
    ("decode", lambda file, name: (name == "frames" and file.endswith("readers.py")) or name == "to_ndarray"
     or (name == "read_ahead" and file.endswith("ahead.py"))),
    ("detection", lambda file, name: name == "detect" and file.endswith("detectors.py")),
    ("following", lambda file, name: name in ("_follow", "_refine") and file.endswith("tracking.py")),
    ("alignment", lambda file, name: name in ("align_face", "crop_face")),
    ("model", lambda file, name: name == "_probabilities" and file.endswith("predictor.py")),
    ("outputs", lambda file, name: name == "write_prediction" and file.endswith("timeline.py")),
)


def model_files(name: str, folder: Path, frames: int) -> tuple[Path, Path]:
    """(adapter checkpoint, backbone weights) of a random model: "demo" (the demo's image model) or "vit-b"."""
    import timm
    import torch
    from safetensors.torch import save_file

    import fe_adapter
    from benchmarks.cases import with_random_adapters
    from fe_adapter import demo

    backbone, kwargs, bottleneck = (demo.BACKBONE, demo.BACKBONE_KWARGS, 32) if name == "demo" else \
        ("vit_base_patch16_224", {}, 384)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}-backbone.safetensors"
    torch.manual_seed(0)
    if not weights.is_file():
        image_model = timm.create_model(backbone, pretrained=False, **kwargs)
        save_file({k: v.contiguous() for k, v in image_model.state_dict().items()}, str(weights))
    model = with_random_adapters(fe_adapter.create_model(backbone, num_classes=7, num_frames=frames, checkpoint=weights,
                                                         backbone_kwargs=kwargs, bottleneck=bottleneck))
    return fe_adapter.save_adapters(model, folder / f"{name}-T{frames}.safetensors"), weights


def _command(video: Path, adapters: Path, weights: Path, faces: str, out: Path, stride: float,
             face_worker: bool) -> list[str]:
    selection = ["--faces", "none"] if faces == "none" else ["--detector", faces]
    return ["predict", str(video), "--checkpoint", str(adapters), "--backbone-checkpoint", str(weights),
            "--out", str(out), "--overwrite", "--device", "cpu", "--stride", f"{stride}s", *selection,
            *(["--face-worker"] if face_worker else [])]


def _environment(threads: int) -> dict[str, str]:
    return {**os.environ, "GOMP_SPINCOUNT": "1000", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))}


def shares(profile: Path, total: float) -> dict[str, float]:
    """Seconds per part of a profiled run (``PARTS``; start-up: everything outside ``predict_video`` and the writing
    of the outputs, i.e. before the first frame; other: the rest), from cumulative times; a part nested in another (a
    detection inside a tracker update) is counted once."""
    stats = pstats.Stats(str(profile))
    seconds = dict.fromkeys([name for name, _ in PARTS], 0.0)
    predicting = 0.0
    for (file, _, function), (_, _, _, cumulative, _) in stats.stats.items():
        if function == "predict_video" and file.endswith("predictor.py"):
            predicting += cumulative
        for name, test in PARTS:
            if test(file, function):
                seconds[name] += cumulative
    seconds["start-up"] = max(0.0, total - predicting - seconds["outputs"])
    seconds["other"] = max(0.0, total - sum(seconds.values()))
    return seconds


def _children_peak_mb(pid: int, peaks: dict[int, float]) -> None:
    """Record the peak resident MB (VmHWM) of each process ``pid`` started (the face worker), from /proc."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return
    for child in map(int, children):
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[child] = max(peaks.get(child, 0.0), int(line.split()[1]) / 1024)


#: Seconds between two looks at the face worker's peak memory while the command runs.
PEAK_POLL_S = 0.2


def _plain_run(arguments: list[str], env: dict[str, str]) -> tuple[float, float, float, float]:
    """Wall seconds, CPU seconds (with the face worker's), peak resident MB of the command's process (wait4's: the
    larger of its own and that of the worker it reaps, so its own while the worker is the smaller, as measured so
    far), and the largest peak resident MB of a process it started (the face worker; 0 for none, or without /proc),
    of one run of the command in a fresh process. The wall time ends when the process does (a blocking wait), not
    at the next look at the worker's memory (a thread's, every ``PEAK_POLL_S``)."""
    with tempfile.TemporaryFile("w+") as errors:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "fe_adapter", *arguments], env=env,
                                   stdout=subprocess.DEVNULL, stderr=errors, text=True)
        peaks: dict[int, float] = {}
        ended = threading.Event()

        def watch() -> None:
            while not ended.wait(PEAK_POLL_S):
                _children_peak_mb(process.pid, peaks)

        watcher = threading.Thread(target=watch, name="peak-memory", daemon=True)
        watcher.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # the child's own CPU time and peak memory
        except BaseException:  # Ctrl-C: no command left running
            process.kill()
            process.wait()
            raise
        finally:
            ended.set()
            watcher.join()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in (0, 3):
            errors.seek(0)
            raise RuntimeError(f"fe-adapter {' '.join(arguments)} failed ({process.returncode}): "
                               f"{errors.read()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, max(peaks.values(), default=0.0)


def run_cases(video: Path, duration: float, adapters: Path, weights: Path, faces: str, stride: float, threads: int,
              scratch: Path, profile: bool, runs: int = 1, processes: tuple[str, ...] = ("worker",)) -> list[dict]:
    """One row per way of finding faces (``processes``: "one", the command's process, its default, or "worker",
    --face-worker):
    the median of ``runs`` plain runs (wall time, CPU time, speed; every run's wall and CPU time kept: on a shared VM
    they vary by a quarter from run to run), the ways taking turns run by run so that the machine's drift falls on
    each alike; and (``profile``) the profiled run's split, for "one" only: a profile sees one process."""
    env = _environment(threads)
    arguments = {process: _command(video, adapters, weights, faces, scratch / "out", stride, process == "worker")
                 for process in processes}
    measured: dict[str, list[tuple[float, float, float, float]]] = {process: [] for process in processes}
    for _ in range(runs):
        for process in processes:
            measured[process].append(_plain_run(arguments[process], env))
    rows = []
    for process in processes:
        ordered = sorted(measured[process], key=lambda run: run[0])
        wall, cpu, *_ = ordered[(runs - 1) // 2]
        row = {"faces": faces, "process": process, "stride_s": stride, "threads": threads, "wall_s": wall,
               "cpu_s": cpu, "peak_rss_mb": max(run[2] for run in ordered),
               "worker_peak_rss_mb": max(run[3] for run in ordered), "video_s": duration,
               "speed": duration / wall, "runs": [{"wall_s": run[0], "cpu_s": run[1]} for run in measured[process]],
               "share": None}
        if profile and process == "one":
            path = scratch / "run.prof"
            started = time.perf_counter()
            profiled = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(path), "-m", "fe_adapter",
                                       *arguments[process]], env=env, capture_output=True, text=True)
            if profiled.returncode not in (0, 3):
                raise RuntimeError(f"the profiled run failed ({profiled.returncode}): {profiled.stderr[-2000:]}")
            row["profiled_wall_s"] = time.perf_counter() - started
            row["share"] = {part: seconds / row["profiled_wall_s"]
                            for part, seconds in shares(path, row["profiled_wall_s"]).items()}
        rows.append(row)
    return rows


def boxes_true(video: Path, detector_name: str, frames: int, window: float, stride: float) -> dict:
    """On the frames the windows use: the main face's box as predict follows it (``FaceTracker`` with predict's
    ``detect_every``; in each frame, of the faces seen there, the person seen in the most frames so far) against the
    detector's own faces on each of those frames (the best-overlapping one)."""
    from fe_adapter.data.readers import VideoReader
    from fe_adapter.faces import make_detector
    from fe_adapter.faces.face import box_iou
    from fe_adapter.predict.face_pass import face_tracker
    from fe_adapter.predict.windows import plan_windows

    detector = make_detector(detector_name)
    seen: dict[int, int] = {}
    compared = agree = no_reference = missing = 0
    with VideoReader(video) as reader:
        tracker = face_tracker(detector, reader.fps)
        every = tracker.detect_every
        plans = plan_windows(reader.frame_count, reader.fps, frames, window, stride)
        needed = sorted({index for plan in plans for index in plan.indices})
        for index, frame in reader.frames(needed):
            image = frame.to_ndarray(format="rgb24")
            faces = [face for face in tracker.update(image, index) if face.seen]
            for face in faces:
                seen[face.track_id] = seen.get(face.track_id, 0) + 1
            main = max(faces, key=lambda face: (seen[face.track_id], -face.track_id), default=None)
            reference = detector.detect(image)
            if not reference:
                no_reference += 1
                continue
            compared += 1
            if main is None:
                missing += 1
            elif max(box_iou(main.face.box, face.box) for face in reference) >= 0.7:
                agree += 1
    return {"frames_used": len(needed), "compared": compared, "iou_at_least_0.7": agree,
            "share": agree / max(1, compared), "no_face_in_per_frame_detection": no_reference,
            "no_main_face_where_detected": missing, "detect_every": every}


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("torch", "timm", "av", "facenet-pytorch", "scikit-image", "numpy", "fe-adapter"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _wall(row: dict) -> str:
    """The median wall time, with the fastest and slowest run when there were several."""
    walls = [run["wall_s"] for run in row.get("runs", [])]
    spread = f" ({min(walls):.1f}-{max(walls):.1f})" if len(walls) > 1 else ""
    return f"{row['wall_s']:.1f} s{spread}"


def table(rows: list[dict]) -> str:
    parts = ["start-up", "decode", "detection", "following", "alignment", "model", "outputs", "other"]
    lines = ["| model | T | stride | faces | found in | threads | video | wall | CPU | peak RSS | worker's peak RSS | "
             "x real time | " + " | ".join(parts) + " |", "|---|---|---|---|---|---|---|---|---|---|---|---|"
             + "---|" * len(parts)]
    for row in rows:
        found_in = "this process" if row.get("process") == "one" else "a worker"
        worker = f"{row['worker_peak_rss_mb']:.0f} MB" if row.get("worker_peak_rss_mb") else "-"
        share = row["share"] or {}  # older results split the run into fewer parts
        shares_text = " | ".join(f"{100 * share[part]:.0f}%" if part in share else "-" for part in parts)
        peak = f"{row['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in row else "-"
        lines.append(f"| {row['model']} | {row['frames']} | {row['stride_s']:g} s | {row['faces']} | {found_in} | "
                     f"{row['threads']} | {row['video_s']:.0f} s | {_wall(row)} | {row['cpu_s']:.1f} s | "
                     f"{peak} | {worker} | {row['speed']:.2f} | {shares_text} |")
    return "\n".join(lines)


def _exists(path: Path) -> bool:
    """Whether ``path`` names a file or folder; False for a word no file can be named (a long --note)."""
    try:
        return path.exists()
    except OSError:  # ENAMETOOLONG
        return False


def recorded_arguments(words: list[str]) -> list[str]:
    """The command's arguments as a result file records them: a path in the checkout relative to it, one outside it
    (a scratch folder of this machine) as ``.../`` and its name, so that no file names this machine's folders."""
    checkout = Path.cwd().resolve()
    recorded = []
    for word in words:
        path = Path(word)
        if not (path.is_absolute() or word.startswith("..") or _exists(path)):
            recorded.append(word)
            continue
        resolved = path.resolve()
        inside = resolved == checkout or checkout in resolved.parents
        recorded.append(os.path.relpath(resolved, checkout) if inside else f".../{resolved.name}")
    return recorded


def load_words(before: float, after: float) -> str:
    """What the 1-minute load averages before and after a run say about the machine: another process's work, or
    only the benchmark's own (the load after it is mostly its own commands)."""
    if before >= 1.0:
        return (f"load average (1 min) {before:.1f} before, {after:.1f} after: other work was running, so every time "
                "here is slower than on an idle machine")
    return f"load average (1 min) {before:.1f} before (idle), {after:.1f} after (the benchmark's own commands)"


def report(record: dict) -> str:
    """The markdown report of a run's ``record`` (the JSON it writes)."""
    machine, rows = record["machine"], record["rows"]
    # results from before --runs kept no per-run walls: they are one run of each case
    runs = record.get("runs") or max(len(row.get("runs", [])) for row in rows) or 1
    walls = (f"the median of {runs} runs of each case (the fastest and slowest in brackets)" if runs > 1
             else "one run of each case")
    checks_text = "\n".join(f"- {check['detector']}: IoU >= 0.7 with detection on every frame on "
                            f"{check['iou_at_least_0.7']} of {check['compared']} compared frames "
                            f"({100 * check['share']:.1f}%) of the {check['frames_used']} frames the windows use "
                            f"({check['no_face_in_per_frame_detection']} without a face in per-frame detection)"
                            for check in record.get("boxes_true", []))
    load = load_words(machine["load_average_before"][0], machine["load_average_after"][0])
    nice = f"; this process ran at nice {record['nice']}" if "nice" in record else ""
    video = record["video"]
    return (f"# Speed of the whole `fe-adapter predict` command, {record['date']}\n\n`{record['command']}` on "
            f"{machine['cpu']} ({machine['cores']} cores, {machine['threads']} threads; torch {machine['torch']}, "
            f"PyAV {machine['av']}, facenet-pytorch {machine['facenet-pytorch']}); {load}{nice}. "
            f"{video['width']}x{video['height']} {video['fps']} fps h264 video; window 2 s. Wall: {walls}, x real "
            f"time from it; CPU: that run's. {record.get('note', '')}\n\n{table(rows)}\n\n"
            f"Boxes true (demo-size model's windows):\n\n{checks_text}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=("demo", "vit-b"), default=["demo", "vit-b"])
    parser.add_argument("--detectors", nargs="+", default=["mtcnn", "lbp", "none"])
    parser.add_argument("--seconds", type=float, default=60.0, help="video length for the demo-size model")
    parser.add_argument("--vit-b-seconds", type=float, default=10.0, help="video length for ViT-B (slower)")
    parser.add_argument("--vit-b-settings", nargs="+", default=["16:0.5", "16:2", "8:2", "8:4"],
                        metavar="T:STRIDE", help="frames per window and stride (s) for ViT-B, with mtcnn")
    parser.add_argument("--processes", nargs="+", choices=("one", "worker"), default=["one", "worker"],
                        help="faces found in the command's own process (its default; profiled), in a worker "
                        "process (--face-worker), or both, taking turns (default)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="plain runs per case; the table gives the median "
                        "(default 3)")
    parser.add_argument("--media", type=Path, default=Path("/tmp/fe-adapter-face-videos"), help="video cache")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", help="results file stem (default predict-speed-<cpu>-<date>)")
    parser.add_argument("--note", default="", help="a line for the results (e.g. which code was measured)")
    parser.add_argument("--report-from", type=Path, metavar="JSON", help="only write the markdown report of a "
                        "run's JSON again, next to it (after a change to the report's wording)")
    args = parser.parse_args(argv)
    if args.report_from is not None:
        record = json.loads(args.report_from.read_text())
        args.report_from.with_suffix(".md").write_text(report(record))
        return 0

    from benchmarks.face_videos import write_face_video

    def tour(seconds: float) -> Path:
        path = args.media / f"tour-{seconds:g}s-{WIDTH}x{HEIGHT}.mp4"
        return path if path.is_file() else write_face_video(path, "tour", seconds, FPS, WIDTH, HEIGHT).path

    load_before = os.getloadavg()
    rows, checks = [], []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        cases = []
        if "demo" in args.models:
            cases += [("demo", 8, 0.5, faces, args.seconds, True, tuple(args.processes)) for faces in args.detectors]
        if "vit-b" in args.models:  # the first setting profiled (in one process): the model's share
            cases += [("vit-b", int(t), float(s), "mtcnn", args.vit_b_seconds, number == 0,
                       tuple(args.processes) if number == 0 else ("one",))
                      for number, (t, s) in enumerate(setting.split(":") for setting in args.vit_b_settings)]
        for model, frames, stride, faces, seconds, profile, processes in cases:
            video = tour(seconds)
            adapters, weights = model_files(model, scratch / "models", frames)
            for row in run_cases(video, seconds, adapters, weights, faces, stride, args.threads, scratch, profile,
                                 args.runs, processes):
                rows.append({"model": model, "frames": frames, **row})
                print(table([rows[-1]]).splitlines()[-1], flush=True)
            if model == "demo" and faces != "none":
                check = {"detector": faces, "frames": frames, "stride_s": stride,
                         **boxes_true(video, faces, frames, 2.0, stride)}
                checks.append(check)
                print(f"boxes true ({faces}): {check['iou_at_least_0.7']} of {check['compared']} frames "
                      f"({100 * check['share']:.1f}%)", flush=True)
    words = recorded_arguments(argv if argv is not None else sys.argv[1:])
    record = {"command": "python -m benchmarks.predict_speed " + " ".join(words),
              "date": date.today().isoformat(),
              "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "threads": args.threads,
                          "load_average_before": load_before, "load_average_after": os.getloadavg(), **_versions()},
              "video": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "scenario": "tour"},
              "rows": rows, "boxes_true": checks, "note": args.note, "nice": os.nice(0), "runs": args.runs}
    stem = args.name or f"predict-speed-{_cpu().split()[0].lower()}-{date.today().isoformat()}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{stem}.json", record)
    (args.out / f"{stem}.md").write_text(report(record))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak memory and speed of ``fe-adapter predict`` on long 1280x720 videos: it must not grow with the video.

    python -m benchmarks.predict_memory              # 1- and 10-minute videos; results in benchmarks/results/
    python -m benchmarks.predict_memory --minutes 1  # a quicker look

The videos are generated (h264, 25 frames/s, a real face photo drifting over a plain background; cached in
``--media``, never committed). Each case runs in a fresh process: it builds a small model (ViT-tiny at 112 px,
8 frames per window, adapters R=64) from files, as ``fe-adapter predict`` does, measures the resident memory
then (``model_rss_mb``), resets the peak (``/proc/self/clear_refs``) and reports the peak while predicting
(``peak_rss_mb``) and the largest RSS sampled in each tenth of the run, the time, and what the reader decoded.
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np

from fe_adapter._json import to_json, write_json

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT, FPS = 1280, 720, 25
MODEL = {"backbone": "vit_tiny_patch16_224", "backbone_kwargs": {"img_size": 112}, "num_frames": 8, "bottleneck": 64}


def generate_video(path: Path, minutes: float) -> Path:
    """A 1280x720 h264 video (ultrafast preset: generation is quick) of a face moving over a plain background."""
    import av
    from PIL import Image
    from skimage import data as skimage_data

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    face = np.asarray(Image.fromarray(skimage_data.astronaut()[20:260, 120:330]).resize((315, 360)))
    background = np.full((HEIGHT, WIDTH, 3), 96, dtype=np.uint8)
    background[:, :, 2] = np.linspace(80, 160, WIDTH, dtype=np.uint8)[None, :]
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "28"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(int(minutes * 60 * FPS)):
            canvas = background.copy()
            phase = index / (8 * FPS)  # the face wanders over 8-second cycles
            left = int(480 + 300 * np.sin(2 * np.pi * phase))
            top = int(180 + 80 * np.sin(2 * np.pi * phase * 0.7))
            canvas[top:top + face.shape[0], left:left + face.shape[1]] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)
    return path


def _status_kb(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1))


def measure(video: Path, window: float, stride: float, model_dir: Path) -> dict:
    """One case in this process: build the model from files, then predict with the peak RSS reset."""
    import torch

    import fe_adapter

    adapters, backbone = model_dir / "adapters.safetensors", model_dir / "backbone.safetensors"
    if not adapters.is_file():
        import timm
        from safetensors.torch import save_file

        torch.manual_seed(0)
        image_model = timm.create_model(MODEL["backbone"], pretrained=False, **MODEL["backbone_kwargs"])
        save_file({k: v.contiguous() for k, v in image_model.state_dict().items()}, str(backbone))
        model = fe_adapter.create_model(MODEL["backbone"], num_classes=7, num_frames=MODEL["num_frames"],
                                        checkpoint=backbone, backbone_kwargs=MODEL["backbone_kwargs"],
                                        bottleneck=MODEL["bottleneck"])
        fe_adapter.save_adapters(model, adapters)
    predictor = fe_adapter.Predictor.from_checkpoint(adapters, device="cpu", backbone_checkpoint=backbone)
    model_rss = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the current RSS
    samples: list[tuple[float, int]] = []  # (seconds, RSS kB) every half second: how memory evolves
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append((time.perf_counter() - started, _status_kb("VmRSS")))

    started = time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    prediction = predictor.predict_video(video, window=window, stride=stride, progress=False)
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    tenths = [[rss for at, rss in samples if tenth * elapsed / 10 <= at < (tenth + 1) * elapsed / 10]
              for tenth in range(10)]
    return {"video": video.name, "duration_s": prediction.duration, "frames": prediction.frame_count,
            "window_s": window, "stride_s": stride, "windows": len(prediction.windows),
            "model_rss_mb": model_rss / 1024, "peak_rss_mb": _status_kb("VmHWM") / 1024,
            "above_model_mb": (_status_kb("VmHWM") - model_rss) / 1024, "seconds": elapsed,
            "video_frames_per_s": prediction.frame_count / elapsed,
            "rss_mb_by_tenth_of_the_run": [round(max(part) / 1024) if part else None for part in tenths],
            "peak_face_crops_held": prediction.peak_frames_held, "frames_decoded": prediction.frames_decoded,
            "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10], help="video lengths to measure")
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--stride", type=float, default=1.0)
    parser.add_argument("--sparse-stride", type=float, default=30.0,
                        help="also run the longest video with this stride (windows far apart: the reader seeks); "
                             "0 to skip")
    parser.add_argument("--media", type=Path, default=ROOT / ".benchmarks-media", help="cache of generated videos")
    parser.add_argument("--name", help="results file name (default: <cpu>-<date>-predict)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one case, in a child process
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(to_json(measure(args.measure, args.window, args.stride, args.model_dir), indent=None))
        return 0

    cases = [(minutes, args.stride) for minutes in args.minutes]
    if args.sparse_stride:
        cases.append((max(args.minutes), args.sparse_stride))
    results = []
    with tempfile.TemporaryDirectory() as model_dir:
        for minutes, stride in cases:
            started = time.perf_counter()
            video = generate_video(args.media / f"face-{WIDTH}x{HEIGHT}-{FPS}fps-{minutes:g}min.mp4", minutes)
            print(f"{video.name}: ready in {time.perf_counter() - started:.0f} s; predicting (stride {stride:g} s)",
                  file=sys.stderr)
            child = subprocess.run([sys.executable, "-m", "benchmarks.predict_memory", "--measure", str(video),
                                    "--window", str(args.window), "--stride", str(stride), "--model-dir", model_dir],
                                   cwd=ROOT, capture_output=True, text=True, check=False)
            if child.returncode != 0:
                print(child.stderr, file=sys.stderr)
                return child.returncode
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(to_json(results[-1], indent=None), file=sys.stderr)

    import av
    import torch

    from benchmarks.timing import device_name

    cpu = device_name(torch.device("cpu"))
    report = {"command": " ".join(["python -m benchmarks.predict_memory", *(argv or sys.argv[1:])]),
              "date": date.today().isoformat(), "machine": {"cpu": cpu, "torch": torch.__version__,
                                                            "av": av.__version__, "python": platform.python_version()},
              "video": f"{WIDTH}x{HEIGHT} h264 {FPS} frames/s", "model": MODEL, "results": results}
    name = args.name or f"{re.sub(r'[^a-z0-9]+', '-', cpu.lower()).strip('-')}-{date.today()}-predict"
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    write_json(path, report)
    print("| video | stride | windows | model RSS MB | peak RSS MB | above model MB | video frames/s | frames decoded "
          "| crops held |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['duration_s'] / 60:g} min | {r['stride_s']:g} s | {r['windows']} | {r['model_rss_mb']:.0f} | "
              f"{r['peak_rss_mb']:.0f} | {r['above_model_mb']:.0f} | {r['video_frames_per_s']:.1f} | "
              f"{r['frames_decoded']} of {r['frames']} | {r['peak_face_crops_held']} |")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

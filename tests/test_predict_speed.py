"""benchmarks.predict_speed's split of a profiled run into parts: each part's time counted once; decoding is the
reader's own time where it runs in the main thread and the wait for the next frame where it runs ahead in a thread."""

from __future__ import annotations

import cProfile
import importlib.util
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from benchmarks.predict_speed import shares

_MODULES = {
    "readers.py": "import time\ndef frames(n):\n    for i in range(n):\n        time.sleep(0.02)\n        yield i\n",
    "detectors.py": "import time\ndef detect(frame):\n    time.sleep(0.03)\n",
    "tracking.py": "import time\nfrom detectors import detect\n"
                   "def update(frame, index):\n    if index % 2 == 0:\n        detect(frame)\n"
                   "    elif index % 4 == 1:\n        _follow(frame)\n    else:\n        _refine(frame)\n"
                   "def _follow(frame):\n    time.sleep(0.01)\ndef _refine(frame):\n    time.sleep(0.05)\n",
    "ahead.py": "import time\ndef read_ahead(items):\n    for item in items:\n        time.sleep(0.02)\n"
                "        yield item\n",
    "predictor.py": "import time\nfrom readers import frames\nfrom ahead import read_ahead\n"
                    "from tracking import update\n"
                    "def align_face(frame):\n    time.sleep(0.005)\n"
                    "def _probabilities(clips):\n    time.sleep(0.04)\n"
                    "def predict_video(n):\n"
                    "    for index in [*frames(n // 2), *read_ahead(range(n // 2, n))]:\n"
                    "        update(index, index)\n        align_face(index)\n    _probabilities(None)\n",
    "timeline.py": "import time\ndef write_prediction():\n    time.sleep(0.03)\n",
}


def test_profiled_parts_are_counted_once(tmp_path, monkeypatch):
    for name, text in _MODULES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = importlib.util.spec_from_file_location("predictor", tmp_path / "predictor.py")
    predictor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predictor)
    profile = cProfile.Profile()
    started = time.perf_counter()
    time.sleep(0.1)  # "start-up"
    profile.runcall(predictor.predict_video, 10)
    profile.runcall(importlib.import_module("timeline").write_prediction)  # after predicting: not start-up
    total = time.perf_counter() - started
    profile.dump_stats(tmp_path / "run.prof")
    parts = shares(tmp_path / "run.prof", total + 0.1)  # 0.1 s the profile did not see: start-up too
    expected = {"decode": 10 * 0.02, "detection": 5 * 0.03, "following": 3 * 0.01 + 2 * 0.05, "alignment": 10 * 0.005,
                "model": 0.04, "outputs": 0.03}
    for part, seconds in expected.items():
        assert parts[part] == pytest.approx(seconds, abs=0.02 + 0.3 * seconds), (part, parts)
    assert parts["start-up"] == pytest.approx(0.2, abs=0.05)
    assert sum(parts.values()) == pytest.approx(total + 0.1, abs=1e-6)


def test_the_recorded_command_names_no_folder_outside_the_checkout(tmp_path, monkeypatch):
    from benchmarks.predict_speed import recorded_arguments
    from tests.training_cases import REPOSITORY

    monkeypatch.chdir(REPOSITORY)
    words = ["--media", str(tmp_path / "media"), "--out", str(REPOSITORY / "benchmarks" / "results"), "--media",
             "../" * 8 + "tmp/sb/media", "--models", "demo", "--note", "a 10-s video", "--note", "x" * 300]
    assert recorded_arguments(words) == ["--media", ".../media", "--out", "benchmarks/results", "--media",
                                         ".../media", "--models", "demo", "--note", "a 10-s video", "--note",
                                         "x" * 300]  # a note longer than a file name can be: kept, not an error


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_the_peak_memory_of_a_process_the_command_starts_is_recorded():
    """The face worker's peak is its own (the command's wait4 peak is the larger of the two, not their sum)."""
    from benchmarks.predict_speed import _children_peak_mb

    child = "import time; block = bytearray(300 * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep(3)"
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, "
                                                     f"'-c', {child!r}])"])
    peaks: dict[int, float] = {}
    deadline = time.monotonic() + 20
    while parent.poll() is None and time.monotonic() < deadline and max(peaks.values(), default=0) < 300:
        _children_peak_mb(parent.pid, peaks)
        time.sleep(0.1)
    parent.wait()
    assert len(peaks) == 1 and 300 <= max(peaks.values()) < 400


def test_the_wall_time_ends_when_the_command_does(monkeypatch):
    """Not at the next look at the worker's memory: with looks 30 s apart (and any sleep of this module 30 s long),
    ``--version`` still takes seconds."""
    from benchmarks import predict_speed

    sleep = time.sleep
    monkeypatch.setattr(predict_speed, "PEAK_POLL_S", 30.0)
    monkeypatch.setattr(predict_speed, "time", types.SimpleNamespace(perf_counter=time.perf_counter,
                                                                    sleep=lambda _: sleep(30.0)))
    wall, cpu, peak, worker_peak = predict_speed._plain_run(["--version"], dict(os.environ))
    assert 0 < cpu and wall < 15 and peak > 0 and worker_peak == 0.0


def test_the_report_reads_the_load_and_is_made_from_the_json_alone(tmp_path):
    from benchmarks.predict_speed import load_words, main

    assert load_words(1.7, 2.1).endswith("other work was running, so every time here is slower than on an idle "
                                         "machine")
    assert load_words(0.3, 2.0) == ("load average (1 min) 0.3 before (idle), 2.0 after (the benchmark's own "
                                    "commands)")
    row = {"model": "demo", "frames": 8, "faces": "mtcnn", "process": "one", "stride_s": 0.5, "threads": 2,
           "wall_s": 10.75, "cpu_s": 13.9, "peak_rss_mb": 847.0, "worker_peak_rss_mb": 0.0, "video_s": 60.0,
           "speed": 60 / 10.75, "runs": [{"wall_s": wall, "cpu_s": 14.0} for wall in (9.69, 10.75, 11.28)],
           "share": None}
    record = {"command": "python -m benchmarks.predict_speed --runs 3", "date": "2026-12-03",
              "machine": {"cpu": "AMD EPYC", "cores": 2, "threads": 2, "load_average_before": [0.3, 0.5, 0.6],
                          "load_average_after": [2.0, 1.0, 0.7], "torch": "2.14.1", "av": "18.1.0",
                          "facenet-pytorch": "2.5.3"},
              "video": {"width": 1280, "height": 720, "fps": 25, "scenario": "tour"}, "rows": [row],
              "boxes_true": [], "note": "a note", "nice": 0, "runs": 3}
    (tmp_path / "run.json").write_text(json.dumps(record))
    assert main(["--report-from", str(tmp_path / "run.json")]) == 0
    text = (tmp_path / "run.md").read_text()
    assert "0.3 before (idle), 2.0 after" in text and "the median of 3 runs" in text and "a note" in text
    assert "| demo | 8 | 0.5 s | mtcnn | this process | 2 | 60 s | 10.8 s (9.7-11.3) | 13.9 s |" in text


def test_every_committed_result_renders_again():
    """--report-from on each committed predict-speed JSON, older formats included (fewer parts, no per-run walls)."""
    from benchmarks.predict_speed import report

    results = sorted((Path(__file__).parents[1] / "benchmarks" / "results").glob("predict-speed-*.json"))
    assert results
    for path in results:
        record = json.loads(path.read_text())
        text = report(record)
        assert text.startswith("# Speed of the whole `fe-adapter predict` command"), path
        assert len([line for line in text.splitlines() if line.startswith(("| demo |", "| vit-b |"))]) \
            == len(record["rows"]), path
        runs = max(len(row.get("runs", [])) for row in record["rows"])
        assert ("one run of each case" in text) == (runs <= 1), path  # older results: a single run, not "of 3"

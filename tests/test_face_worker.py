"""``FaceWorker``: the faces of videos found in a second process are exactly the ones ``find_faces`` finds in the
test's process; errors come back as themselves on the video they concern; a worker that dies is an error, not a
hang; ``fe-adapter predict --face-worker`` writes what ``fe-adapter predict`` writes."""

from __future__ import annotations

import json
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import astuple, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fe_adapter import cli
from fe_adapter.data.formats import UnreadableClip
from fe_adapter.faces import make_detector
from fe_adapter.faces.align import MARGIN
from fe_adapter.predict.face_items import FaceSettings, Finished, FrameFaces, Opened
from fe_adapter.predict.face_pass import find_faces
from fe_adapter.predict.face_worker import FaceWorker, _sendable
from tests.face_scenes import blank, place_face
from tests.media import write_video

SETTINGS = FaceSettings(num_frames=4, size=32, window=1.0, stride=0.5, detector="mtcnn", detect_every=None,
                        margin=MARGIN, all_faces=True)


def _video(path, frames: int = 16, people: int = 1):
    """A face moving down and growing (and, for two people, a mirrored one coming in at frame 6)."""
    video = []
    for index in range(frames):
        frame = blank()
        place_face(frame, (90 + 3 * index, 100 + 2 * index), 0.4 + 0.01 * index)
        if people == 2 and index >= 6:
            place_face(frame, (240, 120), 0.35, mirror=True)
        video.append(frame)
    return write_video(path, np.stack(video))


def _assert_same(got: list, expected: list) -> None:
    assert [type(item) for item in got] == [type(item) for item in expected]
    assert isinstance(got[0], Opened) and isinstance(got[-1], Finished)
    assert (got[0].fps, got[0].frame_count) == (expected[0].fps, expected[0].frame_count) and got[-1] == expected[-1]
    for mine, theirs in zip(got[1:-1], expected[1:-1], strict=True):
        assert isinstance(mine, FrameFaces) and mine.index == theirs.index and len(mine.crops) == len(theirs.crops)
        for crop, other in zip(mine.crops, theirs.crops, strict=True):
            assert (crop.seen, crop.track_id, crop.face.box, crop.face.score) == \
                (other.seen, other.track_id, other.face.box, other.face.score)
            np.testing.assert_array_equal(crop.face.landmarks, other.face.landmarks)
            np.testing.assert_array_equal(crop.crop, other.crop)


@pytest.fixture
def two_threads():
    """torch on two threads here (make test's workers use one): the worker's networks run on one thread, and so must
    this process's finding faces, whatever torch's setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_the_worker_finds_what_this_process_finds_and_errors_come_back_per_video(tmp_path, two_threads):
    one, two, skipped = _video(tmp_path / "one.mp4"), _video(tmp_path / "two.mp4", people=2), tmp_path / "skip.mp4"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    detector = make_detector("mtcnn")
    with FaceWorker([one, broken, _video(skipped, frames=8), two], SETTINGS) as worker:
        with pytest.raises(ValueError, match="the face worker finds faces with FaceSettings"):
            worker.faces(one, replace(SETTINGS, size=48))
        _assert_same(list(worker.faces(one, SETTINGS)), list(find_faces(one, SETTINGS, detector)))
        with pytest.raises(UnreadableClip) as raised:
            list(worker.faces(broken, SETTINGS))
        with pytest.raises(UnreadableClip) as here:
            list(find_faces(broken, SETTINGS, detector))
        assert str(raised.value) == str(here.value) and "in the face worker process" in raised.value.__notes__[0]
        with pytest.raises(ValueError, match="one.mp4 is not among the face worker's videos still to come"):
            worker.faces(one, SETTINGS)
        people = list(worker.faces(two, SETTINGS))  # skip.mp4's items, unread, are dropped
        _assert_same(people, list(find_faces(two, SETTINGS, detector)))
        assert {crop.track_id for item in people[1:-1] for crop in item.crops} == {0, 1}


def test_what_stops_the_worker_before_any_video_comes_back_on_every_video(tmp_path):
    videos = [_video(tmp_path / "a.mp4", frames=4), _video(tmp_path / "b.mp4", frames=4)]
    settings = replace(SETTINGS, detector="haar")
    with FaceWorker(videos, settings) as worker:
        for video in videos:
            with pytest.raises(ValueError, match="haar"):
                list(worker.faces(video, settings))


def test_a_worker_that_dies_is_an_error_not_a_hang(tmp_path):
    video = _video(tmp_path / "a.mp4", frames=4)
    raised: list[BaseException] = []

    def take(worker: FaceWorker) -> None:
        try:
            list(worker.faces(video, SETTINGS))
        except BaseException as error:  # noqa: BLE001 - looked at below
            raised.append(error)

    with FaceWorker([video], SETTINGS) as worker:
        worker._process.kill()  # noqa: SLF001 - the case under test
        taker = threading.Thread(target=take, args=(worker,), daemon=True)
        taker.start()
        taker.join(timeout=60)
        assert not taker.is_alive(), "waited a minute for a dead worker"
    assert len(raised) == 1 and type(raised[0]) is RuntimeError
    assert re.match(r"the face worker process ended \(exit code -9\) without finishing its videos", str(raised[0]))


def test_an_error_that_does_not_pickle_comes_back_as_a_runtime_error_naming_it():
    class Local(Exception):  # a class defined in a function does not pickle
        pass

    sent = _sendable(Local("the reason"))
    assert type(sent) is RuntimeError and str(sent).startswith("Local: the reason\nin the face worker process:")
    kept = _sendable(ValueError("plain"))
    assert type(kept) is ValueError and pickle.loads(pickle.dumps(kept)).__notes__ == kept.__notes__


def test_predict_with_the_worker_writes_what_one_process_writes(tmp_path, tiny_model_files):
    adapters, backbone = tiny_model_files
    videos = [_video(tmp_path / "one.mp4"), _video(tmp_path / "two.mp4", people=2)]
    written = []
    for mode, options in (("worker", ["--face-worker"]), ("one", [])):
        out = tmp_path / mode
        assert cli.main(["predict", *map(str, videos), "--checkpoint", str(adapters), "--backbone-checkpoint",
                         str(backbone), "--window", "1s", "--stride", "0.5s", "--all-faces", "--out", str(out),
                         *options]) == 0
        results = [json.loads((out / f"{video.stem}.json").read_text()) for video in videos]
        for result in results:
            del result["processing_fps"]
        written.append(results)
    assert written[0] == written[1]
    assert len(written[0][1]["tracks"]) == 2


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_worker_whose_predicting_process_is_killed_ends(tmp_path):
    """Killed without closing its worker (SIGKILL, the OOM killer), the predicting process leaves a worker that
    would otherwise find faces for nobody, then wait for ever to send them."""
    video = _video(tmp_path / "a.mp4", frames=40)
    script = (f"import os, signal, time\nfrom fe_adapter.predict.face_worker import FaceWorker\n"
              f"from fe_adapter.predict.face_items import FaceSettings\n"
              f"worker = FaceWorker([{str(video)!r}], FaceSettings(*{astuple(SETTINGS)!r}), depth=1)\n"
              "print(worker._process.pid, flush=True)\ntime.sleep(1)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert parent.returncode == -signal.SIGKILL
    stat = Path(f"/proc/{int(parent.stdout)}/stat")
    deadline = time.monotonic() + 60
    while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", "the orphaned worker runs on"

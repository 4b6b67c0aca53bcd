"""``FaceWorker``: the faces of videos found in a second process, ahead of the model (``predict --face-worker``).

Prediction is two halves that meet only at the crops: finding faces (decoding, detection, following, alignment:
``fe_adapter.predict.face_pass``) and the model. ``fe-adapter predict`` spends seconds importing and loading the
model (torch, timm, torchvision) before it looks at a frame. With ``--face-worker`` it starts this worker first: the
worker's process imports what finding faces needs and goes through the videos one after another while the command
loads the model, which then takes the crops as they come; while the model runs on one video, the worker goes on to
the next. The worker runs its networks on one thread, at the lowest priority (``nice 19``): it takes the cores the
model's threads leave idle, not theirs (at equal priority, on 2 cores, it slowed ViT-B down). On this
project's 2-core VM it made the command a few percent faster, for about 700 MB more memory and a fifth more CPU time
(benchmarks/results/predict-speed-amd-2026-12-03-worker.md): the two cores are busy either way (decoding already runs
in a thread), so it is not the default; it is for machines with cores to spare.

The worker is a ``multiprocessing`` "spawn" process (the same on Linux, macOS and Windows; nothing of the parent's
state is copied). At most ``depth`` frames' crops wait between the two processes, so memory stays bounded when the
model is the slower half. Errors in the worker come back as the exceptions they were, on the video they concern; a
worker that dies is reported; a worker whose command was killed ends.

This module imports nothing heavy: the command can start the worker before it imports torch.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fe_adapter.predict.face_items import FaceItem, FaceSettings

#: Frames' crops that may wait between the worker and the model (64 frames of 224 px crops: 10 MB).
DEPTH = 64
_ITEM, _ERROR = "item", "error"


class FaceWorker:
    """Finds the faces of ``videos``, in that order, with ``settings``, in a second process.

    Use as a context manager (or call ``close``); take each video's items with ``faces``, in the same order.
    """

    def __init__(self, videos: Sequence[str | Path], settings: FaceSettings, depth: int = DEPTH) -> None:
        self.videos, self.settings = [str(video) for video in videos], settings
        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue(maxsize=depth)
        self._process = context.Process(target=_work, args=(self.videos, settings, self._queue), daemon=True,
                                        name="fe-adapter faces")
        self._process.start()
        self._next = 0  # the position of the video whose items come next

    def faces(self, video: str | Path, settings: FaceSettings) -> Iterator[FaceItem]:
        """The items of ``video`` (``find_faces``'s), as the worker finds them; raises what finding them raised.

        ``video`` must be the next of the worker's videos not yet asked for (earlier ones are skipped, their items
        dropped), and ``settings`` the worker's: ValueError otherwise."""
        if settings != self.settings:
            raise ValueError(f"the face worker finds faces with {self.settings}, not {settings}")
        position = next((number for number in range(self._next, len(self.videos))
                         if self.videos[number] == str(video)), None)
        if position is None:
            raise ValueError(f"{video} is not among the face worker's videos still to come: "
                             f"{self.videos[self._next:]}")
        self._next = position + 1
        return self._items(position)

    def _items(self, position: int) -> Iterator[FaceItem]:
        from fe_adapter.predict.face_items import Finished

        while True:
            number, kind, payload = self._get()
            if number < position:  # an earlier video's, left unread
                continue
            if number > position:
                raise RuntimeError(f"the face worker sent items of video {number} while video {position} was "
                                   "expected")
            if kind == _ERROR:
                raise payload
            yield payload
            if isinstance(payload, Finished):
                return

    def _get(self) -> tuple[int, str, Any]:
        """The worker's next message; RuntimeError if the worker has died without sending it."""
        while True:
            try:
                return self._queue.get(timeout=0.5)
            except queue.Empty:
                if not self._process.is_alive():
                    try:  # a message put just before it ended
                        return self._queue.get(timeout=0.5)
                    except queue.Empty:
                        raise RuntimeError(f"the face worker process ended (exit code {self._process.exitcode}) "
                                           "without finishing its videos") from None

    def close(self) -> None:
        """Stop the worker, finished or not."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._queue.close()
        self._queue.cancel_join_thread()  # items it had sent and nobody read: nothing to wait for

    def __enter__(self) -> FaceWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _work(videos: list[str], settings: FaceSettings, messages: multiprocessing.Queue) -> None:
    """The worker process: each video's items, or the exception that stopped them, then the next video."""
    try:
        import torch

        from fe_adapter.faces import make_detector
        from fe_adapter.predict.face_pass import find_faces

        torch.set_num_threads(1)
        if hasattr(os, "nice"):
            os.nice(19)  # the cores the model's threads leave idle, not theirs (the module's docstring)
        detector = None if settings.detector is None else make_detector(settings.detector)
    except Exception as error:  # noqa: BLE001 - every video gets the error that stops them all
        try:
            for number in range(len(videos)):
                _put(messages, (number, _ERROR, _sendable(error)))
        except _Orphaned:
            messages.cancel_join_thread()
        return
    except KeyboardInterrupt:
        return
    try:
        for number, video in enumerate(videos):
            try:
                for item in find_faces(video, settings, detector):
                    _put(messages, (number, _ITEM, item))
            except Exception as error:  # noqa: BLE001 - sent to the process that predicts, which raises it
                _put(messages, (number, _ERROR, _sendable(error)))
    except (KeyboardInterrupt, _Orphaned):  # Ctrl-C reaches both processes: the predicting one reports it
        messages.cancel_join_thread()  # items nobody will read: exit without waiting to send them


class _Orphaned(Exception):
    """The process that started the worker has gone (killed without closing it)."""


def _put(messages: multiprocessing.Queue, message: tuple[int, str, Any]) -> None:
    """Send ``message``, waiting while the queue is full; _Orphaned when the predicting process has gone (a worker
    whose parent was killed ends instead of finding faces for nobody, or waiting for ever)."""
    parent = multiprocessing.parent_process()
    while True:
        if parent is not None and not parent.is_alive():
            raise _Orphaned
        try:
            messages.put(message, timeout=1.0)
            return
        except queue.Full:
            continue


def _sendable(error: Exception) -> Exception:
    """``error`` with the worker's traceback as a note, if it survives pickling both ways, else a RuntimeError
    naming it."""
    error.add_note("in the face worker process:\n" + "".join(traceback.format_exception(error)).rstrip())
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - an exception type that does not pickle
        return RuntimeError(f"{type(error).__name__}: {error}\n{error.__notes__[-1]}")

"""Reading frames from video files (PyAV) and from folders of images (Pillow) as uint8 RGB arrays.

Videos are read with ``VideoReader``: it decodes in order and hands out only the frames asked for, so memory
stays bounded by what the caller keeps, not by the length of the video; where the next wanted frame is far
ahead it seeks instead of decoding everything in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fe_adapter.data.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES, UnreadableClip, is_video, require_video_file

if TYPE_CHECKING:
    import av


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frame folder in temporal order (sorted by name)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class VideoReader:
    """Frames of a video file by index, decoded in order, keeping none that were not asked for.

    Frame ``i`` is the frame on screen at ``i / fps`` seconds after the first (for constant frame rate
    videos, simply the i-th frame). ``frame_count`` comes from the stream's metadata, or from one pass over
    the file's packets (no decoding) when the container does not record it (webm, mkv, some avi).

    Seeking: when the next wanted frame lies more than twice the longest keyframe interval seen so far (and at
    least ``seek_after`` seconds) ahead, the reader seeks to the keyframe before it instead of decoding all
    frames in between; sampling 16 frames of a long video then decodes a few keyframe intervals, not the
    whole file. Densely sampled videos (prediction with overlapping windows) are decoded sequentially.

    Use as a context manager. Raises UnreadableClip for a missing, stream-less, truncated or corrupt file.
    """

    def __init__(self, path: str | Path, seek: bool = True, seek_after: float = 4.0) -> None:
        self.path = Path(path)
        self.seek = seek
        self.seek_after = seek_after
        self.decoded = 0  # frames decoded so far (what reading cost; for tests and benchmarks)
        self.seeks = 0
        require_video_file(self.path)
        self._open()
        try:
            self.fps = float(self._stream.average_rate or self._stream.guessed_rate or 25)
            self.width, self.height = self._stream.codec_context.width, self._stream.codec_context.height
            self.frame_count = int(self._stream.frames or 0)
            if self.frame_count == 0:  # not in the container's metadata: count the packets, then start afresh
                self.frame_count = self._count_packets()
                self._open()
            if self.frame_count == 0:
                raise UnreadableClip(f"{self.path}: no decodable frames")
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        import av  # imported here: only video sources need it

        if getattr(self, "_container", None) is not None:
            self._container.close()
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise UnreadableClip(f"{self.path}: cannot decode ({error})") from error
        if not self._container.streams.video:
            self._container.close()
            raise UnreadableClip(f"{self.path}: no video stream")
        self._stream = self._container.streams.video[0]  # PyAV's default threading: no frame threads, whose
        # buffers would cost memory while decoding is not what limits prediction (face detection is)
        self._started = False

    @property
    def duration(self) -> float:
        """Seconds covered by ``frame_count`` frames at ``fps``."""
        return self.frame_count / self.fps

    def _count_packets(self) -> int:
        """The number of frames, counted from the stream's packets without decoding them (one pass)."""
        import av

        try:
            return sum(1 for packet in self._container.demux(self._stream) if packet.size)
        except (av.error.FFmpegError, OSError) as error:
            raise UnreadableClip(f"{self.path}: cannot read ({error})") from error

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def _seek_to(self, index: int, start: float) -> None:
        """Continue decoding at the keyframe before frame ``index`` (frame 0 is on screen at ``start`` s)."""
        target = int((start + index / self.fps) / self._stream.time_base)
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        self.seeks += 1

    def frames(self, indices: Sequence[int]) -> Iterator[tuple[int, av.VideoFrame]]:
        """Yield ``(index, frame)`` for ascending, distinct ``indices`` in ``[0, frame_count)``, in order.

        Frames are ``av.VideoFrame`` (convert with ``frame.to_ndarray(format="rgb24")``): frames that are
        only decoded on the way are never converted. Only one decoded frame is held between yields. A stream
        that ends early (or a decoding error) raises UnreadableClip naming the last frame reached.
        """
        import av

        wanted = list(indices)
        if any(later <= earlier for earlier, later in zip(wanted, wanted[1:], strict=False)):
            raise ValueError("indices must be ascending and distinct")
        if wanted and not 0 <= wanted[0] <= wanted[-1] < self.frame_count:
            raise ValueError(f"frame indices must lie in [0, {self.frame_count}), got {wanted[0]}..{wanted[-1]}")
        if self._started:  # a second call: from the start again
            self._open()
        self._started = True
        seek, position = self.seek, 0  # position: the next wanted index not yet yielded
        start: float | None = None  # time of frame 0
        longest_gop = 0.0  # in frames: between keyframes seen, or from where a seek landed to its target
        seek_target: int | None = None
        while position < len(wanted):
            previous: tuple[float, av.VideoFrame] | None = None
            last_key: float | None = None
            sequence, restart = 0, False
            try:
                for frame in self._container.decode(self._stream):
                    self.decoded += 1
                    if start is None and frame.time is not None:
                        start = frame.time
                    at = (frame.time - start) * self.fps if frame.time is not None else float(sequence)
                    sequence += 1
                    if seek_target is not None:  # the first frame after a seek: how far back did it land?
                        longest_gop, seek_target = max(longest_gop, seek_target - at), None
                    if frame.key_frame:
                        longest_gop = max(longest_gop, at - last_key) if last_key is not None else longest_gop
                        last_key = at
                    # the wanted frames before this one: the previous frame was on screen at their time
                    while position < len(wanted) and wanted[position] < at - 0.5:
                        if previous is None and self.seeks:  # a seek landed after the wanted frame
                            restart = True
                            break
                        yield wanted[position], (previous[1] if previous is not None else frame)
                        position += 1
                    if restart or position == len(wanted):
                        break
                    previous = (at, frame)
                    ahead = wanted[position] - at
                    if (seek and start is not None and ahead > self.seek_after * self.fps
                            and ahead > 2 * max(longest_gop, at - (last_key or 0.0))):
                        self._seek_to(wanted[position], start)
                        seek_target = wanted[position]
                        break
                else:  # the stream ended: its last frame stays on screen (metadata may count a frame or two more)
                    slack = max(1.5, 0.02 * self.frame_count)
                    while position < len(wanted) and previous is not None and wanted[position] < previous[0] + slack:
                        yield wanted[position], previous[1]
                        position += 1
                    if position < len(wanted):
                        reached = int(previous[0]) + 1 if previous is not None else 0
                        raise UnreadableClip(f"{self.path}: the video ends at frame {reached}, its stream says "
                                             f"{self.frame_count} frames (truncated?)")
            except av.error.FFmpegError as error:
                raise UnreadableClip(f"{self.path}: cannot decode ({error})") from error
            if restart:  # decode from the start without seeking: slower, always right
                seek, start = False, None
                self._open()


def read_frames(path: Path, indices_for: Callable[[int], Sequence[int]]) -> np.ndarray:
    """Read the frames ``indices_for(available)`` selects from a video file or frame folder.

    Returns (len(indices), H, W, 3) uint8. A video is decoded only as far as (and where) the selected frames
    need it, and only they are kept. Raises UnreadableClip for a missing, empty or corrupt clip.
    """
    if is_video(path):
        with VideoReader(path) as reader:
            indices = list(indices_for(reader.frame_count))
            frames = {index: frame.to_ndarray(format="rgb24") for index, frame in reader.frames(sorted(set(indices)))}
        return np.stack([frames[index] for index in indices])

    if not path.is_dir():
        raise UnreadableClip(f"{path}: neither a video file ({', '.join(VIDEO_SUFFIXES)}) nor a frame folder")
    files = frame_files(path)
    if not files:
        raise UnreadableClip(f"{path}: frame folder holds no images")
    from PIL import Image, UnidentifiedImageError

    selected = []
    for index in indices_for(len(files)):
        try:
            with Image.open(files[index]) as image:
                selected.append(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))
        except (OSError, UnidentifiedImageError) as error:
            raise UnreadableClip(f"{files[index]}: cannot read image ({error})") from error
    if len({frame.shape for frame in selected}) > 1:
        raise UnreadableClip(f"{path}: frames differ in size")
    return np.stack(selected)

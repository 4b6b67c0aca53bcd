"""What the commands read and write: output folders that cannot be written are refused before any work (really
unwritable, also when the tests run as root), one video's failed write loses no other, files get the user's
umask, folders given to predict are expanded, every input failing is exit status 2, one device resolver."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from fe_adapter import cli
from fe_adapter._io import atomic_write, check_writable, is_interrupted_write
from fe_adapter.device import DeviceError, resolve_device
from fe_adapter.predict.examples import face_video
from fe_adapter.predict.inputs import expand_inputs, videos_in
from fe_adapter.training.folder import clear_outputs
from tests.cli_probes import run_probes, valid_arguments
from tests.media import write_video
from tests.training_cases import as_overrides, tiny_config

#: (command, arguments that put its output in OUT): every command that writes, with the option naming the place.
OUTPUTS = [("predict", ["--out", "OUT"]), ("train", ["run.out_dir=OUT"]), ("cv", ["run.out_dir=OUT"]),
           ("eval", ["--out", "OUT"]), ("demo", ["--out", "OUT"])]


def _probes(folder: Path, out: Path) -> list[list[str]]:
    """One command line per command in OUTPUTS, its inputs in ``folder``, its output in ``out/<command>``."""
    probes = []
    for command, arguments in OUTPUTS:
        (folder / command).mkdir(parents=True)
        probes.append([command, *valid_arguments(command, folder / command),
                       *[argument.replace("OUT", str(out / command)) for argument in arguments]])
    return probes


def _without_root_override() -> None:
    """In the child: drop the capabilities that let root write through permission bits (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH) from the bounding set, so the program it runs honours chmod like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_folder_without_write_permission_is_refused_before_any_work(tmp_path_factory):
    """chmod 555: as root the child runs without the capability that overrides it (a plain chmod test would
    pass by accident there); the folder must be world-traversable for that child, so not pytest's 0700 tmp."""
    base = Path(tmp_path_factory.mktemp("modes"))
    base.chmod(0o755)
    locked = base / "locked"
    locked.mkdir()
    probes = _probes(base / "inputs", locked)
    locked.chmod(0o555)
    try:
        how = {"preexec_fn": _without_root_override} if os.geteuid() == 0 else {}
        results = run_probes(probes, base, **how)
    finally:
        locked.chmod(0o755)
    for result, (command, _) in zip(results, OUTPUTS, strict=True):
        assert result["status"] == 2, result
        assert result["error"].startswith(f"fe-adapter {command}: error: ") and \
            f"cannot create files in {locked}: Permission denied" in result["error"], result
    assert list(locked.iterdir()) == []


def test_a_read_only_mount_is_refused_before_any_work(tmp_path):
    mount = tmp_path / "mounted"
    mount.mkdir()
    probes = _probes(tmp_path / "inputs", mount)
    launcher = ["unshare", "--mount", "sh", "-c", f'mount -t tmpfs -o ro tmpfs "{mount}" && exec "$0" "$@"']
    if shutil.which("unshare") is None or subprocess.run([*launcher, "true"], capture_output=True).returncode:
        pytest.skip("no private mount namespace here (unshare --mount needs CAP_SYS_ADMIN)")
    results = run_probes(probes, tmp_path, launcher=launcher)
    for result in results:
        assert result["status"] == 2 and f"cannot create files in {mount}: Read-only file system" in \
            result["error"], result


def test_check_writable_leaves_nothing_and_names_the_file_in_the_way(tmp_path):
    check_writable(tmp_path / "new" / "deeper", "--out new/deeper")
    assert list(tmp_path.iterdir()) == []  # neither the folders nor the probe file
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OSError, match=f"^--out x: cannot write there: {tmp_path / 'a_file'} is a file, not a folder$"):
        check_writable(tmp_path / "a_file" / "x", "--out x")


def _modes(root: Path) -> dict[str, set[int]]:
    found = {"files": set(), "folders": set()}
    for path in root.rglob("*"):
        found["folders" if path.is_dir() else "files"].add(stat.S_IMODE(path.stat().st_mode))
    return found


def _with_umask(umask: int, run: Callable[[], int], reference: Path) -> dict[str, int]:
    """``run()`` under ``umask``; return the modes a plain ``open`` and ``mkdir`` get under it (the oracle)."""
    previous = os.umask(umask)
    try:
        assert run() == 0
        reference.mkdir()
        (reference / "file").write_text("")
    finally:
        os.umask(previous)
    return {"files": stat.S_IMODE((reference / "file").stat().st_mode),
            "folders": stat.S_IMODE(reference.stat().st_mode)}


def test_every_file_a_run_writes_gets_the_users_umask(tmp_path):
    """Checkpoints, last.pt and the report were 0600 (tempfile.mkstemp) while the logs followed the umask."""
    out, umask = tmp_path / "run", 0o027
    expected = _with_umask(umask, lambda: cli.main(["train", *as_overrides(tiny_config(out, optim={"epochs": 1}))]),
                           tmp_path / "reference")
    assert expected["files"] == 0o666 & ~umask
    assert {"last.pt", "best.safetensors", "last.safetensors"} <= {path.name for path in out.iterdir()}
    assert _modes(out) == {"files": {expected["files"]}, "folders": {expected["folders"]}}


def test_predictions_get_the_users_umask(tmp_path, tiny_model_files):
    """(Another umask than the run's above: the mode comes from it, not from a constant.)"""
    adapters, backbone = tiny_model_files
    video = face_video(tmp_path / "clip.mp4", frames=20)
    expected = _with_umask(0o002, lambda: cli.main(
        ["predict", str(video), "--checkpoint", str(adapters), "--backbone-checkpoint", str(backbone),
         "--out", str(tmp_path / "out")]), tmp_path / "reference")
    assert expected["files"] == 0o664
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["clip.csv", "clip.json", "clip.png"]
    assert _modes(tmp_path / "out") == {"files": {expected["files"]}, "folders": set()}


def test_atomic_write_removes_its_temporary_file_when_the_write_fails(tmp_path):
    def fail(temporary: str) -> None:
        Path(temporary).write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(tmp_path / "out.json", fail)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_suffix_last_and_a_killed_write_is_recognised(tmp_path):
    """torch.export.load refuses (with a warning) a file whose name does not end in .pt2: export verifies the
    temporary file before it is renamed, so the suffix must stay last. A run folder's clean-up must still know a
    left-over temporary file."""
    names = []
    atomic_write(tmp_path / "model.pt2", lambda temporary: (names.append(Path(temporary).name),
                                                            Path(temporary).write_bytes(b"x")))
    assert names[0].startswith(".model.") and names[0].endswith(".tmp.pt2")
    assert is_interrupted_write(names[0]) and is_interrupted_write(".last.0a1b2c3d.tmp")
    assert not is_interrupted_write("model.pt2") and not is_interrupted_write(".model.pt2")
    (tmp_path / names[0]).write_bytes(b"killed mid-write")
    (tmp_path / "mine.txt").write_text("kept")
    assert clear_outputs(tmp_path, names=("model.pt2",)) == [names[0], "model.pt2"]
    assert [path.name for path in tmp_path.iterdir()] == ["mine.txt"]


def test_a_failed_write_loses_no_other_video(tmp_path, tiny_model_files, capsys, monkeypatch):
    """The first video's results cannot be written (a full disk): its prediction is still printed, the line
    says so, the second video is predicted and written, and the exit status is 1."""
    from fe_adapter.predict import timeline

    adapters, backbone = tiny_model_files
    first, second = face_video(tmp_path / "a.mp4", frames=20), face_video(tmp_path / "b.mp4", frames=20)
    write = timeline.write_prediction

    def disk_full_for_a(prediction, out_dir, name=None, overwrite=False):
        if name == "a":
            raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "a.json"))
        return write(prediction, out_dir, name, overwrite)

    monkeypatch.setattr(timeline, "write_prediction", disk_full_for_a)
    code = cli.main(["predict", str(first), str(second), "--checkpoint", str(adapters), "--backbone-checkpoint",
                     str(backbone), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert f"{first}: " in captured.out and f"{second}: " in captured.out and "wrote" in captured.out
    assert captured.err.strip() == (f"fe-adapter predict: error: {first}: its results could not be written: "
                                    f"[Errno 28] No space left on device: '{tmp_path / 'out' / 'a.json'}'")
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["b.csv", "b.json", "b.png"]


def test_a_folder_gives_its_videos_in_path_order_and_nothing_else(tmp_path):
    for name in ("day2/clip.MP4", "day1/clip.mp4", "day1/deeper/z.webm", "day1/.hidden/x.mp4", "day1/._clip.mp4"):
        (tmp_path / "videos" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "videos" / name).write_bytes(b"")
    (tmp_path / "videos" / "notes.txt").write_text("")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "other.bin").write_bytes(b"")
    videos = tmp_path / "videos"
    assert videos_in(videos) == [videos / "day1/clip.mp4", videos / "day1/deeper/z.webm", videos / "day2/clip.MP4"]
    found, errors = expand_inputs([tmp_path / "other.bin", videos, tmp_path / "empty", tmp_path / "missing.mp4"])
    assert found == [tmp_path / "other.bin", *videos_in(videos)]  # a file is taken whatever its suffix
    assert errors == [f"{tmp_path / 'empty'}: a folder without video files (.mp4, .avi, .webm, .mkv, .mov, .m4v, "
                      "searched in its sub-folders too)", f"{tmp_path / 'missing.mp4'}: video file not found"]


def test_predict_on_a_folder_writes_each_video_under_its_relative_name(tmp_path, tiny_model_files, capsys):
    adapters, backbone = tiny_model_files
    for day in ("day1", "day2"):
        face_video(tmp_path / "videos" / day / "clip.mp4", frames=20)
    code = cli.main(["predict", str(tmp_path / "videos"), "--checkpoint", str(adapters), "--backbone-checkpoint",
                     str(backbone), "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    for day in ("day1", "day2"):
        assert json.loads((tmp_path / "out" / day / "clip.json").read_text())["path"] == \
            str(tmp_path / "videos" / day / "clip.mp4")


def test_a_folder_given_as_a_video_is_named_as_a_folder(tmp_path, tiny_model_files):
    from fe_adapter.predict.predictor import PredictionError, Predictor

    adapters, backbone = tiny_model_files
    with pytest.raises(PredictionError, match=f"^{tmp_path}: a folder, not a video file$"):
        Predictor.from_checkpoint(adapters, "cpu", backbone).predict_video(tmp_path)


def test_when_every_video_fails_the_exit_status_is_2(tmp_path, tiny_model_files, capsys):
    """docs/predict.md: 2 when nothing was predicted (it was 1)."""
    adapters, backbone = tiny_model_files
    wall = write_video(tmp_path / "wall.mp4", np.full((20, 120, 160, 3), 90, dtype=np.uint8))
    arguments = ["--checkpoint", str(adapters), "--backbone-checkpoint", str(backbone), "--out", str(tmp_path / "o")]
    assert cli.main(["predict", str(wall), str(tmp_path / "missing.mp4"), *arguments]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[0] == f"fe-adapter predict: error: {tmp_path / 'missing.mp4'}: video file not found"
    assert errors[1].startswith(f"fe-adapter predict: error: {wall}: no face found") and len(errors) == 2
    assert not (tmp_path / "o").exists()


def test_predict_on_cuda_without_a_gpu_is_one_line_and_status_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    arguments = valid_arguments("predict", tmp_path)
    assert cli.main(["predict", *arguments, "--device", "cuda"]) == 2
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA"
    assert capsys.readouterr().err.strip() == (
        f"fe-adapter predict: error: --device cuda, but CUDA is not available on this machine (torch "
        f"{torch.__version__} built with {build}); use --device cpu or auto")


def test_one_device_resolver_names_the_setting(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda", "run.device", local_rank=0) == torch.device("cuda", 0)
    with pytest.raises(DeviceError, match=r"^run.device = 'cuda:3', but this machine has 1 CUDA device\(s\): "
                                          r"cuda:0..cuda:0$"):
        resolve_device("cuda:3", "run.device")
    with pytest.raises(DeviceError, match=r"^--device must be auto, cpu, cuda, cuda:N \(a GPU index\) or mps, "
                                          r"got 'gpu'$"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")

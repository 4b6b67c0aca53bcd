"""Running ``fe-adapter`` in a fresh interpreter, to see what it printed and which modules it imported."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
#: Modules a light path must not import. numpy is allowed (predict's output names use it).
HEAVY = ("torch", "timm", "av", "matplotlib", "skimage", "triton", "safetensors", "torchvision")


def run_python(code: str, cwd: Path, stdin: str = "", launcher: Sequence[str] = (),
               preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    """``python -c code`` (after ``launcher``, e.g. ``unshare ...``) in ``cwd``."""
    return subprocess.run([*launcher, sys.executable, "-c", code], input=stdin, capture_output=True, text=True,
                          cwd=cwd, timeout=300, preexec_fn=preexec_fn)


#: Runs each probe (an argv) through the CLI in one fresh interpreter; reports, per probe, the exit status, the
#: last line on stderr and the heavy modules loaded so far. Stops at the first probe that loaded one (the later
#: ones could not tell).
_RUN_PROBES = '''
import contextlib, io, json, sys
from fe_adapter.cli import main

heavy, probes = json.loads(sys.stdin.read())
results = []
for argv in probes:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    loaded = sorted(name for name in heavy if name in sys.modules)
    lines = err.getvalue().strip().splitlines() or [""]
    results.append({"argv": argv, "status": status, "stdout": out.getvalue(), "error": lines[-1], "loaded": loaded})
    if loaded:
        break
print(json.dumps(results))
'''


def run_probes(probes: list[list[str]], cwd: Path, **how) -> list[dict]:
    """Each probe (an argv) through ``fe_adapter.cli.main`` in one fresh interpreter (``how``: ``run_python``'s
    launcher, preexec_fn): exit status, stdout, the last line on stderr. Fails if one imported a heavy module."""
    finished = run_python(_RUN_PROBES, cwd, json.dumps([HEAVY, probes]), **how)
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(finished.stdout)
    heavy = [result for result in results if result["loaded"]]
    assert not heavy, f"fe-adapter {' '.join(heavy[0]['argv'])} imported {heavy[0]['loaded']}"
    assert len(results) == len(probes)
    return results


def valid_arguments(command: str, folder: Path) -> list[str]:
    """Arguments that pass a command's own light checks (its required inputs exist), so that a probe reaches the
    check it is aimed at. A new command needs an entry here."""
    video, adapters = folder / "clip.mp4", folder / "adapters.safetensors"
    for path in (video, adapters):
        path.write_bytes(b"not read: the light checks only look for the file")
    config = ["--config", str(REPOSITORY / "configs" / "dfew.yaml")]  # a real config: its keys need torch to check
    arguments = {"train": config, "cv": config, "demo": [], "eval": [*config, "--checkpoint", str(adapters)],
                 "predict": [str(video), "--checkpoint", str(adapters)], "export": [str(adapters)],
                 "crop-faces": [str(video), str(folder / "faces")],
                 "pretrain-image": [], "predict-image": [str(video), "--model", str(adapters)]}
    assert command in arguments, f"tests/cli_probes.py: add the new command {command!r} to valid_arguments"
    return arguments[command]

"""The ``fe-adapter`` program imports a command's libraries with the collector off and freezes them
(``fe_adapter.commands._start_up``); called from Python, nothing changes."""

from __future__ import annotations

import gc
import json

import numpy as np

from tests.cli_probes import run_python
from tests.media import write_video


def test_outside_the_program_imports_change_nothing():
    from fe_adapter.commands._start_up import imports

    frozen = gc.get_freeze_count()
    with imports():
        assert gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


_PROGRAM = '''
import gc, json, sys
from fe_adapter.commands._start_up import as_program, imports

assert "colorsys" not in sys.modules
as_program()
with imports():
    enabled_inside = gc.isenabled()
    import colorsys
tracked = {id(thing) for thing in gc.get_objects()}  # the collector's generations: frozen objects are not in them
after = gc.isenabled()
try:
    with imports():
        raise ValueError("refused")
except ValueError:
    pass
print(json.dumps([enabled_inside, after, id(vars(colorsys)) in tracked, gc.isenabled()]))
'''


def test_in_the_program_imports_are_frozen_and_the_collector_comes_back(tmp_path):
    finished = run_python(_PROGRAM, tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    enabled_inside, enabled_after, module_tracked, enabled_after_raise = json.loads(finished.stdout)
    assert not enabled_inside and enabled_after and enabled_after_raise
    assert not module_tracked  # the imported module is frozen: no collection walks it


_PREDICT = '''
import atexit, gc, sys
from fe_adapter import cli

atexit.register(lambda: print("frozen", gc.get_freeze_count(), "torch" in sys.modules))
sys.argv = ["fe-adapter", *{argv!r}]
cli.console()
'''


def test_predict_freezes_its_libraries(tmp_path, tiny_model_files):
    adapters, backbone = tiny_model_files
    frames = np.random.default_rng(0).integers(60, 200, (12, 32, 32, 3), dtype=np.uint8)
    video = write_video(tmp_path / "clip.mp4", frames)
    argv = ["predict", str(video), "--checkpoint", str(adapters), "--backbone-checkpoint", str(backbone),
            "--faces", "none", "--window", "1s", "--out", str(tmp_path / "out"), "--device", "cpu"]
    finished = run_python(_PREDICT.format(argv=argv), tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    _, count, torch_loaded = finished.stdout.splitlines()[-1].split()
    assert torch_loaded == "True" and int(count) > 100_000  # torch's and timm's modules: hundreds of thousands

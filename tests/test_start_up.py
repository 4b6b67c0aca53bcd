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
from fe_adapter import cli
from fe_adapter.commands import _start_up

assert cli.main(["--version"]) == 0 and not _start_up._in_program  # main alone is not the program
assert "colorsys" not in sys.modules
_start_up.as_program()
with _start_up.imports():
    enabled_inside = gc.isenabled()
    import colorsys
tracked = {id(thing) for thing in gc.get_objects()}  # the collector's generations: frozen objects are not in them
after = gc.isenabled()
raised, enabled_inside_raising = False, None
try:
    with _start_up.imports():
        enabled_inside_raising = gc.isenabled()
        raise ValueError("refused")
except ValueError:
    raised = True
print(json.dumps([enabled_inside, after, id(vars(colorsys)) in tracked, raised, enabled_inside_raising,
                  gc.isenabled()]))
'''


def test_in_the_program_imports_are_frozen_and_the_collector_comes_back(tmp_path):
    finished = run_python(_PROGRAM, tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    inside, after, module_tracked, raised, inside_raising, after_raising = json.loads(finished.stdout.splitlines()[-1])
    assert not inside and after and not module_tracked  # the imported module is frozen: no collection walks it
    assert raised and not inside_raising and after_raising  # an error goes on, the collector comes back


_PREDICT = '''
import atexit, gc, sys
from fe_adapter import cli

freezes = []
freeze = gc.freeze


def watched_freeze():
    import torch
    freezes.append(any(isinstance(thing, torch.nn.Module) for thing in gc.get_objects()))
    freeze()


gc.freeze = watched_freeze
atexit.register(lambda: print("freezes", freezes, gc.get_freeze_count()))
sys.argv = ["fe-adapter", *{argv!r}]
cli.console()
'''


def test_predict_freezes_its_libraries_before_its_model(tmp_path, tiny_model_files):
    adapters, backbone = tiny_model_files
    frames = np.random.default_rng(0).integers(60, 200, (12, 32, 32, 3), dtype=np.uint8)
    video = write_video(tmp_path / "clip.mp4", frames)
    argv = ["predict", str(video), "--checkpoint", str(adapters), "--backbone-checkpoint", str(backbone),
            "--faces", "none", "--window", "1s", "--out", str(tmp_path / "out"), "--device", "cpu"]
    finished = run_python(_PREDICT.format(argv=argv), tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    line = finished.stdout.splitlines()[-1]
    assert line.startswith("freezes [False] ")  # one freeze, with no module of a model among what it froze
    assert int(line.split()[-1]) > 100_000  # torch's and timm's modules: hundreds of thousands of objects

"""``fe-adapter`` exits without the interpreter's teardown (``cli.console``), yet as a normal exit would: the exit
status of ``main``, everything printed reaches a pipe, other threads finish (an idle thread-pool worker told to),
atexit functions run."""

from __future__ import annotations

import importlib.metadata

from tests.cli_probes import run_python

_CONSOLE = '''
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from fe_adapter import cli

atexit.register(lambda: print("atexit ran"))
threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished"))).start()
pool = ThreadPoolExecutor(1)  # held: its worker waits for more work until told to end
pool.submit(time.sleep, 0)
sys.argv = ["fe-adapter", *{argv!r}]
cli.console()
print("not reached")
'''


def test_the_console_exit_keeps_status_output_threads_and_atexit(tmp_path, monkeypatch):
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # output to a pipe is held in a buffer, as for users
    finished = run_python(_CONSOLE.format(argv=["--version"]), tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.splitlines() == [f"fe-adapter {importlib.metadata.version('fe-adapter')}",
                                            "thread finished", "atexit ran"]
    refused = run_python(_CONSOLE.format(argv=["predict", "missing.mp4", "--checkpoint", "missing.safetensors"]),
                         tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.startswith("fe-adapter predict: error: missing.mp4: video file not found")
    assert refused.stdout.splitlines() == ["thread finished", "atexit ran"]


def test_python_dash_m_is_the_console(tmp_path):
    """The teardown skipped: a ``finally`` around it does not run (it would after ``sys.exit``)."""
    finished = run_python("import runpy, sys\nsys.argv = ['fe_adapter', '--version']\ntry:\n"
                          "    runpy.run_module('fe_adapter', run_name='__main__')\nfinally:\n    print('teardown')",
                          tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.splitlines() == [f"fe-adapter {importlib.metadata.version('fe-adapter')}"]


def test_under_a_profiler_the_exit_is_the_normal_one(tmp_path):
    """cProfile (benchmarks.predict_speed profiles the command) writes its file when the program exits."""
    finished = run_python("import runpy, sys\nsys.argv = ['cProfile', '-o', 'out.prof', '-m', 'fe_adapter', "
                          "'--version']\nrunpy.run_module('cProfile', run_name='__main__')", tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert (tmp_path / "out.prof").stat().st_size > 0


def test_without_the_private_cpython_functions_the_exit_is_the_normal_one(tmp_path):
    """``threading._shutdown`` and ``atexit._run_exitfuncs`` are CPython's own: where one is missing the console
    exits through ``sys.exit`` (a ``finally`` around it runs)."""
    finished = run_python("import runpy, sys, threading\ndel threading._shutdown\nsys.argv = ['fe_adapter', "
                          "'--version']\ntry:\n    runpy.run_module('fe_adapter', run_name='__main__')\nfinally:\n"
                          "    print('teardown')", tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.splitlines() == [f"fe-adapter {importlib.metadata.version('fe-adapter')}", "teardown"]

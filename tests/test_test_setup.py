"""The test run's own setup: pytest-xdist's groups in effect (make test), and the Triton interpreter's shortcut
(tests/triton_interpreter.py) in effect and bitwise the same as Triton's own path."""

from __future__ import annotations

import pytest
import torch

from fekernels.triton_kernels import launch
from tests.kernel_cases import make_inputs, options_of, run_op

_INTERPRETED = pytest.mark.skipif(not launch.interpreted(), reason="the shortcut is for Triton's CPU interpreter")

#: bf16 with K = 5 and a two-tile R: every helper of the forward and the backward runs, tl.sum included.
_CASE = dict(clips=2, frames=3, tokens=7, dim=48, bottleneck=40, kernel_size=5, dilation=1, prefix=1,
             activation="gelu", biases=True, dtype=torch.bfloat16, contiguous=True)


def _outputs_and_module_scans(monkeypatch) -> tuple[dict, int]:
    """The op's output and gradients on _CASE, and how many times the interpreter scanned a module to patch it."""
    from triton.runtime import interpreter

    scans = []
    scan = interpreter._patch_builtin
    monkeypatch.setattr(interpreter, "_patch_builtin", lambda *args: scans.append(1) or scan(*args))
    torch.manual_seed(0)
    x, weights, grad_out = make_inputs(_CASE)
    result = run_op("triton", x, weights, grad_out, _CASE["dtype"], options_of(_CASE))
    monkeypatch.undo()
    return result, len(scans)


@pytest.mark.xdist_group("the_setup_test")
def test_grouped_tests_stay_together_under_loadgroup(request):
    """`make test` runs `--dist loadgroup` so that a file's module fixtures (the quick demo: a minute of CPU) are built
    once; pytest-xdist marks a grouped test by appending its group to the node id, and a pytest that stops that
    (9.2) spreads the group over both workers without a word."""
    if not request.config.getoption("loadgroup", False):
        pytest.skip("not a pytest-xdist worker under --dist loadgroup")
    assert request.node.nodeid.endswith("@the_setup_test"), (
        f"{request.node.nodeid}: the xdist_group mark did not take: this pytest breaks --dist loadgroup "
        "(pytest-dev/pytest-xdist#1386), see the pin in pyproject.toml")


@_INTERPRETED
def test_the_shortcut_patches_a_few_times_per_launch_and_changes_no_bit(monkeypatch):
    from triton.runtime import interpreter

    assert hasattr(interpreter._patch_lang, "__wrapped__"), (
        "tests/triton_interpreter.py is not installed: this Triton's interpreter is not the one it expects, and "
        "the kernel tests run about a third slower")
    fast, fast_scans = _outputs_and_module_scans(monkeypatch)
    with monkeypatch.context() as triton_own:
        triton_own.setattr(interpreter, "_patch_lang", interpreter._patch_lang.__wrapped__)
        triton_own.setattr(interpreter.GridExecutor, "__call__", interpreter.GridExecutor.__call__.__wrapped__)
        slow, slow_scans = _outputs_and_module_scans(monkeypatch)
    launches = 7  # forward_down, forward_up, grad_h, grad_x, two weight GEMMs, reduce_partials
    assert fast_scans <= launches * 8, f"{fast_scans} module scans for {launches} launches"
    assert slow_scans > 4 * fast_scans  # else the shortcut no longer saves anything worth its code
    assert fast.keys() == slow.keys()
    for name in fast:
        assert torch.equal(fast[name], slow[name]), name

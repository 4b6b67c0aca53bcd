"""Property-based: every implementation that runs on the CPU against the float64 reference, on drawn cases.

Hypothesis draws the shape (clips, frames, tokens, C, R), the dtype, the kernel size, the dilation, the prefix
count, the activation, which biases exist, the layout of x and which inputs need a gradient, and checks the
output and every requested gradient with the bound every kernel test uses (``fekernels.testing``), and that
no other gradient is computed. The reference itself is the oracle, so "torch" is not among the impls checked.

The examples are derandomised (the same ones on every run and in CI: a failure is reproducible, never a
flake) and there are at least ``_EXAMPLES[impl]`` of them per impl; the Triton kernels run under the CPU
interpreter, where an example costs ~0.2 s, so they get fewer. ``HYPOTHESIS_PROFILE=explore`` draws fresh,
random examples, ten times as many (for looking, not for CI); ``sanitize``, ``_SANITIZE_EXAMPLES``.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fekernels
from fekernels import native
from fekernels.testing import WEIGHT_NAMES, assert_close_to_reference
from tests.kernel_cases import make_inputs, run_op

_EXAMPLES = {"native": 200, "triton": 30}
#: Under AddressSanitizer (tests/test_address_sanitizer.py sets HYPOTHESIS_PROFILE=sanitize) an example costs ten
#: times as much, and the sanitizer needs the shapes, not the values: a quarter of the examples, with the kernel
#: tests' odd shapes beside them (the partial-sums overrun of issue 22 fails it at 50).
_SANITIZE_EXAMPLES = 50
#: Rows (clips x frames x tokens) at most: the interpreter's time grows with them; the native kernel's 256-row
#: reduction blocks need more.
_MAX_ROWS = {"native": 640, "triton": 160}
_EXPLORE = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
_SANITIZE = os.environ.get("HYPOTHESIS_PROFILE") == "sanitize"
_DTYPES = {"native": list(native.DTYPES), "triton": [torch.float32, torch.float16, torch.bfloat16]}
_INPUTS = ("x", *WEIGHT_NAMES)


@st.composite
def cases(draw, impl: str) -> dict:
    """One op call: sizes kept small (the Triton interpreter's time grows with rows), but large enough to span
    several 32-row tiles and the native kernel's 256-row reduction blocks now and then."""
    frames = draw(st.integers(1, 8))
    tokens = draw(st.integers(1, _MAX_ROWS[impl] // frames))
    clips = draw(st.integers(1, max(1, min(3, _MAX_ROWS[impl] // (frames * tokens)))))
    return dict(
        clips=clips, frames=frames, tokens=tokens,
        dim=draw(st.integers(1, 80)), bottleneck=draw(st.integers(1, 72)),
        kernel_size=draw(st.sampled_from([1, 3, 5, 7, 9])), dilation=draw(st.integers(1, 4)),
        prefix=draw(st.integers(0, min(tokens, 5))), activation=draw(st.sampled_from(fekernels.ACTIVATIONS)),
        biases=True, dtype=draw(st.sampled_from(_DTYPES[impl])), contiguous=draw(st.booleans()),
        dropped_biases=draw(st.sets(st.sampled_from(["b_down", "b_conv", "b_up"]))),
        needs_grad=draw(st.sets(st.sampled_from(_INPUTS))), seed=draw(st.integers(0, 2**31 - 1)),
    )


def _check(impl: str, case: dict) -> None:
    torch.manual_seed(case["seed"])  # the values too are a function of the example, so a failure replays
    x, weights, grad_out = make_inputs(case)
    weights = {name: None if name in case["dropped_biases"] else value for name, value in weights.items()}
    needs_grad = tuple(name for name in case["needs_grad"] if weights.get(name, x) is not None)
    grad_out = grad_out if needs_grad else None
    options = dict(num_frames=case["frames"], dilation=case["dilation"], activation=case["activation"],
                   num_prefix_tokens=case["prefix"])
    exact = run_op("torch", x, weights, grad_out, torch.float64, options, needs_grad, device="cpu")
    low = run_op("torch", x, weights, grad_out, case["dtype"], options, needs_grad, device="cpu")
    result = run_op(impl, x, weights, grad_out, case["dtype"], options, needs_grad, device="cpu")
    assert_close_to_reference(result, low, exact, case["dtype"])


def _impls() -> list[str]:
    """The impls that run on CPU tensors here: the native kernel once built, Triton through its interpreter."""
    impls = ["native"] if native.LIBRARY.is_file() else []
    if "triton" in fekernels.IMPLS and os.environ.get("TRITON_INTERPRET") == "1":
        impls.append("triton")
    return impls


@pytest.mark.parametrize("impl", _impls())
def test_every_cpu_impl_matches_the_float64_reference_on_drawn_cases(impl):
    if impl == "native" and not native.AVAILABLE:
        pytest.fail(native.LOAD_ERROR)  # built but not loadable is a failure, never a skip (as in its own tests)

    examples = _SANITIZE_EXAMPLES if _SANITIZE else _EXAMPLES[impl] * (10 if _EXPLORE else 1)

    @settings(max_examples=examples, derandomize=not _EXPLORE, database=None,
              deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=cases(impl))
    def check(case):
        _check(impl, case)

    check()

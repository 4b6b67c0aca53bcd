"""The native C++ CPU kernel against the float64 reference: forward, every gradient, threads, compile."""

from __future__ import annotations

import pytest
import torch

import fekernels
from fekernels import native
from fekernels.testing import WEIGHT_NAMES, assert_close_to_reference
from tests.kernel_cases import CASES, adapted_vit, assert_model_matches_float64, case_id, make_inputs, run_op

pytestmark = pytest.mark.skipif(not native.LIBRARY.is_file(), reason="the native kernel is not built (run make)")


@pytest.fixture(autouse=True)
def _built_library_must_load():
    """A library that exists but does not load (a stale build, another CPU) fails every test, never skips."""
    if not native.AVAILABLE:
        pytest.fail(native.LOAD_ERROR)
NATIVE_CASES = [case for case in CASES if case["dtype"] in native.DTYPES]


@pytest.mark.parametrize("case", NATIVE_CASES, ids=[case_id(case) for case in NATIVE_CASES])
def test_native_kernel_matches_the_float64_reference(case):
    x, weights, grad_out = make_inputs(case)
    options = dict(num_frames=case["frames"], dilation=case["dilation"], activation=case["activation"],
                   num_prefix_tokens=case["prefix"])
    exact = run_op("torch", x, weights, grad_out, torch.float64, options, device="cpu")
    low = run_op("torch", x, weights, grad_out, case["dtype"], options, device="cpu")
    fused = run_op("native", x, weights, grad_out, case["dtype"], options, device="cpu")
    assert_close_to_reference(fused, low, exact, case["dtype"])


@pytest.mark.parametrize("needs_grad", [("w_down", "w_conv", "w_up"), ("x",), ("x", "b_conv"), ("b_down",)])
def test_backward_respects_which_inputs_need_grad(needs_grad):
    case = dict(frames=3, tokens=5, dim=48, bottleneck=24, kernel_size=3, dilation=1, prefix=1, activation="silu",
                biases=True, dtype=torch.float32, contiguous=True)
    x, weights, grad_out = make_inputs(case)
    options = dict(num_frames=3, dilation=1, activation="silu", num_prefix_tokens=1)
    exact = run_op("torch", x, weights, grad_out, torch.float64, options, needs_grad, device="cpu")
    fused = run_op("native", x, weights, grad_out, torch.float32, options, needs_grad, device="cpu")
    for name in ("x", *WEIGHT_NAMES):
        if name in needs_grad:
            torch.testing.assert_close(fused[name].double(), exact[name], rtol=1e-4, atol=1e-5)
        else:
            assert fused[name] is None, name


def _dyadic(tensor: torch.Tensor) -> torch.Tensor:
    """Small multiples of 1/8: every product and sum of a few hundred of them is exact in float32."""
    return (tensor * 8).round().clamp(-16, 16) / 8


def test_own_reductions_do_not_depend_on_the_thread_count():
    """dWc, dbc, dbd and dbu are the kernel's own fixed-block reductions: identical for 1 and 2 threads.

    The BLAS library's products may differ with the thread count (MKL's do on Intel CPUs), so the inputs
    of every product whose result feeds those reductions (x, Wd, bd, dout, Wu) hold small dyadic values:
    then the products are exact in any summation order, and a difference can only come from this kernel.
    The conv weights and biases stay generic, so h, dh and dz are not exact and their sums do depend on the
    order. dbu is a sum of dout alone: checked on a second, generic dout.
    """
    case = dict(frames=8, tokens=50, dim=200, bottleneck=64, kernel_size=3, dilation=2, prefix=1, activation="gelu",
                biases=True, dtype=torch.float32, contiguous=True)
    x, weights, grad_out = make_inputs(case, clips=6)
    exact_products = {name: _dyadic(value) if name in ("w_down", "b_down", "w_up") else value
                      for name, value in weights.items()}
    options = dict(num_frames=8, dilation=2, activation="gelu", num_prefix_tokens=1)
    threads = torch.get_num_threads()
    try:
        runs = []
        for count in (1, 2):
            torch.set_num_threads(count)
            runs.append((run_op("native", _dyadic(x), exact_products, _dyadic(grad_out), torch.float32, options,
                                device="cpu"),
                         run_op("native", x, weights, grad_out, torch.float32, options, device="cpu")))
    finally:
        torch.set_num_threads(threads)
    (one, one_generic), (two, two_generic) = runs
    for name in ("w_conv", "b_conv", "b_down"):
        assert torch.equal(one[name], two[name]), name
    assert torch.equal(one_generic["b_up"], two_generic["b_up"])


def test_opcheck_and_dispatch():
    case = dict(frames=2, tokens=5, dim=48, bottleneck=8, kernel_size=3, dilation=1, prefix=1, activation="relu",
                biases=True, dtype=torch.float32, contiguous=False)
    x, weights, _ = make_inputs(case)
    tensors = [x.float().requires_grad_()] + [weights[name].float().requires_grad_() for name in WEIGHT_NAMES]
    torch.library.opcheck(torch.ops.fekernels_native.forward.default, (*tensors, 2, 1, "relu", 1))
    assert fekernels.resolve_impl("auto", x.float()) == "native"
    assert fekernels.resolve_impl("auto", x.half()) == "torch"
    with pytest.raises(ValueError, match="impl='native' runs float32 and bfloat16 CPU tensors"):
        fekernels.fe_adapter(x.half(), *[w.half() for w in weights.values()], num_frames=2, impl="native")


def test_compiled_adapted_vit_on_cpu_matches_float64_without_graph_break():
    model = adapted_vit("native")
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    assert_model_matches_float64(compiled, reference=model)


def test_gradients_of_a_training_step_match_float64():
    """Gradients, not losses: AdamW's normalised steps (and a first loss that does not depend on them) cannot see
    a gradient of the wrong scale."""
    assert_model_matches_float64(adapted_vit("native"))


def test_a_library_that_does_not_load_is_reported(tmp_path, monkeypatch, caplog):
    broken = tmp_path / "libfekernels_native.so"
    broken.write_bytes(b"built for another machine")
    monkeypatch.setattr(native, "LIBRARY", broken)
    error = native._load()
    assert error is not None and str(broken) in error
    assert "does not load" in caplog.text and "make native" in caplog.text

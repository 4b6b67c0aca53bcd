"""What every implementation of the op promises beyond closeness to the reference: exact prefix rows,
bitwise-repeatable gradients, and the rule by which ``impl="auto"`` picks one."""

from __future__ import annotations

import functools
import itertools
from unittest import mock

import pytest
import torch

import fekernels
from fekernels import native, op
from fekernels.testing import WEIGHT_NAMES, assert_close_to_reference, outputs_and_grads
from tests.kernel_cases import CASES, DEVICE, make_inputs, options_of, run_op, taps_inside

_IMPLS = [impl for impl in fekernels.IMPLS if impl != "auto"]
_CASE = dict(clips=2, frames=4, tokens=37, dim=48, bottleneck=40, kernel_size=3, dilation=2, prefix=5,
             activation="gelu", biases=True, contiguous=True)


def _device(impl: str) -> str:
    return "cpu" if impl == "native" else DEVICE


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("impl", _IMPLS)
def test_prefix_rows_of_out_and_dx_are_x_and_dout_exactly(impl, dtype):
    case = {**_CASE, "dtype": dtype}
    x, weights, grad_out = make_inputs(case)
    result = run_op(impl, x, weights, grad_out, dtype, options_of(case), device=_device(impl))
    prefix = case["prefix"]
    x_low, grad_low = (t.to(device=_device(impl), dtype=dtype) for t in (x, grad_out))
    assert torch.equal(result["out"][:, :prefix], x_low[:, :prefix])
    assert torch.equal(result["x"][:, :prefix], grad_low[:, :prefix])
    assert not torch.equal(result["out"][:, prefix:], x_low[:, prefix:])  # the adapter did change the rest


@pytest.mark.parametrize("impl", _IMPLS)
def test_a_rerun_gives_bitwise_identical_outputs_and_gradients(impl):
    case = {**_CASE, "dtype": torch.float32}
    x, weights, grad_out = make_inputs(case)
    first, second = (run_op(impl, x, weights, grad_out, torch.float32, options_of(case), device=_device(impl))
                     for _ in range(2))
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


def test_auto_takes_the_native_kernel_on_cpu_where_it_runs():
    x = torch.randn(4, 3, 16)
    expected = "native" if native.AVAILABLE else "torch"
    assert fekernels.resolve_impl("auto", x) == expected
    assert fekernels.resolve_impl("auto", x.double()) == "torch"
    assert fekernels.resolve_impl("auto", x.half()) == "torch"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_auto_takes_triton_on_cuda_only_where_it_was_measured_faster(dtype):
    x = torch.randn(4, 3, 16, device="cuda", dtype=dtype)
    expected = "triton" if dtype in op.TRITON_MEASURED_FASTER else "torch"
    assert fekernels.resolve_impl("auto", x) == expected


_INPUTS = ("x", *WEIGHT_NAMES)
_EVERY_SUBSET = [subset for size in range(1, len(_INPUTS) + 1) for subset in itertools.combinations(_INPUTS, size)]
#: The Triton launcher sees which gradients are wanted only as three flags (dx; w_down/b_down; the conv and
#: up-projection weights), so these seven subsets, one per combination of the flags, take each of its paths; every
#: subset under the interpreter would cost a minute. The other impls run all 127 subsets.
_FLAG_SUBSETS = [("x",), ("b_down",), ("w_conv",), ("x", "w_down"), ("x", "b_up"), ("b_down", "b_conv"),
                 ("x", "w_down", "w_up")]


@pytest.mark.parametrize("impl", _IMPLS)
def test_every_subset_of_inputs_needing_grad_over_several_partial_blocks(impl):
    """260 rows: more than one of the native kernel's 256-row reduction blocks (and many Triton row tiles), so
    that a buffer sized for one block but written for every block is caught (it corrupted the heap when only x
    needed a gradient); under ``make sanitize`` AddressSanitizer flags such a write even where it does not crash."""
    case = {**_CASE, "clips": 1, "frames": 4, "tokens": 65, "dtype": torch.float32}
    x, weights, grad_out = make_inputs(case)
    options, device = options_of(case), _device(impl)
    exact = run_op("torch", x, weights, grad_out, torch.float64, options, device=device)
    low = run_op("torch", x, weights, grad_out, torch.float32, options, device=device)
    for subset in _FLAG_SUBSETS if impl == "triton" else _EVERY_SUBSET:
        result = run_op(impl, x, weights, grad_out, torch.float32, options, subset, device=device)
        expected = {name: value if name == "out" or name in subset else None for name, value in exact.items()}
        assert_close_to_reference(result, low, expected, torch.float32)


def test_most_kernel_cases_read_neighbouring_frames():
    """A conv that reads the wrong frame (a flipped tap direction) changes a case's result only where an
    off-centre tap lands inside the clip; most of the shared matrix must be such cases (15 of 44 once were)."""
    assert sum(map(taps_inside, CASES)) >= 0.6 * len(CASES)


_ROUTE_CASES = [
    # (impl, device, dtype, TF32 allowed, Triton measured faster for the dtype) -> expected
    (("triton", "cuda", torch.float32, False, False), "torch"),  # the IEEE path is slower than cuBLAS fp32
    (("triton", "cuda", torch.float32, True, False), "triton"),
    (("triton", "cuda", torch.bfloat16, False, False), "triton"),
    (("triton", "cpu", torch.float32, False, False), "torch"),  # the interpreter is routed alike
    (("auto", "cuda", torch.float32, False, True), "torch"),
    (("auto", "cuda", torch.float32, True, True), "triton"),
    (("auto", "cuda", torch.bfloat16, False, True), "triton"),
    (("auto", "cuda", torch.bfloat16, False, False), "torch"),
    (("torch", "cuda", torch.float32, True, True), "torch"),
]


@pytest.mark.parametrize("arguments, expected", _ROUTE_CASES, ids=[str(case[0]) for case in _ROUTE_CASES])
def test_fp32_without_tf32_runs_the_reference_for_triton_and_auto(monkeypatch, arguments, expected):
    impl, device, dtype, tf32, measured = arguments
    if "triton" not in fekernels.IMPLS:
        pytest.skip("Triton is not installed")
    monkeypatch.setattr(op, "TRITON_MEASURED_FASTER", frozenset({dtype}) if measured else frozenset())
    assert op.choose_impl(impl, device, dtype, tf32) == expected


@pytest.mark.skipif("triton" not in fekernels.IMPLS or DEVICE != "cpu", reason="the interpreter's CPU route")
def test_resolve_impl_reads_tf32_from_pytorch_and_the_tests_switch_reaches_the_kernels():
    from fekernels.testing import ieee_fp32_on_the_kernels
    from fekernels.triton_kernels import launch
    from tests.kernel_cases import strict_fp32

    case = {**_CASE, "dtype": torch.float32}
    x, weights, grad_out = make_inputs(case)
    with strict_fp32():
        assert fekernels.resolve_impl("triton", x.float()) == "torch"
        assert fekernels.resolve_impl("triton", x.bfloat16()) == "triton"
        with mock.patch.object(launch, "forward", wraps=launch.forward) as forward:
            routed = outputs_and_grads(functools.partial(fekernels.fe_adapter, impl="triton"), x, weights,
                                       grad_out, torch.float32, options_of(case), "cpu")
        assert not forward.called
        reference = outputs_and_grads(fekernels.fe_adapter_reference, x, weights, grad_out, torch.float32,
                                      options_of(case), "cpu")
        assert all(torch.equal(value, reference[name]) for name, value in routed.items())
        with ieee_fp32_on_the_kernels():
            assert fekernels.resolve_impl("triton", x.float()) == "triton"

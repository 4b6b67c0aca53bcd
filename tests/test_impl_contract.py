"""What every implementation of the op promises beyond closeness to the reference: exact prefix rows,
bitwise-repeatable gradients, and the rule by which ``impl="auto"`` picks one."""

from __future__ import annotations

import pytest
import torch

import fekernels
from fekernels import native, op
from tests.kernel_cases import DEVICE, make_inputs, options_of, run_op

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

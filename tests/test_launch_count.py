"""How many kernels the Triton path launches: the forward at most 2 (forward_down and forward_up),
the backward with every gradient at most 5 (two kernels, the two weight GEMMs, one fixed-order reduction of the
per-tile partials), with no zero-fill, sum or cast kernels around them. Each launch costs a few microseconds of
GPU time and host overhead, most of a B=1 backward; the counts are the same under the interpreter."""

from __future__ import annotations

import pytest
import torch

import fekernels
from fekernels.testing import WEIGHT_NAMES, ieee_fp32_on_the_kernels
from fekernels.triton_kernels import launch
from tests.kernel_cases import DEVICE, make_inputs, options_of
from tests.launches import recorded_launches

_CASE = dict(clips=2, frames=3, tokens=37, dim=48, bottleneck=40, kernel_size=3, dilation=1, prefix=1,
             activation="gelu", biases=True, contiguous=True)
#: Gradients wanted -> the most launches their backward may take.
_BACKWARD_LIMITS = {
    ("x", *WEIGHT_NAMES): 5,  # grad_h, grad_x, dWu GEMM, dWd GEMM, reduce_partials
    WEIGHT_NAMES: 4,  # grad_h, the two GEMMs, reduce_partials
    ("x",): 2,  # grad_h, grad_x
    ("w_up", "b_conv"): 3,  # grad_h, dWu GEMM, reduce_partials
    ("b_down",): 3,  # grad_h, dWd GEMM, reduce_partials
}


def _inputs(dtype: torch.dtype, needs_grad: tuple[str, ...]):
    x, weights, grad_out = make_inputs({**_CASE, "dtype": dtype})
    x = x.to(device=DEVICE, dtype=dtype).requires_grad_("x" in needs_grad)
    weights = {name: t.to(device=DEVICE, dtype=dtype).requires_grad_(name in needs_grad)
               for name, t in weights.items()}
    return x, weights, grad_out.to(device=DEVICE, dtype=dtype)


@pytest.fixture(autouse=True)
def _one_config():
    """On a GPU, one config per kernel: autotuning would run every config while it is recorded."""
    if DEVICE != "cuda":
        yield
        return
    configs = {name: kernel.configs[-1] for name, kernel in launch.KERNELS.items()}
    with launch.forced_configs(configs):
        yield


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("needs_grad", list(_BACKWARD_LIMITS), ids=lambda names: "+".join(names))
def test_the_triton_path_launches_few_kernels(needs_grad, dtype):
    x, weights, grad_out = _inputs(dtype, needs_grad)
    with ieee_fp32_on_the_kernels(), recorded_launches(DEVICE) as forward:  # fp32 on the kernels, not routed
        out = fekernels.fe_adapter(x, **weights, **options_of(_CASE), impl="triton")
    wanted = [t for name, t in {"x": x, **weights}.items() if name in needs_grad]
    with recorded_launches(DEVICE) as backward:
        grads = torch.autograd.grad(out, wanted, grad_out)

    assert len(forward) <= 2, f"forward launches {len(forward)} kernels: {forward}"
    assert forward == ["triton:forward_down_kernel", "triton:forward_up_kernel"], forward
    assert len(backward) <= _BACKWARD_LIMITS[needs_grad], f"backward launches {len(backward)}: {backward}"
    assert all(grad is not None and grad.dtype == dtype for grad in grads)


def test_the_recorder_sees_zero_fills_sums_casts_and_copies():
    """The count cannot miss the launches it is there to catch."""
    x = torch.randn(64, 8, device=DEVICE)
    with recorded_launches(DEVICE) as seen:
        part = torch.zeros(4, 8, device=DEVICE)
        part.sum(0).to(torch.bfloat16)
        x.t().contiguous()
        x.contiguous().view(8, 64).t()  # no work: views and a no-op contiguous
        torch.empty(3, device=DEVICE).fill_(1.0)
    assert seen == ["aten.zeros.default", "aten.sum.dim_IntList", "aten._to_copy.default", "aten.clone.default",
                    "aten.fill_.Scalar"]

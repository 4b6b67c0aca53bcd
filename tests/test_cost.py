"""The roofline's FLOP counts agree with PyTorch's own FLOP counter run on the reference op, and the
per-kernel traffic lists the kernels the Triton launchers run."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import fekernels
from fekernels.cost import backward_cost, backward_traffic, forward_cost, forward_traffic, saved_bytes
from fekernels.testing import ieee_fp32_on_the_kernels
from tests.conftest import random_adapter_tensors
from tests.kernel_cases import DEVICE
from tests.launches import recorded_launches


def test_flop_counts_match_torch_flop_counter():
    frames_total, tokens, dim, bottleneck, kernel_size = 8, 6, 40, 12, 3
    x = torch.randn(frames_total, tokens, dim, requires_grad=True)
    weights = {name: t.requires_grad_() for name, t in random_adapter_tensors(dim, bottleneck, kernel_size,
                                                                            torch.float32).items()}
    with FlopCounterMode(display=False) as forward_counter:
        out = fekernels.fe_adapter(x, **weights, num_frames=4, impl="torch")
    with FlopCounterMode(display=False) as backward_counter:
        out.backward(torch.randn_like(out))
    rows = frames_total * tokens
    assert forward_counter.get_total_flops() == forward_cost(rows, dim, bottleneck, kernel_size, 4).flops

    # The backward is four GEMMs plus the conv's input and weight gradients, each as large as its forward.
    # (PyTorch's counter prices a depthwise conv's backward as a dense one, so only its GEMMs are compared.)
    conv_forward = forward_counter.get_flop_counts()["Global"][torch.ops.aten.convolution]
    backward_gemms = sum(count for op, count in backward_counter.get_flop_counts()["Global"].items()
                         if op is not torch.ops.aten.convolution_backward)
    expected = backward_cost(rows, dim, bottleneck, kernel_size, 4).flops
    assert backward_gemms + 2 * conv_forward == expected


def test_bytes_and_roofline():
    cost = forward_cost(1000, 768, 64, 3, 2)
    assert cost.bytes == 1000 * (2 * 768 + 64) * 2
    assert saved_bytes(1000, 64, 2) == 1000 * 64 * 2
    assert cost.roofline_seconds(1e12, 1e15) == cost.bytes / 1e12


@pytest.mark.parametrize("need_x, need_down, need_weights",
                         [(True, True, True), (False, True, True), (True, False, False), (False, False, True)])
def test_backward_traffic_lists_the_kernels_the_launcher_runs(need_x, need_down, need_weights):
    x = torch.randn(4, 5, 16, device=DEVICE, requires_grad=need_x)
    weights = {name: t.to(DEVICE) for name, t in random_adapter_tensors(16, 8, 3, torch.float32).items()}
    weights["w_down"].requires_grad_(need_down)
    weights["w_up"].requires_grad_(need_weights)
    with ieee_fp32_on_the_kernels(), recorded_launches(DEVICE) as launches:
        fekernels.fe_adapter(x, **weights, num_frames=2, num_prefix_tokens=1, impl="triton").sum().backward()
    launched = [name.removeprefix("triton:") for name in launches if name.startswith("triton:")]

    listed = [k.kernel.split(":")[0] for k in (*forward_traffic(20, 16, 8, 4),
                                                *backward_traffic(20, 16, 8, 4, need_x, need_down, need_weights))]
    assert launched == [name for name in listed if name.endswith("_kernel")]
    floor = backward_cost(20, 16, 8, 3, 4).bytes
    if need_x and need_down and need_weights:
        assert sum(k.bytes for k in backward_traffic(20, 16, 8, 4)) >= floor
    assert sum(k.bytes for k in forward_traffic(20, 16, 8, 4)) >= forward_cost(20, 16, 8, 3, 4).bytes

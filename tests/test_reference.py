"""The reference op against two independent formulations, in float64 over odd shapes."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import fekernels
from fekernels.baselines import fe_adapter_st_layout
from fekernels.testing import assert_close_to_reference, outputs_and_grads
from tests.conftest import random_adapter_tensors
from tests.kernel_cases import DEVICE

ACTIVATION_FNS = {None: lambda h: h, "gelu": F.gelu, "silu": F.silu, "relu": F.relu}


def explicit_loops(x, w_down, b_down, w_conv, b_conv, w_up, b_up, *, num_frames, dilation, activation,
                   num_prefix_tokens):
    """The contract written out index by index: tap k of frame t reads frame t + (k - K//2) * d."""
    out = x.clone()
    _, kernel_size = w_conv.shape
    z = x @ w_down.T + (0 if b_down is None else b_down)
    for frame in range(x.shape[0]):
        clip_start, t = divmod(frame, num_frames)
        clip_start *= num_frames
        h = torch.zeros_like(z[frame]) + (0 if b_conv is None else b_conv)
        for k in range(kernel_size):
            source = t + (k - kernel_size // 2) * dilation
            if 0 <= source < num_frames:
                h = h + w_conv[:, k] * z[clip_start + source]
        update = ACTIVATION_FNS[activation](h) @ w_up.T + (0 if b_up is None else b_up)
        out[frame, num_prefix_tokens:] += update[num_prefix_tokens:]
    return out


def _inputs(clips, frames, tokens, dim, bottleneck, kernel_size, biases=True):
    x = torch.randn(clips * frames, tokens, dim, dtype=torch.float64)
    return x, random_adapter_tensors(dim, bottleneck, kernel_size, biases=biases)


@pytest.mark.parametrize(
    "frames, tokens, kernel_size, dilation",
    list(itertools.product([1, 2, 3, 8], [1, 5, 50], [1, 3, 5], [1, 2, 3])),
)
@pytest.mark.parametrize("dim, bottleneck", [(48, 8), (200, 24)])
def test_reference_matches_st_adapter_conv3d(frames, tokens, kernel_size, dilation, dim, bottleneck):
    prefix = min(1, tokens - 1)
    x, weights = _inputs(2, frames, tokens, dim, bottleneck, kernel_size)
    options = dict(num_frames=frames, dilation=dilation, activation=None, num_prefix_tokens=prefix)
    expected = fe_adapter_st_layout(x, **weights, **options)
    torch.testing.assert_close(fekernels.fe_adapter_reference(x, **weights, **options), expected,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", fekernels.ACTIVATIONS)
@pytest.mark.parametrize("prefix", [0, 1, 5])
@pytest.mark.parametrize("biases", [True, False])
def test_reference_matches_explicit_loops(activation, prefix, biases):
    x, weights = _inputs(3, 4, 7, 16, 8, 3, biases=biases)
    options = dict(num_frames=4, dilation=2, activation=activation, num_prefix_tokens=prefix)
    expected = explicit_loops(x, **weights, **options)
    torch.testing.assert_close(fekernels.fe_adapter(x, **weights, **options, impl="torch"), expected,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fe_adapter_st_layout(x, **weights, **options), expected, rtol=1e-12, atol=1e-12)


def test_clips_do_not_leak_into_each_other():
    """Changing one clip leaves every other clip's output untouched."""
    x, weights = _inputs(3, 4, 5, 16, 8, 5)
    options = dict(num_frames=4, dilation=1)
    before = fekernels.fe_adapter(x, **weights, **options)
    x[4:8] += 1.0
    after = fekernels.fe_adapter(x, **weights, **options)
    torch.testing.assert_close(after[:4], before[:4], rtol=0, atol=0)
    torch.testing.assert_close(after[8:], before[8:], rtol=0, atol=0)
    assert not torch.allclose(after[4:8], before[4:8])


def test_prefix_tokens_are_copied_exactly():
    x, weights = _inputs(2, 3, 9, 16, 8, 3)
    out = fekernels.fe_adapter(x, **weights, num_frames=3, num_prefix_tokens=5, activation="gelu")
    assert torch.equal(out[:, :5], x[:, :5])
    assert not torch.allclose(out[:, 5:], x[:, 5:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_reference_runs_in_low_precision(dtype):
    """Every float dtype works and stays close to float64 (within that dtype's rounding)."""
    x, weights = _inputs(2, 8, 5, 48, 8, 3)
    options = dict(num_frames=8, dilation=2, activation="silu", num_prefix_tokens=1)
    expected = fekernels.fe_adapter_reference(x, **weights, **options)
    low = {name: None if t is None else t.to(dtype) for name, t in weights.items()}
    out = fekernels.fe_adapter_reference(x.to(dtype), **low, **options)
    assert out.dtype == dtype
    tolerance = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(out.double(), expected, rtol=tolerance, atol=tolerance)


def test_reference_gradients_pass_gradcheck():
    x, weights = _inputs(2, 3, 4, 6, 4, 3)
    tensors = [x] + list(weights.values())
    for tensor in tensors:
        tensor.requires_grad_(True)

    def op(*args):
        return fekernels.fe_adapter_reference(*args, num_frames=3, dilation=2, activation="gelu",
                                              num_prefix_tokens=1)

    assert torch.autograd.gradcheck(op, tensors)


@pytest.mark.parametrize("impl", [impl for impl in fekernels.IMPLS if impl != "auto"])
def test_autocast_runs_fp32_adapters_on_a_bf16_stream(impl):
    """Under autocast the op casts the fp32 weights to bf16 and runs in bf16: its output and gradients are held
    to the kernel tests' bound (2x the reference's own bf16 error) around the float64 reference of the same
    bf16-rounded inputs, and the gradients reach the fp32 weights as fp32."""
    if impl == "native" and DEVICE != "cpu":
        pytest.skip("the native kernel runs CPU tensors")
    options = dict(num_frames=3, dilation=2, activation="gelu", num_prefix_tokens=1)
    x, weights = _inputs(2, 3, 5, 32, 16, 3)
    grad_out = torch.randn_like(x)
    x_bf16 = x.to(DEVICE, torch.bfloat16).requires_grad_()
    fp32 = {name: t.to(DEVICE, torch.float32).requires_grad_() for name, t in weights.items()}
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        out = fekernels.fe_adapter(x_bf16, **fp32, **options, impl=impl)
    assert out.dtype == torch.bfloat16
    out.backward(grad_out.to(DEVICE, torch.bfloat16))
    assert all(t.grad is not None and t.grad.dtype == torch.float32 for t in fp32.values())
    result = {"out": out.detach(), "x": x_bf16.grad} | {name: t.grad.bfloat16() for name, t in fp32.items()}

    rounded = {name: t.bfloat16().double() for name, t in weights.items()}
    x_rounded, grad_rounded = x.bfloat16().double(), grad_out.bfloat16().double()
    exact, low = (outputs_and_grads(fekernels.fe_adapter_reference, x_rounded, rounded, grad_rounded, dtype, options,
                                    DEVICE) for dtype in (torch.float64, torch.bfloat16))
    assert_close_to_reference(result, low, exact, torch.bfloat16)
    with pytest.raises(ValueError, match="w_down has dtype torch.float32 but x has torch.bfloat16"):
        fekernels.fe_adapter(x_bf16, **fp32, num_frames=3)  # without autocast, a mismatch is an error
